// npm run bench (as root; with the cluster tests' needs): create -> first HTTP 200 through the
// edge on three hosts, with our scheduler (PODS_BACKEND=agents, ops/cluster/hosts.sh) and with
// Docker Swarm (PODS_BACKEND=swarm, ops/cluster/swarm.sh), one after the other in the same run.
// Pods are made one at a time, each deleted before the next. Writes bench/results/backends.json.
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { HOSTS_LAYOUT, startCluster, SWARM_LAYOUT, waitFor, TEST_IMAGE, type ClusterOptions } from '../test/cluster/harness.js';
import { repoRoot } from '../test/helpers/stack.js';

const PODS = Number(process.env.BENCH_PODS ?? 10);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!);
}

const summary = (xs: number[]) => ({ p50_ms: pct(xs, 50), p95_ms: pct(xs, 95), max_ms: Math.round(Math.max(...xs)), samples_ms: xs.map(Math.round) });

async function createToUrl(name: string, opts: ClusterOptions): Promise<number[]> {
  const c = await startCluster({ hosts: 3, ...opts });
  const out: number[] = [];
  try {
    for (let i = 0; i < PODS; i++) {
      const podId = `bench${name}${i}`;
      const t0 = performance.now();
      const r = await c.api('POST', '/v3/pods', { body: { pod_id: podId, image: TEST_IMAGE } });
      if (r.status !== 200) throw new Error(`create failed: ${r.body.message}`);
      await waitFor(`${podId} through the edge`, async () => (await c.viaEdge(podId, 2000).catch(() => ({ status: 0 }))).status === 200, 60_000, 10).catch(async (err: Error) => {
        const pod = await c.pod(podId).catch(() => null);
        throw new Error(`${err.message}; the pod: ${JSON.stringify(pod?.status_container)} ${pod?.status}\n${c.diagnostics()}`);
      });
      out.push(performance.now() - t0);
      await c.api('DELETE', `/v3/pods/${podId}`);
      await waitFor(`${podId} gone`, async () => (await c.containersOf(podId)).every((x) => x.state !== 'running'), 60_000, 50);
    }
  } finally {
    await c.stop();
  }
  return out;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('bench backends: skipped (needs root for the hosts\' network namespaces)');
    return;
  }
  const loadBefore = loadavg().map((x) => x.toFixed(2)).join(' ');
  const agents = await createToUrl('a', { layout: HOSTS_LAYOUT });
  const swarm = await createToUrl('s', {
    layout: SWARM_LAYOUT,
    coordinatorEnv: { PODS_BACKEND: 'swarm', PODS_SWARM_DOCKER_SOCKET: `${SWARM_LAYOUT.run}/h1/docker.sock`, PODS_SWARM_IMAGES: 'local' },
    agentEnv: { PODS_BACKEND: 'swarm' },
  });
  const loadAfter = loadavg().map((x) => x.toFixed(2)).join(' ');
  const result = {
    measured_at: new Date().toISOString(),
    pods: PODS,
    hosts: 3,
    image: TEST_IMAGE,
    load_average_before: loadBefore,
    load_average_after: loadAfter,
    create_to_url_through_edge: { agents: summary(agents), swarm: summary(swarm) },
  };
  const dir = path.join(repoRoot(), 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'backends.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`load average ${loadBefore} (before), ${loadAfter} (after)`);
  console.log('| backend (3 hosts) | create -> HTTP 200 through the edge p50 ms | p95 ms | max ms |\n|---|---|---|---|');
  for (const [name, s] of Object.entries(result.create_to_url_through_edge)) console.log(`| ${name} | ${s.p50_ms} | ${s.p95_ms} | ${s.max_ms} |`);
  console.log(`agents samples: ${result.create_to_url_through_edge.agents.samples_ms.join(' ')}`);
  console.log(`swarm samples: ${result.create_to_url_through_edge.swarm.samples_ms.join(' ')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
