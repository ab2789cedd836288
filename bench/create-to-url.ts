// npm run bench: how long from one API call to RUNNING and to a first HTTP 200 through
// Caddy, beside raw `docker run -d` plus curl of the published port, same image, same host;
// for a redis pod from its template, from the call to a PING answered through TLS+SNI; and a
// burst: BENCH_BURST_PODS (40) pods created at once on one host (the host's CPU overcommitted
// so that they all fit) against as many `docker run -d` at once, each to its first HTTP 200.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { LOCAL_TEMPLATES_DIR } from '../coordinator/builtin-templates.js';
import { freePort } from '../test/helpers/ports.js';
import { startStack, repoRoot, TEST_IMAGE, type Stack } from '../test/helpers/stack.js';
import { waitFor } from '../test/helpers/procs.js';

const run = promisify(execFile);
const PODS = Number(process.env.BENCH_PODS ?? 20);
const TCP_PODS = Number(process.env.BENCH_TCP_PODS ?? 10);
const BURST = Number(process.env.BENCH_BURST_PODS ?? 40);
/** How often a burst polls each pod (gentler than the one-at-a-time loops: 40 pollers share 2 CPUs). */
const BURST_POLL_MS = 50;
const RAW_DOCKER_ARGS = ['--user', '1000:1000', '--cap-drop', 'ALL', '-p', '127.0.0.1::5000', '--label', 'pods.bench=1'];

const round2 = (x: number) => Math.round(x * 100) / 100;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!);
}

async function http200(url: string, host?: string): Promise<boolean> {
  try {
    const r = await request(url, { headers: host ? { host } : {}, headersTimeout: 2000, bodyTimeout: 2000 });
    await r.body.dump();
    return r.statusCode === 200;
  } catch {
    return false;
  }
}

/**
 * Delete a pod and wait for its teardown: a deleted pod is a 404 at once, so wait until its
 * host has no pod placed (its container is gone and its room given back).
 */
async function deleted(s: Stack, podId: string): Promise<void> {
  await s.api('DELETE', `/v3/pods/${podId}`);
  await waitFor('the pod to be torn down', async () => (await s.api('GET', `/v3/admin/nodes/${s.nodeId}`)).body.result.usage.pods === 0, 60_000, 20);
}

/** Per pod of a burst, ms from its start: to the create's answer, to RUNNING, to the first HTTP 200. */
interface BurstTimes {
  created: number[];
  running: number[];
  url: number[];
}

async function oursBurst(s: Stack): Promise<BurstTimes> {
  const t0 = performance.now();
  const times: BurstTimes = { created: [], running: [], url: [] };
  await Promise.all(
    Array.from({ length: BURST }, async (_, i) => {
      const podId = `burst${i}`;
      const r = await s.api('POST', '/v3/pods', { body: { pod_id: podId, image: TEST_IMAGE } });
      if (r.status !== 200) throw new Error(`create ${podId} failed: ${r.body.message}`);
      times.created[i] = performance.now() - t0;
      await waitFor(`${podId} to run`, async () => (await s.api('GET', `/v3/pods/${podId}`)).body.result.status === 'RUNNING', 120_000, BURST_POLL_MS);
      times.running[i] = performance.now() - t0;
      const host = r.body.result.url as string;
      await waitFor(`${podId} to answer`, () => http200(`${s.caddy.httpUrl}/`, host), 120_000, BURST_POLL_MS);
      times.url[i] = performance.now() - t0;
    }),
  );
  for (let i = 0; i < BURST; i++) await s.api('DELETE', `/v3/pods/burst${i}`);
  await waitFor('the burst to be torn down', async () => (await s.api('GET', `/v3/admin/nodes/${s.nodeId}`)).body.result.usage.pods === 0, 120_000, 100);
  return times;
}

async function ours(): Promise<{ running: number[]; url: number[]; tcp: number[]; burst: BurstTimes }> {
  const tlsPort = await freePort();
  const s = await startStack({
    agentEnv: { PODS_CADDY_TLS_LISTEN: `127.0.0.1:${tlsPort}`, PODS_DOCKER_NETWORK: process.env.PODS_DOCKER_NETWORK ?? 'bridge' },
    // Room for the burst on a 2-CPU host: 250m requested per pod, 2000m x 5.
    coordinatorEnv: { PODS_TEMPLATES_LOCAL_DIR: LOCAL_TEMPLATES_DIR, PODS_NODE_OVERCOMMIT_CPU: String(Math.max(1, Math.ceil((BURST * 250) / 2000))) },
  });
  const running: number[] = [];
  const url: number[] = [];
  const tcp: number[] = [];
  let burst: BurstTimes = { created: [], running: [], url: [] };
  try {
    for (let i = 0; i < PODS; i++) {
      const podId = `bench${i}`;
      const t0 = performance.now();
      const r = await s.api('POST', '/v3/pods', { body: { pod_id: podId, image: TEST_IMAGE } });
      if (r.status !== 200) throw new Error(`create failed: ${r.body.message}`);
      await waitFor('RUNNING', async () => (await s.api('GET', `/v3/pods/${podId}`)).body.result.status === 'RUNNING', 60_000, 10);
      running.push(performance.now() - t0);
      const host = r.body.result.url as string;
      await waitFor('HTTP 200', () => http200(`${s.caddy.httpUrl}/`, host), 60_000, 10);
      url.push(performance.now() - t0);
      // Like the raw loop's `docker rm -f`, finish the removal before the next create.
      await deleted(s, podId);
    }
    // A redis pod from its template, as `npm run up` serves it where no registry answers (the
    // local image as redis:latest): create -> PING answered through TLS by host name.
    for (let i = 0; i < TCP_PODS; i++) {
      const podId = `benchtcp${i}`;
      const t0 = performance.now();
      const r = await s.api('POST', '/v3/pods', { body: { pod_id: podId, template: 'redis' } });
      if (r.status !== 200) throw new Error(`create failed: ${r.body.message}`);
      const host = r.body.result.networking.default.url as string;
      const { user_password } = (await s.api('GET', `/v3/pods/${podId}/credentials`)).body.result;
      await waitFor('PONG', async () => {
        const { stdout } = await run('redis-cli', ['--no-auth-warning', '--tls', '--sni', host, '--insecure', '-h', '127.0.0.1', '-p', String(tlsPort), '-a', user_password, 'PING']).catch(() => ({ stdout: '' }));
        return stdout.trim() === 'PONG';
      }, 60_000, 10);
      tcp.push(performance.now() - t0);
      await deleted(s, podId);
    }
    burst = await oursBurst(s);
  } finally {
    await s.stop();
  }
  return { running, url, tcp, burst };
}

async function rawDocker(): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < PODS; i++) {
    const t0 = performance.now();
    const id = await dockerRun();
    await waitFor('HTTP 200', async () => http200(`http://127.0.0.1:${await publishedPort(id)}/`), 60_000, 10);
    times.push(performance.now() - t0);
    await run('docker', ['rm', '-f', id]);
  }
  return times;
}

async function dockerRun(): Promise<string> {
  return (await run('docker', ['run', '-d', ...RAW_DOCKER_ARGS, TEST_IMAGE])).stdout.trim();
}

async function publishedPort(id: string): Promise<string> {
  return (await run('docker', ['port', id, '5000/tcp'])).stdout.trim().split('\n')[0]!.split(':').pop()!;
}

/** Per container of a burst of `docker run -d` at once: ms from the start to its first HTTP 200. */
async function rawDockerBurst(): Promise<number[]> {
  const t0 = performance.now();
  const ids: string[] = [];
  try {
    return await Promise.all(
      Array.from({ length: BURST }, async () => {
        const id = await dockerRun();
        ids.push(id);
        const port = await publishedPort(id);
        await waitFor('HTTP 200', () => http200(`http://127.0.0.1:${port}/`), 120_000, BURST_POLL_MS);
        return performance.now() - t0;
      }),
    );
  } finally {
    if (ids.length) await run('docker', ['rm', '-f', ...ids]);
  }
}

async function main(): Promise<void> {
  const loadBefore = loadavg().map(round2);
  const docker = await rawDocker();
  const dockerBurst = await rawDockerBurst();
  const { running, url, tcp, burst } = await ours();
  const loadAfter = loadavg().map(round2);
  // Every sample, not only the percentiles: one slow pod in twenty hides in a p50.
  const ms = (xs: number[]) => xs.map((x) => Math.round(x));
  console.log('per pod, create -> RUNNING ms:', ms(running).join(' '));
  console.log('per pod, create -> first HTTP 200 ms:', ms(url).join(' '));
  console.log('per pod, redis template create -> PING ms:', ms(tcp).join(' '));
  console.log('per run, raw docker run -> HTTP 200 ms:', ms(docker).join(' '));
  console.log(`burst of ${BURST}, create answered ms:`, ms(burst.created).join(' '));
  console.log(`burst of ${BURST}, create -> RUNNING ms:`, ms(burst.running).join(' '));
  console.log(`burst of ${BURST}, create -> first HTTP 200 ms:`, ms(burst.url).join(' '));
  console.log(`burst of ${BURST}, raw docker run -> HTTP 200 ms:`, ms(dockerBurst).join(' '));
  const result = {
    measured_at: new Date().toISOString(),
    machine: `${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), shared with other work`,
    load_average_before: loadBefore,
    load_average_after: loadAfter,
    pods: PODS,
    image: TEST_IMAGE,
    create_to_running_p50_ms: pct(running, 50),
    create_to_running_p95_ms: pct(running, 95),
    create_to_url_p50_ms: pct(url, 50),
    create_to_url_p95_ms: pct(url, 95),
    docker_run_to_http_p50_ms: pct(docker, 50),
    docker_run_to_http_p95_ms: pct(docker, 95),
    create_to_tcp_p50_ms: pct(tcp, 50),
    create_to_tcp_p95_ms: pct(tcp, 95),
    tcp_pods: TCP_PODS,
    running_ratio_vs_docker: round2(pct(running, 50) / pct(docker, 50)),
    create_to_url_p95_over_p50: round2(pct(url, 95) / pct(url, 50)),
    burst_pods: BURST,
    burst_to_running_p50_ms: pct(burst.running, 50),
    burst_to_running_all_ms: pct(burst.running, 100),
    burst_to_url_p50_ms: pct(burst.url, 50),
    burst_to_url_p95_ms: pct(burst.url, 95),
    burst_to_url_all_ms: pct(burst.url, 100),
    docker_burst_to_http_p50_ms: pct(dockerBurst, 50),
    docker_burst_to_http_p95_ms: pct(dockerBurst, 95),
    docker_burst_to_http_all_ms: pct(dockerBurst, 100),
    /** The time until every pod of the burst serves, over the same for raw Docker. */
    burst_ratio_vs_docker: round2(pct(burst.url, 100) / pct(dockerBurst, 100)),
    targets: { running_ratio_vs_docker: 1.15, create_to_url_p50_ms: 1500, create_to_url_p95_over_p50: 1.5 },
    samples_ms: {
      create_to_running: ms(running), create_to_url: ms(url), create_to_tcp: ms(tcp), docker_run_to_http: ms(docker),
      burst_created: ms(burst.created), burst_to_running: ms(burst.running), burst_to_url: ms(burst.url), docker_burst_to_http: ms(dockerBurst),
    },
  };
  const dir = path.join(repoRoot(), 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('| metric | p50 ms | p95 ms |\n|---|---|---|');
  console.log(`| create -> RUNNING | ${result.create_to_running_p50_ms} | ${result.create_to_running_p95_ms} |`);
  console.log(`| create -> first HTTP 200 through Caddy | ${result.create_to_url_p50_ms} | ${result.create_to_url_p95_ms} |`);
  console.log(`| redis template: create -> PING answered through TLS+SNI | ${result.create_to_tcp_p50_ms} | ${result.create_to_tcp_p95_ms} |`);
  console.log(`| raw docker run -d -> first HTTP 200 | ${result.docker_run_to_http_p50_ms} | ${result.docker_run_to_http_p95_ms} |`);
  console.log(`| burst of ${BURST}: create -> first HTTP 200 (all by ${result.burst_to_url_all_ms}) | ${result.burst_to_url_p50_ms} | ${result.burst_to_url_p95_ms} |`);
  console.log(`| burst of ${BURST}: raw docker run -d -> first HTTP 200 (all by ${result.docker_burst_to_http_all_ms}) | ${result.docker_burst_to_http_p50_ms} | ${result.docker_burst_to_http_p95_ms} |`);
  console.log(`\nload average before ${loadBefore.join(' ')}, after ${loadAfter.join(' ')}`);
  console.log(`running_ratio_vs_docker = ${result.running_ratio_vs_docker} (target <= 1.15); create_to_url p95/p50 = ${result.create_to_url_p95_over_p50} (target <= 1.5); create_to_url_p50_ms = ${result.create_to_url_p50_ms} (target <= 1500); burst_ratio_vs_docker = ${result.burst_ratio_vs_docker}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
