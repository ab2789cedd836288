import { createHash } from 'node:crypto';
import { request } from 'undici';
import type { CoordinatorConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { ipGate, l4IpMatch } from '../agent/caddy-config.js';
import { podHost } from '../shared/pod.js';
import type { NodeStore } from './store/nodes.js';
import type { PodStore } from './store/pods.js';

// The edge: one Caddy in front of every host, so one wildcard DNS record serves the cluster
// and a pod keeps its URL when it moves. It routes HTTP by Host to the Caddy of the host that
// runs the pod, TLS by SNI to that host's TLS listener without ending TLS (the host's Caddy
// does), and each dedicated TCP port to the same port on that host. The whole config is
// rebuilt from Redis and loaded only when it changes (or when the edge restarted empty).

type Json = Record<string, unknown>;

// A pod's ip_allow_list is checked here, against the client's own address: behind the edge a
// host's Caddy sees only the edge's (and admits it: PODS_EDGE_SOURCE_NETWORKS on the agent).
interface EdgeRoutes {
  http: Array<{ host: string; upstream: string; ipAllow?: string[] }>;
  sni: Array<{ host: string; upstream: string; ipAllow?: string[] }>;
  ports: Array<{ port: number; upstream: string; ipAllow?: string[] }>;
}

export function edgeConfig(config: CoordinatorConfig, adminListen: string, r: EdgeRoutes): Json {
  const proxy = (dial: string) => ({ handler: 'proxy', upstreams: [{ dial: [dial] }] });
  const layer4: Json = {
    edge_tls: {
      listen: [config.edgeTlsListen],
      routes: [
        // libpq asks for TLS in plaintext first: answer it here, then pass the handshake on.
        { match: [{ postgres: { tls: 'enabled' } }], handle: [{ handler: 'postgres_tls' }] },
        // A refused address matches no route: the edge closes its connection.
        ...r.sni.map((x) => ({ match: [{ tls: { sni: [x.host] }, ...l4IpMatch(x.ipAllow) }], handle: [proxy(x.upstream)] })),
      ],
    },
  };
  for (const p of r.ports) {
    const allowed = l4IpMatch(p.ipAllow);
    layer4[`edge_port_${p.port}`] = { listen: [`${config.edgeTcpHost}:${p.port}`], routes: [{ ...(Object.keys(allowed).length ? { match: [allowed] } : {}), handle: [proxy(p.upstream)] }] };
  }
  const httpProxy = (upstream: string) => ({ handler: 'reverse_proxy', upstreams: [{ dial: upstream }], transport: { protocol: 'http', dial_timeout: '3s' }, stream_close_delay: '30m' });
  return {
    admin: { listen: adminListen },
    apps: {
      http: {
        servers: {
          edge: {
            listen: [config.edgeHttpListen],
            automatic_https: { disable: true },
            routes: [
              ...r.http.map((x) => ({
                match: [{ host: [x.host] }],
                handle: x.ipAllow?.length ? [{ handler: 'subroute', routes: [...ipGate(x.ipAllow), { handle: [httpProxy(x.upstream)] }] }] : [httpProxy(x.upstream)],
                terminal: true,
              })),
              { handle: [{ handler: 'static_response', status_code: 404, body: 'no pod is served at {http.request.host}\n', headers: { 'Content-Type': ['text/plain; charset=utf-8'] } }] },
            ],
          },
        },
      },
      layer4: { servers: layer4 },
    },
  };
}

export class EdgeRouter {
  private timer: NodeJS.Timeout | null = null;
  private applied = '';
  private running = false;
  private readonly adminOrigin: string;
  private readonly adminListen: string;

  constructor(private readonly deps: { config: CoordinatorConfig; log: Logger; pods: PodStore; nodes: NodeStore }) {
    const url = new URL(deps.config.edgeAdminUrl!);
    this.adminOrigin = url.origin;
    this.adminListen = `${url.hostname}:${url.port || '80'}`;
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => void this.sync(), everyMs);
    void this.sync();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Where every ON pod is served now, by the host it is placed on. */
  async routes(): Promise<EdgeRoutes> {
    const { pods, nodes, config } = this.deps;
    const endpoints = new Map((await nodes.list()).map((n) => [n.nodeId, n.endpoints]));
    const out: EdgeRoutes = { http: [], sni: [], ports: [] };
    for (const key of (await pods.allKeys()).sort()) {
      const [tenant, podId] = key.split('/') as [string, string];
      const rec = await pods.get(tenant, podId);
      if (!rec?.placement || rec.desired.deleting || rec.desired.status_requested === 'OFF') continue;
      const ep = endpoints.get(rec.placement.nodeId);
      if (!ep) continue;
      for (const [name, n] of Object.entries(rec.spec.networking)) {
        const host = podHost(podId, name, tenant, config.baseDomain);
        const allow = n.ip_allow_list?.length ? { ipAllow: n.ip_allow_list } : {};
        if (n.protocol === 'http') out.http.push({ host, upstream: ep.http, ...allow });
        else if (n.protocol === 'local_only') continue;
        else if (n.dedicated_port) {
          if (rec.ports[name]) out.ports.push({ port: rec.ports[name], upstream: `${ep.tcpHost}:${rec.ports[name]}`, ...allow });
        } else out.sni.push({ host, upstream: ep.tls, ...allow });
      }
    }
    return out;
  }

  async sync(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const body = JSON.stringify(edgeConfig(this.deps.config, this.adminListen, await this.routes()));
      const digest = createHash('sha256').update(body).digest('hex');
      if (digest === this.applied && (await this.edgeHasConfig())) return;
      const res = await request(`${this.adminOrigin}/load`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, reset: true, headersTimeout: 10_000 });
      const text = await res.body.text();
      if (res.statusCode >= 300) {
        this.deps.log.error({ status: res.statusCode, err: text.slice(0, 500) }, 'edge refused its config; the last good one stays');
        return;
      }
      this.applied = digest;
      this.deps.log.info('edge routes updated');
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'edge not reachable');
    } finally {
      this.running = false;
    }
  }

  private async edgeHasConfig(): Promise<boolean> {
    const res = await request(`${this.adminOrigin}/config/apps/http/servers/edge/listen`, { reset: true, headersTimeout: 5000 });
    await res.body.dump();
    return res.statusCode === 200;
  }
}
