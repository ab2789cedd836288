import { collectDefaultMetrics, type Registry } from 'prom-client';

// prom-client's gauges of active handles, requests and resources end in `_total`, which
// Prometheus keeps for counters (promtool check metrics says so); they are left out.
const MISNAMED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** The process's own metrics (CPU, memory, heap, event loop lag, open fds), each name under `prefix`. */
export function collectProcessMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix });
  for (const name of MISNAMED) registry.removeSingleMetric(`${prefix}${name}`);
}
