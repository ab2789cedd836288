// The agent's only door into Caddy: the admin API on this host.
//
// Caddy's admin API in brief (v2.11): POST /load replaces the whole config;
// `/id/<id>` addresses the object carrying that "@id"; POST to an array path
// appends, PATCH replaces an existing value, DELETE removes it; an unknown id
// is 404. A change Caddy cannot provision is answered 500 and the running
// config (and the admin copy of it) stays as it was.
// Requests go through undici.request: Node's global fetch sends
// `Sec-Fetch-Mode: cors`, which Caddy's admin origin check refuses with 403.
import { request } from 'undici';
import type { Logger } from '../shared/log.js';

export interface PodRoute {
  id: string;
  host: string;
  /** "127.0.0.1:PORT" */
  upstream: string;
}

export type CaddyErrorCode = 'CADDY_UNREACHABLE' | 'CADDY_REJECTED';

/**
 * CADDY_UNREACHABLE: the admin endpoint did not answer (down, refused, timed out).
 * CADDY_REJECTED: Caddy answered non-2xx (`status` set, message is Caddy's
 * error text), or the route was refused here before sending (`status` unset).
 */
export class CaddyError extends Error {
  readonly code: CaddyErrorCode;
  readonly status?: number;
  constructor(code: CaddyErrorCode, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options);
    this.name = 'CaddyError';
    this.code = code;
    if (options?.status !== undefined) this.status = options.status;
  }
}

const ROUTES_ID = 'pods-routes';
const NOT_FOUND_ID = 'pods-not-found';
const RESERVED_IDS = new Set([ROUTES_ID, NOT_FOUND_ID]);
const ROUTES_PATH = `/id/${ROUTES_ID}/handle/0/routes`;

// The admin API answers in milliseconds; a slow answer means Caddy is stuck.
const ADMIN_TIMEOUT_MS = 10_000;
// A pod whose container is gone answers 502 quickly instead of hanging.
const DIAL_TIMEOUT = '3s';
// Every config change unloads the old handlers, and by default Caddy then
// closes every proxied WebSocket on the host. Creating one pod must not cut
// the notebooks of all the others, so streams outlive a reload this long.
const STREAM_CLOSE_DELAY = '30m';

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, 'i');
const UPSTREAM_RE = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?):(\d{1,5})$/i;

type Json = Record<string, unknown>;

interface AdminReply {
  status: number;
  text: string;
}

export class CaddyClient {
  private readonly adminOrigin: string;
  private readonly adminListen: string;
  private readonly httpListen: string;
  private readonly log: Logger;
  // Admin calls run one at a time. Writes must not interleave, and reads go in
  // line too: Caddy restarts its admin server on every config change and drops
  // requests that arrive meanwhile ("other side closed"). The tail never
  // rejects, so a failure does not block the next call.
  private tail: Promise<unknown> = Promise.resolve();

  constructor(opts: { adminUrl: string; httpListen: string; log: Logger }) {
    const url = new URL(opts.adminUrl);
    if (url.protocol !== 'http:') throw new TypeError(`Caddy admin URL must be http://host:port, got ${opts.adminUrl}`);
    this.adminOrigin = url.origin;
    // Our config keeps the admin endpoint where we reach it, so /load never moves it
    // and the Host header we send is always one Caddy allows.
    this.adminListen = `${url.hostname}:${url.port || '80'}`;
    this.httpListen = opts.httpListen;
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

  /** Replace Caddy's whole config with the base + exactly these routes (POST /load). Used on agent (re)connect and after a Caddy restart. */
  resync(routes: PodRoute[]): Promise<void> {
    let config: Json;
    try {
      const built = routes.map(buildRoute);
      const dup = firstDuplicate(routes.map((r) => r.id));
      if (dup !== undefined) throw refused(`route id ${dup} appears twice`);
      config = this.baseConfig(built);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(async () => {
      await this.expect('POST', '/load', config, 'loading the config');
      this.log.info({ routes: routes.length }, 'caddy config loaded');
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
      built = buildRoute(route);
    } catch (err) {
      return Promise.reject(err);
    }
    const idPath = `/id/${route.id}`;
    return this.enqueue(async () => {
      const existing = await this.call('GET', idPath);
      if (ok(existing)) {
        await this.expect('PATCH', idPath, built, `replacing route ${route.id}`);
        this.log.debug({ routeId: route.id, host: route.host, upstream: route.upstream }, 'caddy route replaced');
        return 'written';
      }
      if (existing.status !== 404) throw rejected(`reading route ${route.id}`, existing);

      const appended = await this.call('POST', ROUTES_PATH, built);
      if (appended.status === 404) return 'base-missing';
      if (!ok(appended)) throw rejected(`adding route ${route.id}`, appended);
      this.log.debug({ routeId: route.id, host: route.host, upstream: route.upstream }, 'caddy route added');
      return 'written';
    });
  }

  /** Remove one route by @id; a route that does not exist is not an error. */
  removeRoute(id: string): Promise<void> {
    try {
      checkId(id);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(async () => {
      const res = await this.call('DELETE', `/id/${id}`);
      if (res.status === 404) return; // already gone, or Caddy has no config at all
      if (!ok(res)) throw rejected(`removing route ${id}`, res);
      this.log.debug({ routeId: id }, 'caddy route removed');
    });
  }

  private baseConfig(podRoutes: Json[]): Json {
    return {
      admin: { listen: this.adminListen },
      apps: {
        http: {
          servers: {
            pods: {
              listen: [this.httpListen],
              automatic_https: { disable: true },
              routes: [
                // `routes` must stay an array even when empty: POST appends only to an array.
                { '@id': ROUTES_ID, handle: [{ handler: 'subroute', routes: podRoutes }] },
                // Without this, an unknown or stopped pod gets Caddy's empty 200.
                {
                  '@id': NOT_FOUND_ID,
                  handle: [
                    {
                      handler: 'static_response',
                      status_code: 404,
                      headers: {
                        'Content-Type': ['text/plain; charset=utf-8'],
                        'X-Content-Type-Options': ['nosniff'],
                      },
                      body: 'no pod is served at {http.request.host}\n',
                    },
                  ],
                },
              ],
            },
          },
        },
      },
    };
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
    try {
      const res = await request(this.adminOrigin + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        // Caddy restarts its admin server on every config change; a kept-alive
        // socket would be closed under the next request.
        reset: true,
        headersTimeout: ADMIN_TIMEOUT_MS,
        bodyTimeout: ADMIN_TIMEOUT_MS,
      });
      return { status: res.statusCode, text: await res.body.text() };
    } catch (err) {
      throw new CaddyError('CADDY_UNREACHABLE', `Caddy admin ${method} ${path} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

function buildRoute(route: PodRoute): Json {
  checkId(route.id);
  // Caddy accepts any dial string and any host here and fails only per request,
  // so a bad value would become a route that 502s or, with "{...}", a
  // placeholder that matches other hosts. Refuse it before it is sent.
  if (!HOST_RE.test(route.host) || route.host.length > 253) {
    throw refused(`route ${route.id}: host ${JSON.stringify(route.host)} is not a hostname`);
  }
  const m = UPSTREAM_RE.exec(route.upstream);
  const port = m ? Number(m[2]) : 0;
  if (port < 1 || port > 65535) {
    throw refused(`route ${route.id}: upstream ${JSON.stringify(route.upstream)} is not host:port`);
  }
  return {
    '@id': route.id,
    match: [{ host: [route.host] }],
    handle: [
      {
        handler: 'reverse_proxy',
        transport: { protocol: 'http', dial_timeout: DIAL_TIMEOUT },
        stream_close_delay: STREAM_CLOSE_DELAY,
        upstreams: [{ dial: route.upstream }],
      },
    ],
    terminal: true,
  };
}

function checkId(id: string): void {
  // The id becomes a URL path segment and a Caddy-wide "@id"; ours must not be touched.
  if (!ID_RE.test(id) || RESERVED_IDS.has(id)) throw refused(`route id ${JSON.stringify(id)} is not allowed`);
}

function firstDuplicate(values: string[]): string | undefined {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) return v;
    seen.add(v);
  }
  return undefined;
}

function ok(res: AdminReply): boolean {
  return res.status >= 200 && res.status < 300;
}

function refused(message: string): CaddyError {
  return new CaddyError('CADDY_REJECTED', message);
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
