// npm run bench: how long from one API call to RUNNING and to a first HTTP 200 through
// Caddy, beside raw `docker run -d` plus curl of the published port, same image, same host;
// and for a redis pod from its template, from the call to a PING answered through TLS+SNI.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
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

async function ours(): Promise<{ running: number[]; url: number[]; tcp: number[] }> {
  const tlsPort = await freePort();
  const s = await startStack({
    agentEnv: { PODS_CADDY_TLS_LISTEN: `127.0.0.1:${tlsPort}`, PODS_DOCKER_NETWORK: process.env.PODS_DOCKER_NETWORK ?? 'bridge' },
    coordinatorEnv: { PODS_TEMPLATES_LOCAL_DIR: LOCAL_TEMPLATES_DIR },
  });
  const running: number[] = [];
  const url: number[] = [];
  const tcp: number[] = [];
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
  } finally {
    await s.stop();
  }
  return { running, url, tcp };
}

async function rawDocker(): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < PODS; i++) {
    const t0 = performance.now();
    const { stdout } = await run('docker', ['run', '-d', '--user', '1000:1000', '--cap-drop', 'ALL', '-p', '127.0.0.1::5000', '--label', 'pods.bench=1', TEST_IMAGE]);
    const id = stdout.trim();
    const port = (await run('docker', ['port', id, '5000/tcp'])).stdout.trim().split('\n')[0]!.split(':').pop();
    await waitFor('HTTP 200', () => http200(`http://127.0.0.1:${port}/`), 60_000, 10);
    times.push(performance.now() - t0);
    await run('docker', ['rm', '-f', id]);
  }
  return times;
}

async function main(): Promise<void> {
  const docker = await rawDocker();
  const { running, url, tcp } = await ours();
  // Every sample, not only the percentiles: one slow pod in twenty hides in a p50.
  const ms = (xs: number[]) => xs.map((x) => Math.round(x));
  console.log('per pod, create -> RUNNING ms:', ms(running).join(' '));
  console.log('per pod, create -> first HTTP 200 ms:', ms(url).join(' '));
  console.log('per pod, redis template create -> PING ms:', ms(tcp).join(' '));
  console.log('per run, raw docker run -> HTTP 200 ms:', ms(docker).join(' '));
  const result = {
    measured_at: new Date().toISOString(),
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
    running_ratio_vs_docker: Math.round((pct(running, 50) / pct(docker, 50)) * 100) / 100,
    targets: { running_ratio_vs_docker: 1.25, create_to_url_p50_ms: 1500 },
    samples_ms: { create_to_running: ms(running), create_to_url: ms(url), create_to_tcp: ms(tcp), docker_run_to_http: ms(docker) },
  };
  const dir = path.join(repoRoot(), 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('| metric | p50 ms | p95 ms |\n|---|---|---|');
  console.log(`| create -> RUNNING | ${result.create_to_running_p50_ms} | ${result.create_to_running_p95_ms} |`);
  console.log(`| create -> first HTTP 200 through Caddy | ${result.create_to_url_p50_ms} | ${result.create_to_url_p95_ms} |`);
  console.log(`| redis template: create -> PING answered through TLS+SNI | ${result.create_to_tcp_p50_ms} | ${result.create_to_tcp_p95_ms} |`);
  console.log(`| raw docker run -d -> first HTTP 200 | ${result.docker_run_to_http_p50_ms} | ${result.docker_run_to_http_p95_ms} |`);
  console.log(`\nrunning_ratio_vs_docker = ${result.running_ratio_vs_docker} (target <= 1.25); create_to_url_p50_ms = ${result.create_to_url_p50_ms} (target <= 1500)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
