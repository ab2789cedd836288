// The agent's only door into Caddy: the admin API on this host.
//
// The API (calls run one at a time, in the order made):
//   new CaddyClient({ adminUrl, httpListen, tlsListen?, access?, log })
//       adminUrl: http://127.0.0.1:2019, or unix:///run/pods-caddy/admin.sock (Caddy makes the
//       socket writable by its own user only: nobody else on the host can reprogram it).
//       tlsListen ("IP:PORT"): the shared TLS listener of SNI routes; without it they are refused.
//       access: the coordinator (for tapis_auth checks) and the edge's addresses (see AccessContext).
//   isConfigured(): Promise<boolean>
//       true when our base config is loaded; false after Caddy restarted empty.
//   resync(routes: PodRoute[], tcp: TcpRoute[] = []): Promise<ResyncResult>
//       Replace the whole config with the base + these routes (POST /load). A route that is
//       invalid, conflicts with an earlier one, or that Caddy refuses is left out and listed in
//       `refused`; the others are served. Rejects, sending nothing, when an id appears twice.
//   upsertRoute(route: PodRoute): Promise<'written' | 'base-missing'>
//   upsertTcpRoute(route: TcpRoute): Promise<'written' | 'base-missing'>
//       Add or replace the route with that "@id". 'base-missing': Caddy has restarted empty
//       (or holds an older base); nothing was written, the caller resyncs.
//   removeRoute(id: string): Promise<void>
//       HTTP or TCP; an id that does not exist is not an error.
//   Errors are CaddyError: CADDY_UNREACHABLE, or CADDY_REJECTED (refused here before sending,
//   `status` unset, or by Caddy, `status` set). A refused change leaves the running config as it was.
// Types and the config's layout: agent/caddy-config.ts.
//
// Caddy's admin API in brief (v2.11): POST /load replaces the whole config;
// `/id/<id>` addresses the object carrying that "@id"; POST to an array path
// appends, PATCH replaces an existing value, DELETE removes it; an unknown id
// is 404. A change Caddy cannot provision is answered 500 and the running
// config (and the admin copy of it) stays as it was.
// Requests go through undici.request: Node's global fetch sends
// `Sec-Fetch-Mode: cors`, which Caddy's admin origin check refuses with 403.
import { Agent, request } from 'undici';
import type { Logger } from '../shared/log.js';
import {
  addTcp,
  baseConfig,
  buildHttpRoute,
  checkId,
  checkListen,
  dropTcp,
  emptyTcp,
  hasBase,
  httpRoutesOf,
  readTcp,
  ROUTES_ID,
  writeTcp,
  NO_ACCESS_CONTEXT,
  type AccessContext,
  type Json,
  type Listeners,
  type PodRoute,
  type TcpRoute,
} from './caddy-config.js';
import { CaddyError, refused } from './caddy-error.js';

export { CaddyError, type CaddyErrorCode } from './caddy-error.js';
export type { AccessContext, PodRoute, PortRoute, SniRoute, TcpProtocol, TcpRoute } from './caddy-config.js';

export interface ResyncResult {
  /** Routes left out, each with the reason (CaddyError's message). */
  refused: Array<{ id: string; message: string }>;
}

const ROUTES_PATH = `/id/${ROUTES_ID}/handle/0/routes`;

// The admin API answers in milliseconds; a slow answer means Caddy is stuck.
const ADMIN_TIMEOUT_MS = 10_000;

interface AdminReply {
  status: number;
  text: string;
}

export class CaddyClient {
  private readonly adminOrigin: string;
  /** The connection to a unix-socket admin API (none for http). */
  private readonly dispatcher: Agent | undefined;
  private readonly listeners: Listeners;
  private readonly log: Logger;
  // Admin calls run one at a time. Writes must not interleave (a TCP change reads the
  // config, changes it and writes it back), and reads go in line too: Caddy restarts
  // its admin server on every config change and drops requests that arrive meanwhile
  // ("other side closed"). The tail never rejects, so a failure does not block the next call.
  private tail: Promise<unknown> = Promise.resolve();

  private readonly access: AccessContext;
  /** Told of every call that changes Caddy's config (metrics). */
  private readonly onWrite: (method: string, result: 'ok' | 'refused' | 'unreachable') => void;

  constructor(opts: {
    adminUrl: string;
    httpListen: string;
    tlsListen?: string;
    access?: AccessContext;
    log: Logger;
    onWrite?: (method: string, result: 'ok' | 'refused' | 'unreachable') => void;
  }) {
    this.access = opts.access ?? NO_ACCESS_CONTEXT;
    this.onWrite = opts.onWrite ?? (() => undefined);
    const url = new URL(opts.adminUrl);
    // Our config keeps the admin endpoint where we reach it, so /load never moves it
    // and the Host header we send is always one Caddy allows.
    if (url.protocol === 'unix:' && url.pathname.startsWith('/') && !url.host) {
      this.adminOrigin = 'http://localhost';
      this.dispatcher = new Agent({ connect: { socketPath: url.pathname } });
      this.listeners = { admin: `unix/${url.pathname}`, http: opts.httpListen };
    } else if (url.protocol === 'http:') {
      this.adminOrigin = url.origin;
      this.listeners = { admin: `${url.hostname}:${url.port || '80'}`, http: opts.httpListen };
    } else {
      throw new TypeError(`Caddy admin URL must be http://host:port or unix:///path/to/socket, got ${opts.adminUrl}`);
    }
    if (opts.tlsListen !== undefined) {
      try {
        checkListen('Caddy TLS listener', opts.tlsListen);
      } catch (err) {
        throw new TypeError((err as Error).message);
      }
      if (opts.tlsListen === opts.httpListen) throw new TypeError(`Caddy's TLS and HTTP listeners are both ${opts.tlsListen}`);
      this.listeners.tls = opts.tlsListen;
    }
    this.log = opts.log.child({ component: 'caddy' });
  }

  /** true when our base config (the pods server with its routes subroute) is loaded; false after a Caddy restart with empty config. */
  isConfigured(): Promise<boolean> {
    return this.enqueue(async () => {
      // Ask for one word, not the whole route list.
      const res = await this.call('GET', `/id/${ROUTES_ID}/handle/0/handler`);
      if (res.status === 404) return false;
      if (!ok(res)) throw rejected('reading the pods routes', res);
      return parseJson(res.text) === 'subroute';
    });
  }

  /** Replace Caddy's whole config with the base + these routes. Used on agent (re)connect and after a Caddy restart. */
  resync(routes: PodRoute[], tcp: TcpRoute[] = []): Promise<ResyncResult> {
    let prepared: ReturnType<CaddyClient['prepare']>;
    try {
      prepared = this.prepare(routes, tcp);
    } catch (err) {
      return Promise.reject(err);
    }
    const { left, http, state, valid } = prepared;
    return this.enqueue(async () => {
      const res = await this.call('POST', '/load', baseConfig(this.listeners, http.map((h) => h.built), state));
      if (ok(res)) {
        this.log.info({ routes: http.length, tcpRoutes: valid.length, refused: left.length }, 'caddy config loaded');
        return { refused: left };
      }
      // Caddy refused something only it can check (a port in use, a host it cannot
      // encode). Which route is unknown, so load the base and add them one at a time.
      this.log.warn({ err: rejected('loading the config', res).message }, 'caddy refused the full config; adding routes one by one');
      await this.expect('POST', '/load', baseConfig(this.listeners, [], emptyTcp()), 'loading the base config');
      for (const { route, built } of http) {
        try {
          await this.expect('POST', ROUTES_PATH, built, `adding route ${route.id}`);
        } catch (err) {
          left.push(this.leaveOut(route.id, err));
        }
      }
      for (const route of valid) {
        try {
          await this.putTcp(route);
        } catch (err) {
          left.push(this.leaveOut(route.id, err));
        }
      }
      this.log.info({ routes: http.length + valid.length - left.length, refused: left.length }, 'caddy config loaded route by route');
      return { refused: left };
    });
  }

  /**
   * Add or replace one route addressed by its "@id" (PATCH /id/<id> if present, else append
   * to the routes array). Answers 'base-missing' without writing when Caddy has restarted
   * empty: loading one route alone would hide the loss of the others, so the caller resyncs.
   */
  upsertRoute(route: PodRoute): Promise<'written' | 'base-missing'> {
    let built: Json;
    try {
      built = buildHttpRoute(route, this.access);
    } catch (err) {
      return Promise.reject(err);
    }
    const idPath = `/id/${route.id}`;
    return this.enqueue(async () => {
      const existing = await this.call('GET', idPath);
      if (ok(existing) && isHttpRoute(parseJson(existing.text))) {
        await this.expect('PATCH', idPath, built, `replacing route ${route.id}`);
        this.log.debug({ routeId: route.id, host: route.host, upstream: route.upstream }, 'caddy route replaced');
        return 'written';
      }
      if (ok(existing)) await this.removeTcp(route.id); // the pod's entry was TCP before
      else if (existing.status !== 404) throw rejected(`reading route ${route.id}`, existing);

      const appended = await this.call('POST', ROUTES_PATH, built);
      if (appended.status === 404) return 'base-missing';
      if (!ok(appended)) throw rejected(`adding route ${route.id}`, appended);
      this.log.debug({ routeId: route.id, host: route.host, upstream: route.upstream }, 'caddy route added');
      return 'written';
    });
  }

  /**
   * Add or replace one TCP route by its "@id". The route, the layer4 servers around it and
   * the certificate names go in one write (PATCH /config/apps), so they change together or
   * not at all. 'base-missing' as for upsertRoute.
   */
  upsertTcpRoute(route: TcpRoute): Promise<'written' | 'base-missing'> {
    try {
      addTcp(emptyTcp(), route, this.listeners);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(() => this.putTcp(route));
  }

  /** Remove one route (HTTP or TCP) by @id; a route that does not exist is not an error. */
  removeRoute(id: string): Promise<void> {
    try {
      checkId(id);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(async () => {
      const existing = await this.call('GET', `/id/${id}`);
      if (existing.status === 404) return; // already gone, or Caddy has no config at all
      if (!ok(existing)) throw rejected(`reading route ${id}`, existing);
      if (!isHttpRoute(parseJson(existing.text)) && (await this.removeTcp(id))) return;
      const res = await this.call('DELETE', `/id/${id}`);
      if (res.status === 404) return;
      if (!ok(res)) throw rejected(`removing route ${id}`, res);
      this.log.debug({ routeId: id }, 'caddy route removed');
    });
  }

  /** Validate every route one by one: a bad route is left out, never the reason the others are. */
  private prepare(routes: PodRoute[], tcp: TcpRoute[]) {
    const dup = firstDuplicate([...routes, ...tcp].map((r) => r?.id));
    if (dup !== undefined) throw refused(`route id ${String(dup)} appears twice`);
    const left: ResyncResult['refused'] = [];
    const http: Array<{ route: PodRoute; built: Json }> = [];
    for (const route of routes) {
      try {
        http.push({ route, built: buildHttpRoute(route, this.access) });
      } catch (err) {
        left.push(this.leaveOut(route?.id, err));
      }
    }
    const state = emptyTcp();
    const valid: TcpRoute[] = [];
    for (const route of tcp) {
      try {
        addTcp(state, route, this.listeners);
        valid.push(route);
      } catch (err) {
        left.push(this.leaveOut(route?.id, err));
      }
    }
    return { left, http, state, valid };
  }

  private async putTcp(route: TcpRoute): Promise<'written' | 'base-missing'> {
    const apps = await this.readApps();
    if (!hasBase(apps, this.listeners)) return 'base-missing';
    const state = readTcp(apps);
    addTcp(state, route, this.listeners); // refuses a host or port that another route holds
    const next = writeTcp(apps, state, this.listeners);
    // An HTTP route of the same id (the pod's entry was HTTP before) gives way in the same write.
    const http = httpRoutesOf(next);
    if (http) http.splice(0, http.length, ...http.filter((r) => r['@id'] !== route.id));
    await this.expect('PATCH', '/config/apps', next, `writing route ${route.id}`);
    this.log.debug({ routeId: route.id, kind: route.kind, upstream: route.upstream }, 'caddy tcp route written');
    return 'written';
  }

  /** Remove TCP route `id` with its certificate name; false when no TCP route has that id. */
  private async removeTcp(id: string): Promise<boolean> {
    const apps = await this.readApps();
    if (apps === undefined) return false;
    const state = readTcp(apps);
    if (!dropTcp(state, id)) return false;
    await this.expect('PATCH', '/config/apps', writeTcp(apps, state, this.listeners), `removing route ${id}`);
    this.log.debug({ routeId: id }, 'caddy tcp route removed');
    return true;
  }

  private async readApps(): Promise<Json | undefined> {
    const res = await this.call('GET', '/config/apps');
    if (res.status === 404) return undefined;
    if (!ok(res)) throw rejected('reading the config', res);
    const apps = parseJson(res.text);
    return typeof apps === 'object' && apps !== null ? (apps as Json) : undefined;
  }

  private leaveOut(id: unknown, err: unknown): { id: string; message: string } {
    if (!(err instanceof CaddyError && err.code === 'CADDY_REJECTED')) throw err;
    this.log.warn({ routeId: id, err: err.message }, 'caddy route left out');
    return { id: String(id), message: err.message };
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async expect(method: 'POST' | 'PATCH', path: string, body: Json, what: string): Promise<void> {
    const res = await this.call(method, path, body);
    if (!ok(res)) throw rejected(what, res);
  }

  private async call(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: Json): Promise<AdminReply> {
    // Just after a config change Caddy's admin server is restarting and drops what arrives
    // ("other side closed"). Calls that change nothing, or that give the same result when
    // repeated (a whole /load, PATCH and DELETE by id), are tried again; an append is not.
    const repeatable = method !== 'POST' || path === '/load';
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.callOnce(method, path, body);
      } catch (err) {
        if (!repeatable || attempt >= 4 || (err as CaddyError).code !== 'CADDY_UNREACHABLE') throw err;
        await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
      }
    }
  }

  private async callOnce(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: Json): Promise<AdminReply> {
    try {
      const res = await request(this.adminOrigin + path, {
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        // Caddy restarts its admin server on every config change; a kept-alive
        // socket would be closed under the next request.
        reset: true,
        headersTimeout: ADMIN_TIMEOUT_MS,
        bodyTimeout: ADMIN_TIMEOUT_MS,
      });
      const reply = { status: res.statusCode, text: await res.body.text() };
      if (method !== 'GET') this.onWrite(method, ok(reply) ? 'ok' : 'refused');
      return reply;
    } catch (err) {
      if (method !== 'GET') this.onWrite(method, 'unreachable');
      throw new CaddyError('CADDY_UNREACHABLE', `Caddy admin ${method} ${path} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

function isHttpRoute(value: unknown): boolean {
  const match = (value as { match?: Array<{ host?: unknown }> } | null)?.match;
  return Array.isArray(match) && Array.isArray(match[0]?.host);
}

function firstDuplicate(values: unknown[]): unknown {
  const seen = new Set<unknown>();
  for (const v of values) {
    if (seen.has(v)) return v;
    seen.add(v);
  }
  return undefined;
}

function ok(res: AdminReply): boolean {
  return res.status >= 200 && res.status < 300;
}

function rejected(what: string, res: AdminReply): CaddyError {
  const body = parseJson(res.text);
  const detail =
    body && typeof body === 'object' && typeof (body as Json).error === 'string'
      ? ((body as Json).error as string)
      : res.text.trim() || `HTTP ${res.status}`;
  return new CaddyError('CADDY_REJECTED', `Caddy refused ${what}: ${detail}`, { status: res.status });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
