// npm run bench:api: GET /v3/pods/{id} with a user's JWT, as fast as autocannon can ask, against
// a real coordinator process on a real Redis; beside a bare node:http server (bench/bare-http.ts)
// answering the same bytes, measured in the same run. The machine may be shared, so the ratio to
// the bare server (which the same load slows as much) is reported beside the absolute figures,
// with the load average before and after. Results go to bench/results/api-read.json.
//
// BENCH_API_ROUNDS (3) rounds of BENCH_API_DURATION_S (10) per server, after a 2 s warm-up of
// each; BENCH_API_CONNECTIONS (50);
// BENCH_API_CPU_PROF=DIR runs the coordinator with --cpu-prof into DIR (a .cpuprofile, for
// Chrome's DevTools or `node --cpu-prof` readers); BENCH_API_COORDINATOR=PATH runs another build's
// dist/coordinator/main.js (an older commit's, to compare under the same load);
// BENCH_API_LIST_PODS=N measures the list GET /v3/pods of N such pods instead (results in
// bench/results/api-read-list.json).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { request } from 'undici';
import { freePort } from '../test/helpers/ports.js';
import { Proc, waitFor } from '../test/helpers/procs.js';
import { startRedis } from '../test/helpers/redis.js';
import { repoRoot } from '../test/helpers/root.js';

const DURATION_S = Number(process.env.BENCH_API_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_API_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_API_ROUNDS ?? 3);
const CPU_PROF = process.env.BENCH_API_CPU_PROF;
const LIST_PODS = Number(process.env.BENCH_API_LIST_PODS ?? 0);
const TARGETS = { coordinator_req_per_s: 15_000, coordinator_p99_ms: 10 };

interface Figures {
  req_per_s: number;
  /** CPU time (user + system) the server process spent per request: what contention changes least. */
  cpu_us_per_request: number;
  /** The same for Redis (0 for the bare server, which uses none). */
  redis_cpu_us_per_request: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  requests: number;
  non_2xx: number;
  errors: number;
}

async function call(base: string, method: string, p: string, token: string, body?: unknown): Promise<{ status: number; text: string; contentType: string }> {
  const headers: Record<string, string> = { 'x-tapis-token': token };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${base}${p}`, { method: method as 'GET', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.statusCode, text: await res.body.text(), contentType: String(res.headers['content-type']) };
}

async function must(base: string, method: string, p: string, token: string, body?: unknown): Promise<any> {
  const r = await call(base, method, p, token, body);
  if (r.status !== 200) throw new Error(`${method} ${p} answered ${r.status}: ${r.text.slice(0, 300)}`);
  return JSON.parse(r.text).result;
}

/** CPU seconds a process has used so far (utime + stime from /proc, in clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function load(url: string, token: string, durationS: number, serverPid: number, redisPid?: number): Promise<Figures> {
  const [cpu0, redis0] = [await cpuSeconds(serverPid), redisPid ? await cpuSeconds(redisPid) : 0];
  const r = await autocannon({ url, connections: CONNECTIONS, duration: durationS, headers: { 'x-tapis-token': token } });
  const cpu = (await cpuSeconds(serverPid)) - cpu0;
  const redisCpu = redisPid ? (await cpuSeconds(redisPid)) - redis0 : 0;
  return {
    req_per_s: Math.round(r.requests.average),
    cpu_us_per_request: Math.round((cpu * 1e6) / Math.max(1, r.requests.total)),
    redis_cpu_us_per_request: Math.round((redisCpu * 1e6) / Math.max(1, r.requests.total)),
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    max_ms: r.latency.max,
    requests: r.requests.total,
    non_2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  };
}

/** The bare server on the answer's bytes; resolves with its port once it listens. */
async function startBare(bodyFile: string, contentType: string): Promise<{ port: number; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [path.join(repoRoot(), 'dist/bench/bare-http.js'), bodyFile, contentType], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    proc.once('exit', (code) => reject(new Error(`the bare server exited (${code})`)));
  });
  return { port, proc };
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const load1 = () => round2(loadavg()[0]!);

async function main(): Promise<void> {
  const root = repoRoot();
  const redis = await startRedis();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const adminToken = `admin-${randomBytes(16).toString('hex')}`;
  if (CPU_PROF) await mkdir(CPU_PROF, { recursive: true });
  const coordinator = new Proc('coordinator', process.execPath, [...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : []), process.env.BENCH_API_COORDINATOR || path.join(root, 'dist/coordinator/main.js')], {
    PODS_LISTEN_HOST: '127.0.0.1',
    PODS_LISTEN_PORT: String(port),
    PODS_REDIS_URL: redis.url,
    PODS_REDIS_PREFIX: 'bench:',
    PODS_TENANT: 'dev',
    PODS_PUBLIC_URL: base,
    PODS_ADMIN_TOKEN: adminToken,
    PODS_LOG_LEVEL: 'info',
  }).start();
  const work = await mkdtemp(path.join(tmpdir(), 'pods-bench-api-'));
  let bare: ChildProcess | undefined;
  try {
    await waitFor('the coordinator to answer', async () => (await call(base, 'GET', '/v3/healthcheck', '')).status === 200, 20_000);
    // A plain user (no admin role), so every request checks the pod's permissions for real.
    await must(base, 'POST', '/v3/admin/users', adminToken, { username: 'reader', password: 'reader-password' });
    await must(base, 'POST', '/v3/pods/images', adminToken, { image: 'pods-test/httpd' });
    const login = await request(`${base}/v3/oauth2/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'reader', password: 'reader-password', grant_type: 'password' }),
    });
    const jwt = ((await login.body.json()) as any).result.access_token.access_token as string;
    const podIds = LIST_PODS > 0 ? Array.from({ length: LIST_PODS }, (_, i) => `benchread${i}`) : ['benchread'];
    for (const pod_id of podIds) await must(base, 'POST', '/v3/pods', jwt, { pod_id, image: 'pods-test/httpd' });
    const readPath = LIST_PODS > 0 ? '/v3/pods' : '/v3/pods/benchread';
    const podUrl = `${base}${readPath}`;
    const answer = await call(base, 'GET', readPath, jwt);
    if (answer.status !== 200) throw new Error(`GET answered ${answer.status}: ${answer.text}`);
    const bodyFile = path.join(work, 'body.json');
    await writeFile(bodyFile, answer.text);
    const started = await startBare(bodyFile, answer.contentType);
    bare = started.proc;
    const bareUrl = `http://127.0.0.1:${started.port}${readPath}`;

    // Warm both (JIT, connection pools), then rounds of the bare server and the coordinator back
    // to back: each round's ratio compares two runs under (nearly) the same outside load.
    await load(bareUrl, jwt, 2, bare.pid!);
    await load(podUrl, jwt, 2, coordinator.pid!);
    const rounds: Array<{ load_average: number; bare_node_http: Figures; coordinator: Figures; ratio_to_bare: number }> = [];
    for (let i = 0; i < ROUNDS; i++) {
      const loadAverage = load1();
      const bareFigures = await load(bareUrl, jwt, DURATION_S, bare.pid!);
      const ours = await load(podUrl, jwt, DURATION_S, coordinator.pid!, redis.proc.pid);
      if (ours.non_2xx || ours.errors) throw new Error(`the coordinator answered ${ours.non_2xx} non-2xx and ${ours.errors} errors`);
      rounds.push({ load_average: loadAverage, bare_node_http: bareFigures, coordinator: ours, ratio_to_bare: round2(ours.req_per_s / bareFigures.req_per_s) });
    }
    // The round with the median ratio stands for the run; every round is kept beside it.
    const median = [...rounds].sort((a, b) => a.ratio_to_bare - b.ratio_to_bare)[Math.floor(rounds.length / 2)]!;

    const result = {
      measured_at: new Date().toISOString(),
      machine: `${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), shared with other work`,
      load_average_after: loadavg().map(round2),
      coordinator_build: process.env.BENCH_API_COORDINATOR || 'this checkout',
      request: `${LIST_PODS > 0 ? `GET /v3/pods (${LIST_PODS} pods)` : 'GET /v3/pods/{id}'} by its owner, a plain user (no admin role), with a JWT in X-Tapis-Token`,
      body_bytes: Buffer.byteLength(answer.text),
      connections: CONNECTIONS,
      duration_s: DURATION_S,
      median_round: median,
      rounds,
      ...(LIST_PODS > 0 ? {} : { targets: TARGETS }),
    };
    const dir = path.join(root, 'bench', 'results');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, LIST_PODS > 0 ? 'api-read-list.json' : 'api-read.json'), JSON.stringify(result, null, 2) + '\n');
    console.log('| round | load avg | server | req/s | p50 ms | p99 ms | max ms | CPU µs/req | Redis CPU µs/req |\n|---|---|---|---|---|---|---|---|---|');
    rounds.forEach((r, i) => {
      for (const [name, f] of [['coordinator', r.coordinator], ['bare node:http', r.bare_node_http]] as const) {
        console.log(`| ${i + 1} | ${r.load_average} | ${name} | ${f.req_per_s} | ${f.p50_ms} | ${f.p99_ms} | ${f.max_ms} | ${f.cpu_us_per_request} | ${f.redis_cpu_us_per_request} |`);
      }
    });
    console.log(`\nratio to bare per round: ${rounds.map((r) => r.ratio_to_bare).join(' ')}; median round: ${median.coordinator.req_per_s} req/s, p99 ${median.coordinator.p99_ms} ms`);
    if (LIST_PODS === 0) console.log(`targets: >= ${TARGETS.coordinator_req_per_s} req/s, p99 <= ${TARGETS.coordinator_p99_ms} ms`);
  } finally {
    bare?.kill('SIGTERM');
    // SIGTERM: a clean exit, so that --cpu-prof writes its profile.
    await coordinator.kill('SIGTERM');
    await redis.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
