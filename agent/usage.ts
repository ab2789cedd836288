import type { Logger } from '../shared/log.js';
import { reply, type Peer } from '../shared/peer.js';
import { podKey } from '../shared/pod.js';
import type { PodRef, PodUsage, UsageSample } from '../shared/protocol.js';
import type { PodContainer } from './runtime/runtime.js';

/** The parts of Docker's container stats (GET /containers/{id}/stats?stream=false) that are read here. */
export interface DockerStats {
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}

/** Where samples come from: the containers of the pods this node runs, and one container's stats. */
export interface StatsSource {
  list(): Promise<PodContainer[]>;
  stats(containerId: string): Promise<DockerStats>;
}

/** What the sampler tells the Prometheus side after each round: the pods running now with their latest sample. */
export type UsageListener = (current: Array<{ tenant: string; podId: string; sample: UsageSample }>) => void;

/** How much is kept per pod: an hour of samples. */
const WINDOW_MS = 3600_000;

interface Track {
  ref: PodRef;
  samples: UsageSample[];
  /** The container and start time last seen, to count restarts. */
  containerId: string;
  startedAt: string;
  restarts: number;
  /** CPU time (ns) and wall time (ms) of the last sample, for the next one's rate. */
  cpuNs: number;
  atMs: number;
}

/**
 * Samples the usage of every running pod on this host from Docker's stats, one round every
 * `intervalMs`, and keeps an hour of samples per pod in memory (a ring: the oldest are
 * dropped). A pod whose container has gone keeps its samples until they are an hour old.
 */
export class UsageSampler {
  private readonly tracks = new Map<string, Track>();
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;
  readonly capacity: number;

  constructor(private readonly deps: { source: StatsSource; intervalMs: number; log: Logger; onRound?: UsageListener }) {
    this.capacity = Math.max(1, Math.ceil(WINDOW_MS / deps.intervalMs));
  }

  start(): void {
    const tick = () => {
      if (!this.round) this.round = this.sample().finally(() => (this.round = null));
    };
    tick();
    this.timer = setInterval(tick, this.deps.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Answers the coordinator's pod_metrics requests. */
  serve(peer: Peer): void {
    peer.on('pod_metrics', (ref) => reply('pod_usage', this.usage(ref)));
  }

  /** The samples of a pod (any instance of it: restarts and moves to a new instance are part of its story). */
  usage(ref: Pick<PodRef, 'tenant' | 'podId'>): PodUsage {
    const t = this.tracks.get(podKey(ref.tenant, ref.podId));
    return { intervalS: this.deps.intervalMs / 1000, samples: t ? [...t.samples] : [] };
  }

  /** One round: a sample of every running container, in parallel. */
  async sample(): Promise<void> {
    let containers: PodContainer[];
    try {
      containers = (await this.deps.source.list()).filter((c) => c.state === 'running');
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'cannot list containers for usage');
      return;
    }
    const current: Array<{ tenant: string; podId: string; sample: UsageSample }> = [];
    await Promise.all(
      containers.map(async (c) => {
        try {
          const stats = await this.deps.source.stats(c.id);
          const sample = this.record(c, stats);
          current.push({ tenant: c.tenant, podId: c.podId, sample });
        } catch (err) {
          // Gone between the list and the stats call: the next round will not see it.
          this.deps.log.debug({ pod: podKey(c.tenant, c.podId), err: (err as Error).message }, 'no stats for container');
        }
      }),
    );
    const cutoff = Date.now() - WINDOW_MS;
    for (const [key, t] of this.tracks) {
      const last = t.samples.at(-1);
      if (!last || Date.parse(last.at) < cutoff) this.tracks.delete(key);
    }
    this.deps.onRound?.(current);
  }

  private record(c: PodContainer, stats: DockerStats): UsageSample {
    const key = podKey(c.tenant, c.podId);
    const nowMs = stats.read && !stats.read.startsWith('0001') ? Date.parse(stats.read) : Date.now();
    const cpuNs = stats.cpu_stats?.cpu_usage?.total_usage ?? 0;
    const startedAt = c.startedAt ?? '';
    let t = this.tracks.get(key);
    const sameRun = t !== undefined && t.containerId === c.id && t.startedAt === startedAt;
    if (!t) {
      t = { ref: c, samples: [], containerId: c.id, startedAt, restarts: 0, cpuNs, atMs: nowMs };
      this.tracks.set(key, t);
    } else if (!sameRun) {
      t.restarts += 1;
    }
    const cpuCores = sameRun && nowMs > t.atMs && cpuNs >= t.cpuNs ? (cpuNs - t.cpuNs) / 1e6 / (nowMs - t.atMs) : null;
    Object.assign(t, { ref: c, containerId: c.id, startedAt, cpuNs, atMs: nowMs });
    let rx = 0;
    let tx = 0;
    for (const n of Object.values(stats.networks ?? {})) {
      rx += n.rx_bytes ?? 0;
      tx += n.tx_bytes ?? 0;
    }
    const sample: UsageSample = {
      at: new Date(nowMs).toISOString(),
      cpuCores: cpuCores === null ? null : Math.round(cpuCores * 10_000) / 10_000,
      memoryBytes: memoryInUse(stats),
      memoryLimitBytes: Math.max(0, Math.round(stats.memory_stats?.limit ?? 0)),
      rxBytes: rx,
      txBytes: tx,
      restarts: t.restarts,
    };
    t.samples.push(sample);
    if (t.samples.length > this.capacity) t.samples.splice(0, t.samples.length - this.capacity);
    return sample;
  }
}

/** Memory in use as `docker stats` counts it: usage less the inactive page cache (cgroup v2 and v1). */
export function memoryInUse(stats: DockerStats): number {
  const m = stats.memory_stats;
  if (!m?.usage) return 0;
  const s = m.stats ?? {};
  const cache = s.inactive_file ?? s.total_inactive_file ?? 0;
  return Math.max(0, Math.round(cache < m.usage ? m.usage - cache : m.usage));
}
