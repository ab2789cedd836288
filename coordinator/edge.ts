import { request } from 'undici';
import type { CoordinatorConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { ipGate, l4IpMatch } from '../agent/caddy-config.js';
import { podHost } from '../shared/pod.js';
import type { PodChange } from './store/changes.js';
import type { NodeRecord, NodeStore } from './store/nodes.js';
import type { PodRecord, PodStore } from './store/pods.js';

// The edge: one Caddy in front of every host, so one wildcard DNS record serves the cluster
// and a pod keeps its URL when it moves. It routes HTTP by Host to the Caddy of the host that
// runs the pod, TLS by SNI to that host's TLS listener without ending TLS (the host's Caddy
// does), and each dedicated TCP port to the same port on that host.
//
// The edge follows the change stream: a pod's change re-reads that pod alone and changes its
// routes one by one through Caddy's admin API (each HTTP and SNI route carries an "@id"; each
// dedicated port is a layer4 server of its own). Many changes at once, an edge that restarted
// empty, or a change Caddy refuses load the whole config instead (POST /load), built from what
// the router holds; every RESYNC_MS a full read of Redis checks what it holds (a safety net).

type Json = Record<string, unknown>;

// A pod's ip_allow_list is checked here, against the client's own address: behind the edge a
// host's Caddy sees only the edge's (and admits it: PODS_EDGE_SOURCE_NETWORKS on the agent).
export interface EdgeRoutes {
  http: Array<{ host: string; upstream: string; ipAllow?: string[] }>;
  sni: Array<{ host: string; upstream: string; ipAllow?: string[] }>;
  ports: Array<{ port: number; upstream: string; ipAllow?: string[] }>;
}

type Endpoints = NonNullable<NodeRecord['endpoints']>;

/** The routes of one pod on the edge: none unless it is ON and placed on a node whose endpoints are known. */
export function podRoutes(rec: PodRecord, endpoints: Endpoints | undefined, baseDomain: string): EdgeRoutes {
  const out: EdgeRoutes = { http: [], sni: [], ports: [] };
  if (!rec.placement || !endpoints || rec.desired.deleting || rec.desired.status_requested === 'OFF') return out;
  const { tenant, pod_id: podId } = rec.spec;
  for (const [name, n] of Object.entries(rec.spec.networking)) {
    const host = podHost(podId, name, tenant, baseDomain);
    const allow = n.ip_allow_list?.length ? { ipAllow: n.ip_allow_list } : {};
    if (n.protocol === 'http') out.http.push({ host, upstream: endpoints.http, ...allow });
    else if (n.protocol === 'local_only') continue;
    else if (n.dedicated_port) {
      if (rec.ports[name]) out.ports.push({ port: rec.ports[name], upstream: `${endpoints.tcpHost}:${rec.ports[name]}`, ...allow });
    } else out.sni.push({ host, upstream: endpoints.tls, ...allow });
  }
  return out;
}

/** The "@id" of a host's HTTP route and of its SNI route; the layer4 server of a dedicated port. */
const httpRouteId = (host: string) => `edge_http_${host}`;
const sniRouteId = (host: string) => `edge_sni_${host}`;
const portServer = (port: number) => `edge_port_${port}`;

const l4Proxy = (dial: string) => ({ handler: 'proxy', upstreams: [{ dial: [dial] }] });
const httpProxy = (upstream: string) => ({ handler: 'reverse_proxy', upstreams: [{ dial: upstream }], transport: { protocol: 'http', dial_timeout: '3s' }, stream_close_delay: '30m' });

/** One host's HTTP route (its client's address checked first when the pod has an allow-list). */
function httpRoute(x: EdgeRoutes['http'][number]): Json {
  return {
    '@id': httpRouteId(x.host),
    match: [{ host: [x.host] }],
    handle: x.ipAllow?.length ? [{ handler: 'subroute', routes: [...ipGate(x.ipAllow), { handle: [httpProxy(x.upstream)] }] }] : [httpProxy(x.upstream)],
    terminal: true,
  };
}

/** One host's SNI route; a refused address matches no route: the edge closes its connection. */
function sniRoute(x: EdgeRoutes['sni'][number]): Json {
  return { '@id': sniRouteId(x.host), match: [{ tls: { sni: [x.host] }, ...l4IpMatch(x.ipAllow) }], handle: [l4Proxy(x.upstream)] };
}

/** The layer4 server of one dedicated port. */
function portServerConfig(config: CoordinatorConfig, p: EdgeRoutes['ports'][number]): Json {
  const allowed = l4IpMatch(p.ipAllow);
  return { listen: [`${config.edgeTcpHost}:${p.port}`], routes: [{ ...(Object.keys(allowed).length ? { match: [allowed] } : {}), handle: [l4Proxy(p.upstream)] }] };
}

export function edgeConfig(config: CoordinatorConfig, adminListen: string, r: EdgeRoutes): Json {
  const layer4: Json = {
    edge_tls: {
      listen: [config.edgeTlsListen],
      routes: [
        // libpq asks for TLS in plaintext first: answer it here, then pass the handshake on.
        { match: [{ postgres: { tls: 'enabled' } }], handle: [{ handler: 'postgres_tls' }] },
        ...r.sni.map(sniRoute),
      ],
    },
  };
  for (const p of r.ports) layer4[portServer(p.port)] = portServerConfig(config, p);
  return {
    admin: { listen: adminListen },
    apps: {
      http: {
        servers: {
          edge: {
            listen: [config.edgeHttpListen],
            automatic_https: { disable: true },
            routes: [
              ...r.http.map(httpRoute),
              { handle: [{ handler: 'static_response', status_code: 404, body: 'no pod is served at {http.request.host}\n', headers: { 'Content-Type': ['text/plain; charset=utf-8'] } }] },
            ],
          },
        },
      },
      layer4: { servers: layer4 },
    },
  };
}


/** A change of these kinds can change a pod's routes. */
const ROUTED_KINDS = new Set<PodChange['kind']>(['placed', 'unplaced', 'desired', 'spec', 'ports', 'deleted']);
/** More route changes than this at once are loaded as one whole config. */
const MAX_STEPS = 50;
/** How often the router makes sure the edge holds its config and reads the nodes' endpoints. */
const CHECK_MS = 1000;
/** How often every pod is read again from Redis: a safety net under the change stream. */
const RESYNC_MS = 30_000;

/** One route on the edge, by where it lives: an HTTP route, an SNI route (by "@id"), a dedicated port's server. */
type RouteKey = `http ${string}` | `sni ${string}` | `port ${number}`;

interface AdminStep {
  method: 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body?: Json;
}

export interface EdgeStats {
  /** Whole configs loaded (POST /load). */
  loads: number;
  /** Single route changes made. */
  steps: number;
}

export class EdgeRouter {
  private timers: NodeJS.Timeout[] = [];
  /** Each routed pod's routes, and the node they lead to. */
  private readonly byPod = new Map<string, { nodeId: string; routes: EdgeRoutes }>();
  private endpoints = new Map<string, Endpoints>();
  /** What the edge holds, route by route (JSON text); null: not known, load the whole config. */
  private applied: Map<RouteKey, string> | null = null;
  private readonly dirty = new Set<string>();
  private flushing: Promise<void> | null = null;
  private resyncDue = false;
  readonly stats: EdgeStats = { loads: 0, steps: 0 };
  private readonly adminOrigin: string;
  private readonly adminListen: string;

  constructor(private readonly deps: { config: CoordinatorConfig; log: Logger; pods: PodStore; nodes: NodeStore }) {
    const url = new URL(deps.config.edgeAdminUrl!);
    this.adminOrigin = url.origin;
    this.adminListen = `${url.hostname}:${url.port || '80'}`;
  }

  start(): void {
    this.timers.push(setInterval(() => void this.check(), CHECK_MS));
    this.timers.push(setInterval(() => this.resync(), RESYNC_MS));
    this.resync();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** Changes from the change stream: the routes of each pod named are read again and changed one by one. */
  onChanges(changes: PodChange[]): void {
    let any = false;
    for (const c of changes) {
      if (!ROUTED_KINDS.has(c.kind)) continue;
      this.dirty.add(`${c.tenant}/${c.podId}`);
      any = true;
    }
    if (any) void this.flush();
  }

  /** Read every pod and node again and bring the edge in line (at start, then every RESYNC_MS). */
  resync(): void {
    this.resyncDue = true;
    void this.flush();
  }

  /** Wait until every change handed on so far is on the edge (or was tried). */
  async settled(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private flush(): Promise<void> {
    if (!this.flushing) {
      this.flushing = (async () => {
        try {
          while (this.resyncDue || this.dirty.size) await this.flushOnce();
        } finally {
          this.flushing = null;
        }
      })();
    }
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    const { pods, log } = this.deps;
    try {
      let keys: string[];
      if (this.resyncDue) {
        this.resyncDue = false;
        this.dirty.clear();
        await this.readEndpoints();
        keys = await pods.allKeys();
        const live = new Set(keys);
        for (const key of this.byPod.keys()) if (!live.has(key)) this.byPod.delete(key);
      } else {
        keys = [...this.dirty];
        this.dirty.clear();
      }
      for (let i = 0; i < keys.length; i += 500) {
        const recs = await Promise.all(keys.slice(i, i + 500).map((key) => {
          const [tenant, podId] = key.split('/') as [string, string];
          return pods.get(tenant, podId);
        }));
        for (const [j, rec] of recs.entries()) this.setPod(keys[i + j]!, rec);
      }
      await this.push();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'edge not reachable; trying again');
      this.applied = null;
      await new Promise((r) => setTimeout(r, CHECK_MS));
      this.resyncDue = true;
    }
  }

  private setPod(key: string, rec: PodRecord | null): void {
    const nodeId = rec?.placement?.nodeId;
    if (!rec || !nodeId) {
      this.byPod.delete(key);
      return;
    }
    this.byPod.set(key, { nodeId, routes: podRoutes(rec, this.endpoints.get(nodeId), this.deps.config.baseDomain) });
  }

  /** Read the nodes' endpoints; the pods of a node whose endpoints changed are read again. */
  private async readEndpoints(): Promise<void> {
    const next = new Map<string, Endpoints>();
    for (const n of await this.deps.nodes.list()) if (n.endpoints) next.set(n.nodeId, n.endpoints);
    const changed = new Set<string>();
    for (const id of new Set([...next.keys(), ...this.endpoints.keys()])) {
      if (JSON.stringify(next.get(id)) !== JSON.stringify(this.endpoints.get(id))) changed.add(id);
    }
    this.endpoints = next;
    if (changed.size) for (const [key, p] of this.byPod) if (changed.has(p.nodeId)) this.dirty.add(key);
  }

  /** Every route the edge should hold, with its JSON. */
  private wanted(): Map<RouteKey, { body: Json; text: string }> {
    const out = new Map<RouteKey, { body: Json; text: string }>();
    const put = (key: RouteKey, body: Json) => out.set(key, { body, text: JSON.stringify(body) });
    for (const { routes } of this.byPod.values()) {
      for (const x of routes.http) put(`http ${x.host}`, httpRoute(x));
      for (const x of routes.sni) put(`sni ${x.host}`, sniRoute(x));
      for (const x of routes.ports) put(`port ${x.port}`, portServerConfig(this.deps.config, x));
    }
    return out;
  }

  private allRoutes(): EdgeRoutes {
    const all: EdgeRoutes = { http: [], sni: [], ports: [] };
    const byHost = <T extends { host: string }>(a: T, b: T) => a.host.localeCompare(b.host);
    for (const { routes } of this.byPod.values()) {
      all.http.push(...routes.http);
      all.sni.push(...routes.sni);
      all.ports.push(...routes.ports);
    }
    all.http.sort(byHost);
    all.sni.sort(byHost);
    all.ports.sort((a, b) => a.port - b.port);
    return all;
  }

  /** Bring the edge in line with what the router holds: route by route, or the whole config. */
  private async push(): Promise<void> {
    const wanted = this.wanted();
    const steps = this.applied ? this.stepsTo(this.applied, wanted) : null;
    if (steps && !steps.length) return;
    if (steps && steps.length <= MAX_STEPS) {
      try {
        for (const s of steps) await this.admin(s);
        this.stats.steps += steps.length;
        this.applied = new Map([...wanted].map(([k, v]) => [k, v.text]));
        this.deps.log.debug({ steps: steps.length }, 'edge routes changed');
        return;
      } catch (err) {
        // Refused, or the edge lost its config meanwhile: load it whole.
        this.deps.log.warn({ err: (err as Error).message }, 'edge refused a route change; loading the whole config');
      }
    }
    await this.load(wanted);
  }

  private async load(wanted: Map<RouteKey, { text: string }>): Promise<void> {
    this.applied = null;
    try {
      await this.admin({ method: 'POST', path: '/load', body: edgeConfig(this.deps.config, this.adminListen, this.allRoutes()) });
    } catch (err) {
      this.deps.log.error({ err: (err as Error).message }, 'edge refused its config; the last good one stays');
      return;
    }
    this.stats.loads++;
    this.applied = new Map([...wanted].map(([k, v]) => [k, v.text]));
    this.deps.log.info({ routes: wanted.size }, 'edge config loaded');
  }

  /** The admin API calls that turn what the edge holds into what it should. */
  private stepsTo(have: Map<RouteKey, string>, want: Map<RouteKey, { body: Json; text: string }>): AdminStep[] {
    const steps: AdminStep[] = [];
    const locate = (key: RouteKey) => {
      const [kind, name] = key.split(' ') as ['http' | 'sni' | 'port', string];
      if (kind === 'port') return { add: 'POST' as const, addPath: `/config/apps/layer4/servers/${portServer(Number(name))}`, path: `/config/apps/layer4/servers/${portServer(Number(name))}`, change: 'POST' as const };
      const id = kind === 'http' ? httpRouteId(name) : sniRouteId(name);
      // HTTP routes go before the 404 fallback at the end (PUT at an index inserts); SNI routes are appended.
      return kind === 'http'
        ? { add: 'PUT' as const, addPath: '/config/apps/http/servers/edge/routes/0', path: `/id/${id}`, change: 'PATCH' as const }
        : { add: 'POST' as const, addPath: '/config/apps/layer4/servers/edge_tls/routes', path: `/id/${id}`, change: 'PATCH' as const };
    };
    for (const key of have.keys()) if (!want.has(key)) steps.push({ method: 'DELETE', path: locate(key).path });
    for (const [key, { body, text }] of want) {
      const cur = have.get(key);
      if (cur === text) continue;
      const at = locate(key);
      steps.push(cur === undefined ? { method: at.add, path: at.addPath, body } : { method: at.change, path: at.path, body });
    }
    return steps;
  }

  private async admin(step: AdminStep): Promise<void> {
    const res = await request(`${this.adminOrigin}${step.path}`, {
      method: step.method,
      ...(step.body ? { body: JSON.stringify(step.body), headers: { 'content-type': 'application/json' } } : {}),
      reset: true,
      headersTimeout: 10_000,
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${step.method} ${step.path}: ${res.statusCode} ${text.slice(0, 300)}`);
  }

  /** The edge restarted empty (its config is lost): load it whole. Nodes' endpoints are read again. */
  private async check(): Promise<void> {
    if (this.flushing) return;
    try {
      await this.readEndpoints();
      const res = await request(`${this.adminOrigin}/config/apps/http/servers/edge/listen`, { reset: true, headersTimeout: 5000 });
      await res.body.dump();
      if (res.statusCode !== 200) {
        this.deps.log.warn('the edge has lost its config; loading it');
        this.applied = null;
        this.resyncDue = true;
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'edge not reachable');
      this.applied = null;
    }
    if (this.resyncDue || this.dirty.size || !this.applied) {
      if (!this.applied) this.resyncDue = true;
      void this.flush();
    }
  }
}
