import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from '../shared/process-metrics.js';
import type { Logger } from '../shared/log.js';
import type { UsageListener } from './usage.js';

/**
 * The agent's Prometheus metrics: its pods' CPU and memory (the only series labelled by pod),
 * Caddy admin writes, and the process's own. Served on PODS_METRICS_LISTEN.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly cpu: Gauge<'tenant' | 'pod'>;
  private readonly memory: Gauge<'tenant' | 'pod'>;
  private readonly memoryLimit: Gauge<'tenant' | 'pod'>;
  private readonly running: Gauge;
  private readonly caddyWrites: Counter<'method' | 'result'>;

  constructor(nodeId: string) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: nodeId });
    this.cpu = new Gauge({ name: 'pods_agent_pod_cpu_cores', help: 'CPU a pod used over the last sample interval, in cores', labelNames: ['tenant', 'pod'], registers });
    this.memory = new Gauge({ name: 'pods_agent_pod_memory_bytes', help: 'Memory a pod uses, page cache left out', labelNames: ['tenant', 'pod'], registers });
    this.memoryLimit = new Gauge({ name: 'pods_agent_pod_memory_limit_bytes', help: "A pod's memory limit", labelNames: ['tenant', 'pod'], registers });
    this.running = new Gauge({ name: 'pods_agent_pods_running', help: 'Pods with a running container on this host at the last sample', registers });
    this.caddyWrites = new Counter({ name: 'pods_agent_caddy_writes_total', help: "Changes sent to this host's Caddy admin API, by HTTP method and result", labelNames: ['method', 'result'], registers });
    collectProcessMetrics(this.registry, 'pods_agent_');
  }

  /** The sampler's listener: the per-pod gauges show the pods running now, and only those. */
  readonly onUsage: UsageListener = (current) => {
    this.cpu.reset();
    this.memory.reset();
    this.memoryLimit.reset();
    for (const { tenant, podId, sample } of current) {
      const labels = { tenant, pod: podId };
      if (sample.cpuCores !== null) this.cpu.set(labels, sample.cpuCores);
      this.memory.set(labels, sample.memoryBytes);
      this.memoryLimit.set(labels, sample.memoryLimitBytes);
    }
    this.running.set(current.length);
  };

  /** CaddyClient's hook for every admin call that changes config. */
  readonly onCaddyWrite = (method: string, result: 'ok' | 'refused' | 'unreachable') => {
    this.caddyWrites.inc({ method, result });
  };

  /** GET /metrics on `listen` (HOST:PORT); anything else is a 404. */
  async serve(listen: string, log: Logger): Promise<Server> {
    const at = listen.lastIndexOf(':');
    const host = listen.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(listen.slice(at + 1));
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => {
          log.error({ err: err.message }, 'cannot collect metrics');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('cannot collect metrics\n');
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.unref();
    log.info({ listen }, 'metrics served at /metrics');
    return server;
  }
}
