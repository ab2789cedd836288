// Which Caddy routes this host serves, pod by pod, and the one way they are written: a pod's
// routes are built from its assignment and container (podRoutes), held in the RouteTable,
// and written to Caddy through CaddyClient (agent/caddy.ts).
import type { AgentConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import type { Assignment } from '../shared/protocol.js';
import type { CaddyClient, PodRoute, TcpRoute } from './caddy.js';
import type { PodContainer } from './runtime/runtime.js';

/** The Caddy routes of one pod instance. */
export interface PodRoutes {
  http: PodRoute[];
  tcp: TcpRoute[];
}

export function routeId(tenant: string, podId: string, name: string): string {
  return `pod-${tenant}-${podId}-${name}`;
}

/** A pod's routes to its published ports: HTTP by Host; TCP by SNI on the shared TLS port, or on a dedicated port. */
export function podRoutes(
  a: Assignment,
  c: Pick<PodContainer, 'hostPorts' | 'address'>,
  net: Pick<AgentConfig, 'publishHost' | 'tcpListenHost' | 'edgeSourceNetworks'>,
): PodRoutes {
  const http: PodRoute[] = [];
  const tcp: TcpRoute[] = [];
  for (const p of a.spec.ports) {
    const hostPort = c.hostPorts[p.name];
    if (!hostPort || p.protocol === 'local_only') continue;
    const id = routeId(a.tenant, a.podId, p.name);
    const upstream = `${c.address ?? net.publishHost}:${hostPort}`;
    const ipAllow = p.access?.ipAllow?.length ? { ipAllow: [...p.access.ipAllow, ...net.edgeSourceNetworks] } : {};
    if (p.protocol === 'http') http.push({ id, host: p.host, upstream, ...(p.access ? { access: p.access } : {}) });
    else if (p.dedicatedPort) tcp.push({ kind: 'port', id, listen: `${net.tcpListenHost}:${p.dedicatedPort}`, upstream, ...ipAllow });
    else tcp.push({ kind: 'sni', id, host: p.host, upstream, protocol: p.protocol, ...ipAllow });
  }
  return { http, tcp };
}

/** A change waiting to be written: one pod's routes (installed or removed), or the whole table (null). */
interface Change {
  key: string | null;
  /** The routes a removal takes out of Caddy. */
  removedIds?: string[];
  done: (why: string | null) => void;
}

/**
 * The routes this host's Caddy should serve, by pod, and the only writer of them. Changes
 * are written in order; those that pile up while a write is under way go out together as
 * one whole load (POST /load), so adopting a host's pods after a restart costs one Caddy
 * reload, not one per pod. A Caddy that restarted empty, or that could not be reached for
 * a write, gets the whole table again at the next check.
 */
export class RouteTable {
  private readonly routes = new Map<string, PodRoutes>();
  private readonly pending: Change[] = [];
  private writing = false;
  /** A write failed because Caddy was unreachable: the next check loads the whole table. */
  private stale = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: { caddy: CaddyClient; log: Logger }) {}

  /** Serve these routes for the pod (replacing what it had); why a route is not served, or null. */
  install(key: string, routes: PodRoutes): Promise<string | null> {
    this.routes.set(key, routes);
    return this.write({ key });
  }

  /** Stop serving the pod's routes. */
  async remove(key: string): Promise<void> {
    const routes = this.routes.get(key);
    if (!routes) return;
    this.routes.delete(key);
    await this.write({ key, removedIds: idsOf(routes) });
  }

  /** Load the whole table into Caddy: every route of ours is there, and nothing else. */
  async resync(): Promise<void> {
    await this.write({ key: null });
  }

  /** Check Caddy every `intervalMs`: a restarted Caddy comes back empty and gets every route again. */
  watch(intervalMs: number): void {
    this.timer = setInterval(() => void this.check(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private write(change: Omit<Change, 'done'>): Promise<string | null> {
    return new Promise((done) => {
      this.pending.push({ ...change, done });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.pending.length) {
      const batch = this.pending.splice(0);
      const only = batch.length === 1 ? batch[0]! : null;
      if (only?.key) {
        only.done(await this.writeOne(only.key, only.removedIds));
        continue;
      }
      const refused = await this.load();
      for (const change of batch) change.done(change.key ? whyNotServed(this.routes.get(change.key), refused) : null);
    }
    this.writing = false;
  }

  /** One pod's routes, route by route (Caddy's config is patched, not replaced). */
  private async writeOne(key: string, removedIds: string[] = []): Promise<string | null> {
    const { caddy, log } = this.deps;
    const routes = this.routes.get(key);
    if (!routes) {
      for (const id of removedIds) await caddy.removeRoute(id).catch((err) => log.warn({ route: id, err: (err as Error).message }, 'route removal failed'));
      return null;
    }
    const writes = [...routes.http.map((r) => ({ id: r.id, put: () => caddy.upsertRoute(r) })), ...routes.tcp.map((r) => ({ id: r.id, put: () => caddy.upsertTcpRoute(r) }))];
    const why: string[] = [];
    for (const { id, put } of writes) {
      try {
        // Caddy restarted empty: one route alone would hide the loss of the others.
        if ((await put()) === 'base-missing') return whyNotServed(routes, await this.load());
      } catch (err) {
        // The write may have been dropped mid-way: a whole, repeatable load puts every route in place.
        if ((err as { code?: string }).code === 'CADDY_UNREACHABLE') return whyNotServed(routes, await this.load());
        why.push(`route ${id} not installed: ${(err as Error).message}`);
        log.warn({ pod: key, route: id, err: (err as Error).message }, 'route not installed');
      }
    }
    return why.length ? why.join('; ') : null;
  }

  /** The whole table in one load; the routes Caddy refused (the others are served). */
  private async load(): Promise<Map<string, string>> {
    const all = [...this.routes.values()];
    try {
      const r = await this.deps.caddy.resync(all.flatMap((x) => x.http), all.flatMap((x) => x.tcp));
      this.stale = false;
      for (const bad of r.refused) this.deps.log.warn({ route: bad.id, err: bad.message }, 'route refused; the others are served');
      return new Map(r.refused.map((x) => [x.id, x.message]));
    } catch (err) {
      this.stale = true;
      this.deps.log.warn({ err: (err as Error).message }, 'caddy resync failed; will retry');
      return new Map();
    }
  }

  private async check(): Promise<void> {
    try {
      if (this.stale) return void (await this.resync());
      if (!(await this.deps.caddy.isConfigured())) {
        this.deps.log.info('caddy has lost its config; re-syncing routes');
        await this.resync();
      }
    } catch (err) {
      this.deps.log.debug({ err: (err as Error).message }, 'caddy not reachable');
    }
  }
}

function idsOf(routes: PodRoutes): string[] {
  return [...routes.http, ...routes.tcp].map((r) => r.id);
}

function whyNotServed(routes: PodRoutes | undefined, refused: Map<string, string>): string | null {
  const why = (routes ? idsOf(routes) : []).filter((id) => refused.has(id)).map((id) => `route ${id} not installed: ${refused.get(id)}`);
  return why.length ? why.join('; ') : null;
}
