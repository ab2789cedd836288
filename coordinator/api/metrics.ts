import { timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { CoordinatorConfig } from '../../shared/config.js';
import { PodsError } from '../../shared/errors.js';
import type { PodUsage, UsageSample } from '../../shared/protocol.js';
import type { CoordinatorMetrics } from '../metrics.js';
import type { PodStore } from '../store/pods.js';
import type { StorageClient } from '../storage.js';
import { requireSiteAdmin, type Identity } from './auth.js';
import { ok } from './envelope.js';
import { loadPodFor } from './permissions.js';

// A pod's usage (GET /v3/pods/{pod_id}/metrics, from the samples its host keeps) and the
// coordinator's Prometheus metrics (GET /metrics).

export interface PodMetricsDeps {
  pods: PodStore;
  storage: StorageClient;
  nodeConnected: (nodeId: string) => boolean;
}

const podIdOf = (ctx: Context) => (ctx as Context & { params: Record<string, string> }).params.pod_id!;

export function podMetricsRouter(deps: PodMetricsDeps): Router {
  const router = new Router();
  router.get('/v3/pods/:pod_id/metrics', async (ctx) => {
    const rec = await loadPodFor(deps.pods, ctx.state.identity as Identity, podIdOf(ctx), 'READ');
    const podId = rec.spec.pod_id;
    // The host that runs it, or ran it last: it keeps the last hour of samples.
    const node = rec.observed?.nodeId ?? rec.placement?.nodeId ?? null;
    if (!node) return ok(ctx, usageView(podId, null, { intervalS: 0, samples: [] }), 'Pod has not run on any host yet.');
    if (!deps.nodeConnected(node)) {
      throw new PodsError('UNAVAILABLE', `host ${node}, which keeps pod "${podId}"'s usage, is not connected now; try again when it is back`);
    }
    const ref = { tenant: rec.spec.tenant, podId, uid: rec.observed?.uid ?? 'none', generation: rec.observed?.generation ?? rec.desired.generation };
    ok(ctx, usageView(podId, node, await deps.storage.podUsage(node, ref)), 'Pod metrics retrieved.');
  });
  return router;
}

/** The API's view of a pod's samples: the latest (when it is recent), the last hour in sum, and every sample. */
export function usageView(podId: string, node: string | null, usage: PodUsage, nowMs = Date.now()) {
  const { samples, intervalS } = usage;
  const last = samples.at(-1);
  const fresh = last && nowMs - Date.parse(last.at) <= Math.max(3 * intervalS * 1000, 30_000) ? last : null;
  const prev = samples.at(-2);
  const rate = (k: 'rxBytes' | 'txBytes') => {
    if (!fresh || !prev || prev.restarts !== fresh.restarts || fresh[k] < prev[k]) return null;
    const s = (Date.parse(fresh.at) - Date.parse(prev.at)) / 1000;
    return s > 0 ? Math.round((fresh[k] - prev[k]) / s) : null;
  };
  const cpu = samples.map((s) => s.cpuCores).filter((c): c is number => c !== null);
  const mem = samples.map((s) => s.memoryBytes);
  const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const round = (x: number | null, places = 4) => (x === null ? null : Math.round(x * 10 ** places) / 10 ** places);
  return {
    pod_id: podId,
    node,
    interval_s: intervalS,
    now: fresh
      ? {
          time: fresh.at,
          cpu_cores: fresh.cpuCores,
          memory_bytes: fresh.memoryBytes,
          memory_limit_bytes: fresh.memoryLimitBytes,
          network_rx_bytes: fresh.rxBytes,
          network_tx_bytes: fresh.txBytes,
          network_rx_bytes_per_s: rate('rxBytes'),
          network_tx_bytes_per_s: rate('txBytes'),
        }
      : null,
    last_hour: {
      from: samples[0]?.at ?? null,
      to: last?.at ?? null,
      cpu_cores_avg: round(avg(cpu)),
      cpu_cores_max: cpu.length ? Math.max(...cpu) : null,
      memory_bytes_avg: round(avg(mem), 0),
      memory_bytes_max: mem.length ? Math.max(...mem) : null,
      network_rx_bytes: traffic(samples, 'rxBytes'),
      network_tx_bytes: traffic(samples, 'txBytes'),
      restarts: last && samples[0] ? last.restarts - samples[0].restarts : 0,
    },
    samples: samples.map((s) => ({
      time: s.at,
      cpu_cores: s.cpuCores,
      memory_bytes: s.memoryBytes,
      network_rx_bytes: s.rxBytes,
      network_tx_bytes: s.txBytes,
      restarts: s.restarts,
    })),
  };
}

/** Bytes moved over the samples: the counters restart with each container, so only growth within a run counts. */
function traffic(samples: UsageSample[], k: 'rxBytes' | 'txBytes'): number {
  let sum = 0;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    if (a.restarts === b.restarts && b[k] >= a[k]) sum += b[k] - a[k];
  }
  return sum;
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * GET /metrics in Prometheus' text format, for the metrics token (PODS_METRICS_TOKEN, as
 * `Authorization: Bearer`) or a site admin's X-Tapis-Token. Mounted before the API's own
 * authentication, which it runs itself when there is no metrics token.
 */
export function prometheusRouter(deps: { config: CoordinatorConfig; metrics: CoordinatorMetrics; authenticate: Middleware }): Router {
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    const bearer = /^Bearer\s+(.+)$/i.exec(ctx.get('authorization'))?.[1]?.trim();
    const { metricsToken } = deps.config;
    if (bearer !== undefined && !(metricsToken && sameToken(metricsToken, bearer))) {
      throw new PodsError('UNAUTHORIZED', 'the Bearer token is not the metrics token');
    }
    if (bearer === undefined) {
      await deps.authenticate(ctx, async () => undefined);
      requireSiteAdmin(ctx, 'read the metrics');
    }
    ctx.status = 200;
    ctx.body = await deps.metrics.text();
    ctx.set('Content-Type', deps.metrics.registry.contentType);
  });
  return router;
}
