import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../shared/process-metrics.js';
import { deriveStatus } from '../shared/status.js';
import type { PodStore } from './store/pods.js';

/** What the reconciler tells the metrics about its work. */
export interface ReconcileObserver {
  /** One pass over one pod took `seconds`; `ok`: it did not throw. */
  reconciled(seconds: number, ok: boolean): void;
  /** A command was sent to an agent; `retry`: the same command (kind and generation) was sent before. */
  dispatched(kind: string, retry: boolean): void;
  /** A placement attempt's outcome. */
  placed(result: 'placed' | 'no_room'): void;
}

/** Pods read per batch while counting them for a scrape. */
const SCRAPE_BATCH = 500;

/**
 * The coordinator's Prometheus metrics (GET /metrics). Labels are kept few: tenant and status
 * for pods, node for links; never a pod id (per-pod usage is on each agent's /metrics).
 */
export class CoordinatorMetrics implements ReconcileObserver {
  readonly registry = new Registry();
  private readonly reconcileSeconds: Histogram<'result'>;
  private readonly dispatches: Counter<'kind'>;
  private readonly retries: Counter<'kind'>;
  private readonly placements: Counter<'result'>;

  constructor(deps: { pods: PodStore; links: () => Array<{ nodeId: string }> }) {
    const registers = [this.registry];
    new Gauge({
      name: 'pods_pods',
      help: 'Pods by tenant and status, as the API shows them',
      labelNames: ['tenant', 'status'],
      registers,
      async collect() {
        this.reset();
        for (const [labels, n] of await countPods(deps.pods)) this.set(labels, n);
      },
    });
    new Gauge({
      name: 'pods_agent_links',
      help: 'Agents connected to this coordinator',
      registers,
      collect() {
        this.set(deps.links().length);
      },
    });
    this.reconcileSeconds = new Histogram({
      name: 'pods_reconcile_duration_seconds',
      help: 'Time one reconcile pass over one pod takes',
      labelNames: ['result'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.dispatches = new Counter({ name: 'pods_dispatches_total', help: 'Commands sent to agents, by kind', labelNames: ['kind'], registers });
    this.retries = new Counter({ name: 'pods_dispatch_retries_total', help: 'Commands sent to agents again (same kind and generation), by kind', labelNames: ['kind'], registers });
    this.placements = new Counter({ name: 'pods_placements_total', help: 'Placement attempts, by result (placed, no_room)', labelNames: ['result'], registers });
    collectProcessMetrics(this.registry, 'pods_coordinator_');
  }

  reconciled(seconds: number, ok: boolean): void {
    this.reconcileSeconds.observe({ result: ok ? 'ok' : 'error' }, seconds);
  }

  dispatched(kind: string, retry: boolean): void {
    this.dispatches.inc({ kind });
    if (retry) this.retries.inc({ kind });
  }

  placed(result: 'placed' | 'no_room'): void {
    this.placements.inc({ result });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Every pod's status, counted by tenant and status; pods whose record is gone meanwhile are skipped. */
async function countPods(pods: PodStore): Promise<Map<{ tenant: string; status: string }, number>> {
  const counts = new Map<string, number>();
  const keys = await pods.allKeys();
  for (let i = 0; i < keys.length; i += SCRAPE_BATCH) {
    const recs = await Promise.all(
      keys.slice(i, i + SCRAPE_BATCH).map((key) => {
        const [tenant, podId] = key.split('/') as [string, string];
        return pods.get(tenant, podId).catch(() => null);
      }),
    );
    for (const rec of recs) {
      if (!rec) continue;
      const { status } = deriveStatus(rec.desired, rec.placement, rec.observed);
      const k = `${rec.spec.tenant}\n${status}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
  }
  const out = new Map<{ tenant: string; status: string }, number>();
  for (const [k, n] of counts) {
    const [tenant, status] = k.split('\n') as [string, string];
    out.set({ tenant, status }, n);
  }
  return out;
}
