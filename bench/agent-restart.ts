// npm run bench:restart: how long an agent takes to take charge again of a host's pods after
// it was killed. One host (this machine's dockerd, a real Caddy, the real coordinator and
// agent processes) runs BENCH_PODS pods of the test image, each with an HTTP route. Then,
// BENCH_ROUNDS times: `kill -9` the agent, start it again, and time
//   adopted: every pod reported running and healthy by the new agent (its pod_status, read
//            from the coordinator's Redis: the observation is newer than the restart);
//   routes:  Caddy answered the new agent's load of the whole route table (all BENCH_PODS
//            routes), checked afterwards in Caddy's own config;
// and count the Docker API calls the new agent made until both were done, through a
// counting proxy on the Docker socket. Every pod then answers through Caddy.
//
// Results: bench/results/agent-restart.json. Containers carry the stack's own node label and
// are removed at the end, also when the bench fails.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createClient } from 'redis';
import { request } from 'undici';
import { waitFor } from '../test/helpers/procs.js';
import { docker, repoRoot, startStack, TEST_IMAGE, type Stack } from '../test/helpers/stack.js';
import { startDockerCallCounter, type DockerCallCounter } from './docker-call-counter.js';
import { positiveSetting } from './settings.js';


const PODS = positiveSetting('BENCH_PODS', 200);
const ROUNDS = positiveSetting('BENCH_ROUNDS', 5);
const CREATE_CONCURRENCY = positiveSetting('BENCH_CONCURRENCY', 8);
const TARGET_MS = 5000;
/**
 * The defaults where the test stack shortens them for quick tests: 200 pods probed every 500 ms
 * load this host by themselves, and a coordinator that pings every second cuts the link of an
 * agent that answers a ping late while it adopts 200 pods on a loaded host.
 */
const DEFAULT_SETTINGS = {
  agent: { PODS_PROBE_INTERVAL_MS: '2000', PODS_CADDY_CHECK_MS: '2000', PODS_HEARTBEAT_MS: '5000' },
  coordinator: { PODS_AGENT_PING_MS: '10000', PODS_RECONCILE_INTERVAL_MS: '1000' },
};
/** Small requests, so 200 pods fit on a 2-CPU host. */
const RESOURCES = { cpu_request: 5, cpu_limit: 100, mem_request: 8, mem_limit: 64 };

interface Round {
  /** From the restart: the agent process said it started (runtime and Caddy client ready), its hello was answered. */
  agent_started_ms: number;
  hello_answered_ms: number;
  adopted_ms: number;
  routes_ms: number;
  docker_calls: number;
  docker_calls_by_kind: Record<string, number>;
  /** The new agent's warnings and errors until it was done, by message (a reconnect shows here). */
  agent_warnings: Record<string, number>;
}

const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
const podIds = Array.from({ length: PODS }, (_, i) => `restart${i}`);

async function createPods(s: Stack): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < podIds.length) {
      const podId = podIds[next++]!;
      const r = await s.api('POST', '/v3/pods', { body: { pod_id: podId, image: TEST_IMAGE, resources: RESOURCES } });
      if (r.status !== 200) throw new Error(`creating ${podId}: ${r.status} ${r.body.message}`);
    }
  };
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, worker));
  await waitFor(`all ${PODS} pods RUNNING`, async () => {
    const r = await s.api('GET', '/v3/pods');
    return (r.body.result as Array<{ status: string }>).filter((p) => p.status === 'RUNNING').length === PODS;
  }, 15 * 60_000, 1000);
}

/** The Caddy routes' ids and upstreams, as Caddy holds them now. */
async function caddyRoutes(s: Stack): Promise<Map<string, string>> {
  const res = await request(`${s.caddy.adminUrl}/config/apps/http/servers`);
  const servers = (await res.body.json()) as Record<string, { routes?: Array<{ handle?: Array<{ routes?: unknown[] }> }> }>;
  const out = new Map<string, string>();
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) return x.forEach(walk);
    if (!x || typeof x !== 'object') return;
    const o = x as Record<string, unknown>;
    if (typeof o['@id'] === 'string' && o['@id'].startsWith('pod-')) {
      const dial = JSON.stringify(o).match(/"dial":"([^"]+)"/);
      out.set(o['@id'], dial?.[1] ?? '');
    }
    Object.values(o).forEach(walk);
  };
  walk(servers);
  return out;
}

/** The published port of each pod's container, from Docker. */
async function publishedPorts(s: Stack): Promise<Map<string, string>> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`pods.node=${s.nodeId}`] }));
  const list = (await docker('GET', `/containers/json?filters=${filters}`)) as Array<{ Labels: Record<string, string>; Ports: Array<{ PublicPort?: number; IP?: string }> }>;
  return new Map(list.map((c) => [`pod-${s.tenant}-${c.Labels['pods.pod_id']}-default`, `${c.Ports.find((p) => p.PublicPort)?.IP}:${c.Ports.find((p) => p.PublicPort)?.PublicPort}`]));
}

async function restartRound(s: Stack, counter: DockerCallCounter, redis: ReturnType<typeof createClient>): Promise<Round> {
  await s.agent.kill('SIGKILL');
  counter.reset();
  const t0 = Date.now();
  s.agent.start();
  const key = (podId: string) => `${s.redisPrefix}pod:${s.tenant}:${podId}`;
  let adoptedAt = 0;
  let routesAt = 0;
  let callsAtDone = 0;
  let kinds: Record<string, number> = {};
  const deadline = t0 + 120_000;
  // The agent's output is kept only in part (its last 20 kB): gather its lines as they come.
  const seen = new Map<string, { time: number; msg: string; level: number; routes?: number }>();
  const gather = () => {
    for (const entry of agentLog(s, t0)) seen.set(`${entry.time} ${entry.msg} ${JSON.stringify(entry)}`, entry);
    return [...seen.values()].sort((a, b) => a.time - b.time);
  };
  while (Date.now() < deadline && !(adoptedAt && routesAt)) {
    const log = gather();
    if (!adoptedAt) {
      const batch = redis.multi();
      for (const id of podIds) batch.hGet(key(id), 'observed');
      const observed = (await batch.exec()) as unknown as Array<string | null>;
      const fresh = observed.filter((raw) => {
        const o = raw ? (JSON.parse(raw) as { at: string; phase: string; health: string }) : null;
        return o && Date.parse(o.at) >= t0 && o.phase === 'running' && o.health === 'healthy';
      }).length;
      if (fresh === PODS) adoptedAt = Date.now();
    }
    if (!routesAt) {
      // The agent's log says when Caddy took its load of the whole table.
      routesAt = log.find((m) => m.msg === 'caddy config loaded' && m.routes === PODS)?.time ?? 0;
    }
    if (adoptedAt && routesAt) {
      callsAtDone = counter.total();
      kinds = Object.fromEntries([...counter.calls()].sort((a, b) => b[1] - a[1]));
    }
    // Every 100 ms: the bench shares the 2 CPUs with what it measures.
    if (!(adoptedAt && routesAt)) await new Promise((r) => setTimeout(r, 100));
  }
  if (!adoptedAt || !routesAt) throw new Error(`round did not finish in 120 s (adopted: ${!!adoptedAt}, routes: ${!!routesAt})\n${s.agent.output.slice(-3000)}`);
  // What Caddy serves is every pod's route, to the port its container is published on.
  const [served, published] = [await caddyRoutes(s), await publishedPorts(s)];
  for (const [id, upstream] of published) {
    if (served.get(id) !== upstream) throw new Error(`route ${id}: Caddy has ${served.get(id)}, the container is on ${upstream}`);
  }
  if (published.size !== PODS) throw new Error(`${published.size} containers running, expected ${PODS}`);
  const log = gather().filter((m) => m.time <= Math.max(adoptedAt, routesAt));
  const at = (msg: string) => (log.find((m) => m.msg === msg)?.time ?? t0) - t0;
  const warnings: Record<string, number> = {};
  for (const m of log) if (m.level >= 40) warnings[m.msg] = (warnings[m.msg] ?? 0) + 1;
  return { agent_started_ms: at('agent started'), hello_answered_ms: at('connected to coordinator'), agent_warnings: warnings, adopted_ms: adoptedAt - t0, routes_ms: routesAt - t0, docker_calls: callsAtDone, docker_calls_by_kind: kinds };
}

/** The agent's log lines (pino JSON, `time` in ms) from `since` on. */
function agentLog(s: Stack, since: number): Array<{ time: number; msg: string; level: number; routes?: number }> {
  const out: Array<{ time: number; msg: string; level: number; routes?: number }> = [];
  for (const line of s.agent.output.split('\n')) {
    if (!line.startsWith('{') || !line.endsWith('}')) continue;
    const entry = JSON.parse(line) as { time: number; msg: string; level: number; routes?: number };
    if (entry.time >= since) out.push(entry);
  }
  return out;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function main(): Promise<void> {
  const loadBefore = uptime();
  console.log(`load before: ${loadBefore}`);
  const counter = await startDockerCallCounter();
  let s: Stack | null = null;
  const rounds: Round[] = [];
  let loadDuring = '';
  try {
    s = await startStack({
      agentEnv: { ...DEFAULT_SETTINGS.agent, PODS_DOCKER_SOCKET: counter.socketPath, PODS_LOG_LEVEL: 'info' },
      coordinatorEnv: DEFAULT_SETTINGS.coordinator,
    });
    const t0 = Date.now();
    await createPods(s);
    console.log(`${PODS} pods RUNNING after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const redis = createClient({ url: s.redis.url });
    await redis.connect();
    try {
      for (let i = 0; i < ROUNDS; i++) {
        // Let the host settle (the agent's first usage round, probes) before the next kill.
        await new Promise((r) => setTimeout(r, 5000));
        const round = await restartRound(s, counter, redis);
        rounds.push(round);
        loadDuring = uptime();
        console.log(`round ${i + 1}: agent started ${round.agent_started_ms} ms, hello answered ${round.hello_answered_ms} ms, adopted ${round.adopted_ms} ms, routes ${round.routes_ms} ms, ${round.docker_calls} Docker API calls, warnings ${JSON.stringify(round.agent_warnings)} (${loadDuring})`);
      }
    } finally {
      await redis.quit();
    }
    // Every pod answers through Caddy after the last restart.
    const hosts = (await s.api('GET', '/v3/pods')).body.result as Array<{ url: string }>;
    let ok = 0;
    for (const p of hosts) if ((await s.viaCaddy(p.url)).status === 200) ok++;
    if (ok !== PODS) throw new Error(`${ok} of ${PODS} pods answered through Caddy`);
    console.log(`all ${ok} pods answer through Caddy`);
  } finally {
    if (s) await s.stop();
    await counter.close();
    if (s) {
      const filters = encodeURIComponent(JSON.stringify({ label: [`pods.node=${s.nodeId}`] }));
      const left = (await docker('GET', `/containers/json?all=1&filters=${filters}`)) as unknown[];
      console.log(`containers left with label pods.node=${s.nodeId}: ${left.length}`);
    }
  }
  const adopted = rounds.map((r) => r.adopted_ms);
  const routes = rounds.map((r) => r.routes_ms);
  const done = rounds.map((r) => Math.max(r.adopted_ms, r.routes_ms));
  const calls = rounds.map((r) => r.docker_calls);
  const result = {
    measured_at: new Date().toISOString(),
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? '',
    load_before: loadBefore,
    load_after_last_round: loadDuring,
    load_average_1m_after: Math.round(loadavg()[0]! * 100) / 100,
    pods: PODS,
    image: TEST_IMAGE,
    settings: DEFAULT_SETTINGS,
    rounds: ROUNDS,
    restart_to_all_adopted_and_routed_p50_ms: pct(done, 50),
    restart_to_all_adopted_and_routed_p95_ms: pct(done, 95),
    restart_to_all_adopted_and_routed_max_ms: Math.max(...done),
    adopted_p50_ms: pct(adopted, 50),
    routes_p50_ms: pct(routes, 50),
    docker_calls_p50: pct(calls, 50),
    docker_calls_max: Math.max(...calls),
    targets: { restart_to_all_adopted_and_routed_ms: TARGET_MS },
    samples: rounds,
  };
  const dir = path.join(repoRoot(), 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'agent-restart.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`restart -> ${PODS} pods adopted and routed: p50 ${result.restart_to_all_adopted_and_routed_p50_ms} ms, p95 ${result.restart_to_all_adopted_and_routed_p95_ms} ms, max ${result.restart_to_all_adopted_and_routed_max_ms} ms (target <= ${TARGET_MS}); Docker API calls per restart: p50 ${result.docker_calls_p50}, max ${result.docker_calls_max}`);
  console.log('samples (done ms):', done.join(' '), '| calls:', calls.join(' '));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
