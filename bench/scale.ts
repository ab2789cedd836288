// npm run bench:scale: placement throughput and coordinator memory at scale. Real coordinator
// processes with a real Redis (AOF, fsync always), BENCH_AGENTS agents running the real agent
// code (CoordinatorLink + Supervisor, each with its own node id and WebSocket link) in one other
// Node process on a NullRuntime that starts no containers, and BENCH_PODS pods created through
// the real API, BENCH_CONCURRENCY at a time. Docker is never touched. Two runs: one coordinator;
// then two sharing the load (half the agents linked to each, creates sent to each in turn),
// where pods on hosts linked to B are stopped through A, timing when B's host has removed them.
//
// Results: bench/results/scale.json. This file is also the agents' process (`--agents`).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { Pool } from 'undici';
import { NullCaddy, NullRuntime } from '../agent/runtime/null.js';
import { CoordinatorLink } from '../agent/link.js';
import { Supervisor } from '../agent/supervisor.js';
import { loadAgentConfig } from '../shared/config.js';
import { createLogger } from '../shared/log.js';
import { freePort } from '../test/helpers/ports.js';
import { Proc, waitFor } from '../test/helpers/procs.js';
import { startRedis, type TestRedis } from '../test/helpers/redis.js';
import { repoRoot } from '../test/helpers/root.js';
import { positiveSetting } from './settings.js';

/** Only named on the allow-list: no agent here pulls or runs it. */
const TEST_IMAGE = 'pods-test/httpd';

const AGENTS = positiveSetting('BENCH_AGENTS', 200);
const PODS = positiveSetting('BENCH_PODS', 10_000);
const CONCURRENCY = positiveSetting('BENCH_CONCURRENCY', 50);
/** What each fake host says it has: room for far more than its share of pods at the default requests (250m, 256 MiB). */
const NODE_CPU_MILLI = positiveSetting('BENCH_NODE_CPU_MILLI', 64_000);
const NODE_MEMORY_MB = positiveSetting('BENCH_NODE_MEMORY_MB', 256 * 1024);
/** Give up (and say so) when the pods are not all RUNNING by then. */
const DEADLINE_S = positiveSetting('BENCH_DEADLINE_S', 600);
const TARGET_PLACEMENTS_PER_S = 3000;
const TARGET_RSS_MB = 200;
/** Pods stopped through A on hosts linked to B, a few at a time. */
const STOP_SAMPLES = positiveSetting('BENCH_STOP_SAMPLES', 200);
const STOP_CONCURRENCY = 4;


// ---------------------------------------------------------------------------------------
// The agents' process: AGENTS x (CoordinatorLink + Supervisor) on a NullRuntime and a NullCaddy.

async function runAgents(): Promise<void> {
  const env = process.env;
  const count = Number(env.SCALE_AGENTS);
  const prefix = env.SCALE_NODE_PREFIX!;
  const capacity = { cpuMilli: Number(env.SCALE_CPU_MILLI), memoryMb: Number(env.SCALE_MEMORY_MB) };
  const root = createLogger('scale-agents', env.PODS_LOG_LEVEL ?? 'warn');
  const runtimes: NullRuntime[] = [];
  const stops: Array<() => void> = [];
  const connected = new Set<string>();
  let announced = false;

  const urls = env.SCALE_COORDINATOR_URLS!.split(',');
  const startAgent = (nodeId: string, i: number) => {
    const config = loadAgentConfig({
      // Agent i is linked to coordinator i mod n.
      PODS_COORDINATOR_URL: urls[i % urls.length],
      // Each node has a token of its own, bound to its id.
      PODS_NODE_TOKEN: `${env.SCALE_NODE_TOKEN}-${nodeId}`,
      PODS_NODE_ID: nodeId,
      PODS_LOG_RING_BYTES: '1024',
    });
    const log = root.child({ nodeId });
    const runtime = new NullRuntime();
    runtimes.push(runtime);
    let link: CoordinatorLink;
    const supervisor = new Supervisor({
      config,
      runtime,
      caddy: new NullCaddy(log),
      log: log.child({ component: 'supervisor' }),
      reporter: {
        status: (tenant, podId, observed) => link.send('pod_status', { tenant, podId, observed }),
        logs: (msg) => link.send('pod_logs', msg),
      },
    });
    // Wired as agent/main.ts wires them; only the hello's capacity and versions are the harness's.
    link = new CoordinatorLink(config, log.child({ component: 'link' }), {
      hello: async () => ({ nodeId, agentVersion: 'scale-bench', dockerVersion: 'null-runtime', capacity, containers: await supervisor.inventory() }),
      sync: async (s) => {
        await supervisor.sync(s.assignments);
        connected.add(nodeId);
        if (!announced && connected.size === count) {
          announced = true;
          console.log(`SCALE-AGENTS all ${count} connected`);
        }
      },
      apply: (a) => supervisor.apply(a.assignment),
      remove: (r) => supervisor.remove(r),
      heartbeat: () => ({ running: runtime.size }),
    });
    supervisor.start();
    link.start();
    stops.push(() => {
      link.stop();
      supervisor.stop();
    });
  };

  // Connect in small waves, as hosts coming up would, not all in one instant.
  for (let i = 0; i < count; i++) {
    startAgent(`${prefix}${String(i).padStart(3, '0')}`, i);
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 50));
  }
  const shutdown = () => {
    for (const stop of stops) stop();
    console.log(`SCALE-AGENTS stopped; containers held: ${runtimes.reduce((n, r) => n + r.size, 0)}`);
    setTimeout(() => process.exit(0), 100).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // Never outlive the benchmark (say it was killed with -9).
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) shutdown();
  }, 1000).unref();
}

// ---------------------------------------------------------------------------------------
// The benchmark.

interface ProcStats {
  pid: number;
  rssMb: number;
  peakRssMb: number;
  cpuS: number;
}

/** The children of this process running `script` (Proc does not say its pid), oldest first. */
async function childPids(script: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      // Redis rewrites its title ("redis-server 127.0.0.1:port"), so match within the whole line.
      if ((await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ').includes(script)) out.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  if (!out.length) throw new Error(`no child process runs ${script}`);
  return out.sort((a, b) => a - b);
}

async function procStats(pid: number): Promise<ProcStats> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat (1-based), 12 and 13 after the command.
  const ticks = Number(f[11]) + Number(f[12]);
  return { pid, rssMb: round(kb('VmRSS') / 1024, 1), peakRssMb: round(kb('VmHWM') / 1024, 1), cpuS: ticks / 100 };
}

/** "0.571 ms (coordinators 0.3, agents 0.1, ...)": a run's CPU per pod, each process's share. */
function cpuLine(ms: Record<string, number>): string {
  const { total, ...parts } = ms;
  return `${total} ms (${Object.entries(parts).map(([k, v]) => `${k} ${v}`).join(', ')})`;
}

const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

type RunResult = Record<string, unknown> & { placements_per_s: number; coordinator_rss_mb: number[] };

/** One run: `coordinators` coordinator processes on one fresh Redis, the agents split over them. */
async function run(coordinators: number): Promise<RunResult> {
  const root = repoRoot();
  const thisFile = fileURLToPath(import.meta.url);
  const coordinatorJs = path.join(root, 'dist/coordinator/main.js');
  const id = randomBytes(3).toString('hex');
  const tenant = 'scale';
  const redisPrefix = `scale${id}:`;
  const nodePrefix = `scale-${id}-`;
  const adminToken = `admin-${randomBytes(16).toString('hex')}`;
  const nodeToken = `node-${randomBytes(16).toString('hex')}`;
  const nodeIds = Array.from({ length: AGENTS }, (_, i) => `${nodePrefix}${String(i).padStart(3, '0')}`);

  let redis: TestRedis | null = null;
  const procs: Proc[] = [];
  let agents: Proc | null = null;
  let client: ReturnType<typeof createClient> | null = null;
  const pools: Pool[] = [];
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    for (const p of pools) await p.close().catch(() => undefined);
    client?.destroy();
    await agents?.kill('SIGTERM');
    for (const c of procs) await c.kill('SIGTERM');
    await redis?.stop();
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const loadBefore = round(loadavg()[0]!, 2);
    console.log(`\nscale bench: ${coordinators} coordinator(s), ${AGENTS} agents (NullRuntime), ${PODS} pods, ${CONCURRENCY} creates in flight; load average ${loadBefore} on ${cpus().length} CPUs`);
    if (loadBefore > 1) console.log('  (the machine is busy with something else: throughput will be lower than on a quiet one)');
    redis = await startRedis();
    const ports = await Promise.all(Array.from({ length: coordinators }, () => freePort()));
    // BENCH_COORDINATOR_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": where the coordinator spends its time.
    const nodeArgs = (process.env.BENCH_COORDINATOR_NODE_ARGS ?? '').split(' ').filter(Boolean);
    for (const [i, port] of ports.entries()) {
      procs.push(new Proc(`coordinator${'AB'[i] ?? i}`, process.execPath, [...nodeArgs, coordinatorJs], {
        PODS_LISTEN_HOST: '127.0.0.1',
        PODS_LISTEN_PORT: String(port),
        PODS_REDIS_URL: redis.url,
        PODS_REDIS_PREFIX: redisPrefix,
        PODS_TENANT: tenant,
        PODS_ADMIN_TOKEN: adminToken,
        PODS_NODE_TOKENS: nodeIds.map((n) => `${n}=${nodeToken}-${n}`).join(','),
        PODS_LOG_LEVEL: process.env.PODS_LOG_LEVEL ?? 'info',
        // The production default (1 s) unless BENCH_RECONCILE_INTERVAL_MS says otherwise (to see what the sweep costs).
        ...(process.env.BENCH_RECONCILE_INTERVAL_MS ? { PODS_RECONCILE_INTERVAL_MS: process.env.BENCH_RECONCILE_INTERVAL_MS } : {}),
      }).start());
    }
    for (const port of ports) pools.push(new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY + 4, pipelining: 1 }));
    const api = async (via: number, method: 'GET' | 'POST', p: string, body?: unknown) => {
      const res = await pools[via]!.request({
        method,
        path: p,
        headers: { 'x-tapis-token': adminToken, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
      const text = await res.body.text();
      return { status: res.statusCode, body: JSON.parse(text) as { message: string; result: any } };
    };
    for (const [i, c] of procs.entries()) {
      await waitFor('the coordinator to answer', async () => (await api(i, 'GET', '/v3/pods/healthcheck').catch(() => null))?.status === 200, 30_000).catch((err) => {
        throw new Error(`${(err as Error).message}\n${c.output}`);
      });
    }
    const allowed = await api(0, 'POST', '/v3/pods/images', { image: TEST_IMAGE, description: 'scale bench (nothing is pulled: the agents run a NullRuntime)' });
    if (allowed.status !== 200) throw new Error(`could not allow ${TEST_IMAGE}: ${allowed.body.message}`);

    const tAgents = performance.now();
    // BENCH_AGENTS_NODE_ARGS: the same for the agents' process.
    const agentArgs = (process.env.BENCH_AGENTS_NODE_ARGS ?? '').split(' ').filter(Boolean);
    agents = new Proc('agents', process.execPath, [...agentArgs, thisFile, '--agents'], {
      SCALE_COORDINATOR_URLS: ports.map((p) => `ws://127.0.0.1:${p}/v3/agents/connect`).join(','),
      SCALE_NODE_TOKEN: nodeToken,
      SCALE_AGENTS: String(AGENTS),
      SCALE_NODE_PREFIX: nodePrefix,
      SCALE_CPU_MILLI: String(NODE_CPU_MILLI),
      SCALE_MEMORY_MB: String(NODE_MEMORY_MB),
      PODS_LOG_LEVEL: 'warn',
    }).start();
    await waitFor(`${AGENTS} agents to connect`, async () => agents!.output.includes('SCALE-AGENTS all'), 120_000, 100).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- agents:\n${agents!.output.slice(-3000)}\n--- coordinator:\n${procs[0]!.output.slice(-3000)}`);
    });
    const agentsConnectS = (performance.now() - tAgents) / 1000;
    const coordPids = await childPids(coordinatorJs);
    const agentsPid = (await childPids(thisFile))[0]!;
    const redisPid = (await childPids('redis-server'))[0]!;
    const coordBefore = await Promise.all(coordPids.map(procStats));
    // The agents' and Redis's CPU is counted over the pods' part of the run, as the coordinators' is.
    const [agentsBefore, redisBefore] = await Promise.all([procStats(agentsPid), procStats(redisPid)]);
    console.log(`${AGENTS} agents connected in ${agentsConnectS.toFixed(1)} s; coordinator RSS ${coordBefore.map((c) => c.rssMb).join(', ')} MB`);

    client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    const redisClient = client;
    const nodeSets = nodeIds.map((n) => `${redisPrefix}node:${n}:pods`);
    const podIds = Array.from({ length: PODS }, (_, i) => `scale${String(i).padStart(5, '0')}`);
    const podHash = (podId: string) => `${redisPrefix}pod:${tenant}:${podId}`;

    // Placements, to know when they are all done: the node sets' sizes, summed (one SCARD per node every 250 ms).
    // The times reported come from the placements themselves (each says when the scheduler made it).
    let placed = 0;
    let allPlacedSeenAt = NaN;
    let watching = true;
    const deadline = Date.now() + DEADLINE_S * 1000;
    const watchPlacements = (async () => {
      while (watching && Date.now() < deadline) {
        const sizes = await Promise.all(nodeSets.map((k) => redisClient.sCard(k)));
        placed = sizes.reduce((a, b) => a + b, 0);
        if (placed >= PODS) {
          allPlacedSeenAt = Date.now();
          return;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    // Creates, CONCURRENCY at a time, sent to each coordinator in turn.
    const createMs: number[] = [];
    const failures: string[] = [];
    let next = 0;
    const t0 = Date.now();
    const p0 = performance.now();
    // This process's own share of the 2 CPUs: the HTTP client sending the creates, and the polls.
    const clientCpu0 = process.cpuUsage();
    const progress = setInterval(() => console.log(`  ${((performance.now() - p0) / 1000).toFixed(1)} s: ${createMs.length} created, ${placed} placed`), 2000);
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < PODS && failures.length < 20) {
          const n = next++;
          const podId = podIds[n]!;
          const t = performance.now();
          try {
            const r = await api(n % coordinators, 'POST', '/v3/pods', { pod_id: podId, image: TEST_IMAGE });
            if (r.status !== 200) failures.push(`${podId}: ${r.status} ${r.body.message}`);
            else createMs.push(performance.now() - t);
          } catch (err) {
            failures.push(`${podId}: ${(err as Error).message}`);
          }
        }
      }),
    );
    const createdS = (performance.now() - p0) / 1000;
    if (failures.length) throw new Error(`${failures.length} creates failed, e.g.\n${failures.slice(0, 5).join('\n')}\n--- coordinator:\n${procs[0]!.output.slice(-3000)}`);
    console.log(`${PODS} pods created in ${createdS.toFixed(2)} s`);
    await watchPlacements;
    if (!(placed >= PODS)) throw new Error(`only ${placed} of ${PODS} pods were placed within ${DEADLINE_S} s`);

    // RUNNING: the oldest pods not yet seen running, a window at a time (they run roughly in creation order).
    const runningAt = new Map<string, number>();
    let cursor = 0;
    let allRunningSeenAt = NaN;
    while (Date.now() < deadline) {
      const window: string[] = [];
      for (let i = cursor; i < PODS && window.length < 1000; i++) if (!runningAt.has(podIds[i]!)) window.push(podIds[i]!);
      if (!window.length) {
        allRunningSeenAt = Date.now();
        break;
      }
      const observed = await Promise.all(window.map((p) => redisClient.hGet(podHash(p), 'observed')));
      observed.forEach((raw, i) => {
        const o = raw ? (JSON.parse(raw) as { phase: string; at: string }) : null;
        if (o?.phase === 'running') runningAt.set(window[i]!, Date.parse(o.at));
      });
      while (cursor < PODS && runningAt.has(podIds[cursor]!)) cursor++;
      if (window.every((p) => runningAt.has(p))) continue;
      await new Promise((r) => setTimeout(r, 250));
    }
    watching = false;
    clearInterval(progress);
    if (runningAt.size < PODS) {
      // Say what the stuck ones look like: their record and their events.
      const stuck = podIds.filter((p) => !runningAt.has(p)).slice(0, 5);
      const details = await Promise.all(
        stuck.map(async (p) => `${p}: ${JSON.stringify(await redisClient.hGetAll(podHash(p)))}\n  events: ${(await redisClient.lRange(`${redisPrefix}actions:${tenant}:${p}`, 0, -1)).join('\n    ')}`),
      );
      throw new Error(`only ${runningAt.size} of ${PODS} pods were RUNNING within ${DEADLINE_S} s:\n${details.join('\n')}`);
    }

    // Exact times from the records: each placement says when the scheduler made it.
    const placedAt: number[] = [];
    const placedOn = new Map<string, string>();
    for (let i = 0; i < PODS; i += 1000) {
      const ids = podIds.slice(i, i + 1000);
      const raws = await Promise.all(ids.map((p) => redisClient.hGet(podHash(p), 'placement')));
      raws.forEach((raw, j) => {
        const pl = JSON.parse(raw!) as { at: string; nodeId: string };
        placedAt.push(Date.parse(pl.at));
        placedOn.set(ids[j]!, pl.nodeId);
      });
    }
    placedAt.sort((a, b) => a - b);
    const placeS = (placedAt[placedAt.length - 1]! - t0) / 1000;
    const runningS = (Math.max(...runningAt.values()) - t0) / 1000;
    const p10 = placedAt[Math.floor(PODS * 0.1)]!;
    const p90 = placedAt[Math.floor(PODS * 0.9) - 1]!;
    const coord = await Promise.all(coordPids.map(procStats));
    const clientCpu = process.cpuUsage(clientCpu0);
    const [agentsAfter, redisAfter] = await Promise.all([procStats(agentsPid), procStats(redisPid)]);
    // What all of it cost the machine, per pod: every process of the run (all their threads), and
    // so how many placements a second these CPUs could make at most, all of them busy with nothing else.
    const cpuS = {
      coordinators: coord.reduce((sum, c, i) => sum + c.cpuS - coordBefore[i]!.cpuS, 0),
      agents: agentsAfter.cpuS - agentsBefore.cpuS,
      redis: redisAfter.cpuS - redisBefore.cpuS,
      client: (clientCpu.user + clientCpu.system) / 1e6,
    };
    const totalCpuS = cpuS.coordinators + cpuS.agents + cpuS.redis + cpuS.client;
    // What 10,000 pods cost the coordinators when nothing happens: their CPU over a few idle seconds.
    const IDLE_S = 5;
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const idle = await Promise.all(coordPids.map(procStats));
    const idleCpuPct = idle.map((c, i) => round(((c.cpuS - coord[i]!.cpuS) / IDLE_S) * 100));

    // Two coordinators: pods on hosts linked to B (odd agents) stopped through A; the time until
    // B's host says it removed the container (its report's own time), a few stops at a time.
    let stopMs: number[] = [];
    if (coordinators > 1) {
      const linkedToB = new Set(nodeIds.filter((_, i) => i % coordinators === 1));
      const targets = podIds.filter((p) => linkedToB.has(placedOn.get(p)!)).slice(0, STOP_SAMPLES);
      let k = 0;
      await Promise.all(
        Array.from({ length: STOP_CONCURRENCY }, async () => {
          while (k < targets.length) {
            const podId = targets[k++]!;
            const sent = Date.now();
            const r = await api(0, 'GET', `/v3/pods/${podId}/stop`);
            if (r.status !== 200) throw new Error(`stop ${podId} through A: ${r.status} ${r.body.message}`);
            for (;;) {
              const raw = await redisClient.hGet(podHash(podId), 'observed');
              const o = raw ? (JSON.parse(raw) as { phase: string; at: string; nodeId: string }) : null;
              if (o?.phase === 'removed' && linkedToB.has(o.nodeId)) {
                stopMs.push(Date.parse(o.at) - sent);
                break;
              }
              if (Date.now() - sent > 60_000) throw new Error(`${podId} stopped through A was not removed by its host (linked to B) within 60 s`);
              await new Promise((r) => setTimeout(r, 5));
            }
          }
        }),
      );
      stopMs = stopMs.sort((a, b) => a - b);
      console.log(`stop through A seen by B's host: p50 ${pct(stopMs, 50)} ms, p99 ${pct(stopMs, 99)} ms, max ${stopMs[stopMs.length - 1]} ms (${stopMs.length} pods)`);
    }

    const perNode = await Promise.all(nodeSets.map((k) => redisClient.sCard(k)));
    // What the whole run asked of Redis, per pod (the coordinators are nearly its only clients).
    const commandStats: Record<string, number> = {};
    // And Redis's time in each command, per pod (a script's time includes the commands it runs).
    const commandUsec: Record<string, number> = {};
    for (const line of (await redisClient.info('commandstats')).split('\n')) {
      const m = /^cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
      if (m && Number(m[2]) >= PODS / 10) commandStats[m[1]!] = round(Number(m[2]) / PODS, 2);
      if (m && Number(m[3]) >= PODS) commandUsec[m[1]!] = round(Number(m[3]) / PODS, 1);
    }

    return {
      coordinators,
      load_average_before: loadBefore,
      load_average_after: round(loadavg()[0]!, 2),
      placements_per_s: round(PODS / placeS),
      placements_per_s_p10_p90: round((0.8 * PODS) / ((p90 - p10) / 1000)),
      coordinator_rss_mb: coord.map((c) => c.rssMb),
      coordinator_peak_rss_mb: coord.map((c) => c.peakRssMb),
      coordinator_rss_before_pods_mb: coordBefore.map((c) => c.rssMb),
      coordinator_cpu_s: coord.map((c, i) => round(c.cpuS - coordBefore[i]!.cpuS, 1)),
      coordinator_idle_cpu_pct: idleCpuPct,
      agents_process_rss_mb: agentsAfter.rssMb,
      agents_process_cpu_s: round(cpuS.agents, 1),
      bench_client_cpu_s: round(cpuS.client, 1),
      redis_rss_mb: redisAfter.rssMb,
      redis_cpu_s: round(cpuS.redis, 1),
      cpu_ms_per_pod: Object.fromEntries(Object.entries({ ...cpuS, total: totalCpuS }).map(([k, v]) => [k, round((v * 1000) / PODS, 3)])),
      cpu_bound_placements_per_s: round((PODS * cpus().length) / totalCpuS),
      agents_connect_s: round(agentsConnectS, 2),
      create_s: round(createdS, 2),
      create_per_s: round(PODS / createdS),
      create_latency_p50_ms: round(pct(createMs, 50), 1),
      create_latency_p95_ms: round(pct(createMs, 95), 1),
      create_latency_max_ms: round(Math.max(...createMs), 1),
      first_create_to_last_placement_s: round(placeS, 2),
      first_create_to_all_running_s: round(runningS, 2),
      all_placed_seen_by_poll_s: round((allPlacedSeenAt - t0) / 1000, 2),
      all_running_seen_by_poll_s: round((allRunningSeenAt - t0) / 1000, 2),
      pods_per_node: { min: Math.min(...perNode), max: Math.max(...perNode) },
      ...(stopMs.length ? { stop_via_a_seen_by_b_host_ms: { samples: stopMs.length, p50: pct(stopMs, 50), p95: pct(stopMs, 95), p99: pct(stopMs, 99), max: stopMs[stopMs.length - 1] } } : {}),
      redis_calls_per_pod: commandStats,
      redis_usec_per_pod: commandUsec,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

async function bench(): Promise<void> {
  // The processes started here get only the settings given them (say var/up.env was sourced: no edge, no other Redis).
  for (const k of Object.keys(process.env)) if (k.startsWith('PODS_') && k !== 'PODS_LOG_LEVEL') delete process.env[k];
  // BENCH_SCALE_ONLY=1 or 2: that run alone, printed and not written (to profile one of them).
  const only = process.env.BENCH_SCALE_ONLY;
  if (only) {
    console.log(JSON.stringify(await run(positiveSetting('BENCH_SCALE_ONLY', 1)), null, 2));
    return;
  }
  const one = await run(1);
  const two = await run(2);
  const result = {
    measured_at: new Date().toISOString(),
    cpus: cpus().length,
    agents: AGENTS,
    pods: PODS,
    create_concurrency: CONCURRENCY,
    runtime: 'NullRuntime (no containers) + NullCaddy',
    node_capacity: { cpu_milli: NODE_CPU_MILLI, memory_mb: NODE_MEMORY_MB },
    pod_requests: { cpu_milli: 250, memory_mb: 256 },
    one_coordinator: one,
    two_coordinators: two,
    targets: { placements_per_s: TARGET_PLACEMENTS_PER_S, coordinator_rss_mb: TARGET_RSS_MB },
    notes:
      'placements_per_s = pods / (last placement.at - first create sent); all on one 2-vCPU machine shared with other work (see the load averages): coordinators, Redis, the agents process and this client share it. cpu_ms_per_pod: the CPU time (user + system, all threads) of the coordinators, the agents process, Redis and this client from the first create until all pods run, per pod; cpu_bound_placements_per_s: pods x CPUs / that total, what this machine could place at most with every CPU busy with this alone. stop_via_a_seen_by_b_host_ms: a pod on a host linked to coordinator B stopped through A, until the removed report of B\'s host (its own time).',
  };
  const dir = path.join(repoRoot(), 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'scale.json'), JSON.stringify(result, null, 2) + '\n');

  const rows: Array<[string, string]> = [['agents / pods / creates in flight', `${AGENTS} / ${PODS} / ${CONCURRENCY}`]];
  for (const r of [one, two]) {
    const n = `${r.coordinators} coordinator${r.coordinators === 1 ? '' : 's'}`;
    rows.push(
      [`${n}: load average before / after`, `${r.load_average_before} / ${r.load_average_after}`],
      [`${n}: creates`, `${r.create_s} s (${r.create_per_s}/s, p50 ${r.create_latency_p50_ms} ms, p95 ${r.create_latency_p95_ms} ms, max ${r.create_latency_max_ms} ms)`],
      [`${n}: placements_per_s`, `${r.placements_per_s} (p10-p90: ${r.placements_per_s_p10_p90}; target >= ${TARGET_PLACEMENTS_PER_S})`],
      [`${n}: first create -> all RUNNING`, `${r.first_create_to_all_running_s} s`],
      [`${n}: coordinator_rss_mb`, `${r.coordinator_rss_mb.join(', ')} (peak ${(r.coordinator_peak_rss_mb as number[]).join(', ')}; target <= ${TARGET_RSS_MB})`],
      [`${n}: coordinator CPU`, `${(r.coordinator_cpu_s as number[]).join(', ')} s; afterwards, with nothing to do, ${(r.coordinator_idle_cpu_pct as number[]).join(', ')} % of a core`],
      [`${n}: CPU per pod, all processes`, `${cpuLine(r.cpu_ms_per_pod as Record<string, number>)}: at most ${r.cpu_bound_placements_per_s} placements/s on these ${cpus().length} CPUs`],
      [`${n}: pods per node`, `${(r.pods_per_node as { min: number }).min}..${(r.pods_per_node as { max: number }).max}`],
    );
  }
  const stop = two.stop_via_a_seen_by_b_host_ms as { samples: number; p50: number; p95: number; p99: number; max: number } | undefined;
  if (stop) rows.push(['stop through A seen by B\'s host', `p50 ${stop.p50} ms, p95 ${stop.p95} ms, p99 ${stop.p99} ms, max ${stop.max} ms (${stop.samples} pods)`]);
  console.log('\n| scale | |\n|---|---|');
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
}

const main = process.argv.includes('--agents') ? runAgents : bench;
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
