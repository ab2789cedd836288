// The JSON the agent gives Caddy: the base config and one object per pod route,
// each validated before it is built. Pure functions; agent/caddy.ts sends them.
//
// Where things live (each "@id" is addressable as /id/<id> in the admin API):
//   apps.http.servers.pods             the HTTP server: pod routes in the subroute
//                                      "pods-routes", then "pods-not-found" (a plain 404)
//   apps.layer4.servers.pods-tls       the shared TLS listener, when one is configured:
//                                      "pods-tls-postgres" first, then one SNI route per pod
//   apps.layer4.servers.pods-port-<id> one server per dedicated-port route (@id = route id)
//   apps.tls.automation.policies       with the TLS listener: "pods-tls-names", certificates
//                                      for exactly the SNI hosts, issued on demand by the
//                                      internal CA; then a catch-all internal policy, so
//                                      nothing here uses ACME
//   apps.pki                           with the TLS listener: the internal CA "local", never
//                                      put in the system trust store
import { isIPv4, isIPv6 } from 'node:net';
import type { RouteAccess } from '../shared/protocol.js';
import { isCidr } from '../shared/pod.js';
import { refused } from './caddy-error.js';

export interface PodRoute {
  id: string;
  host: string;
  /** "127.0.0.1:PORT" */
  upstream: string;
  /** Who may reach it (ip_allow_list, CORS, tapis_auth); unset: everyone, as it is. */
  access?: RouteAccess;
}

/**
 * What access rules need from the host: the coordinator that answers tapis_auth checks (Caddy
 * dials it; its Host header stays the pod's, so the coordinator knows which pod is asked for)
 * and the addresses the edge connects from (admitted as well: the edge checked the client).
 */
export interface AccessContext {
  coordinator?: { dial: string; tls: boolean };
  edgeSources: string[];
}
export const NO_ACCESS_CONTEXT: AccessContext = { edgeSources: [] };

/**
 * protocol `tcp`: any TLS client that sends SNI (redis-cli --tls --sni, ...). `postgres`: also
 * answers libpq's ALPN "postgresql" (libpq 17+). Either way the SSLRequest that libpq sends
 * before TLS is answered for every host on the listener (see PG_PREAMBLE_ID).
 */
export type TcpProtocol = 'tcp' | 'postgres';

/** On the shared TLS listener: TLS SNI == host; Caddy ends TLS and proxies plain TCP to upstream. */
export interface SniRoute {
  kind: 'sni';
  id: string;
  host: string;
  /** "127.0.0.1:PORT" */
  upstream: string;
  protocol?: TcpProtocol;
  /** CIDRs that may connect; others match no route and Caddy closes the connection. */
  ipAllow?: string[];
}

/** A listener of its own at `listen` ("IP:PORT", an explicit address), raw TCP to upstream: for protocols without SNI. */
export interface PortRoute {
  kind: 'port';
  id: string;
  listen: string;
  upstream: string;
  ipAllow?: string[];
}

export type TcpRoute = SniRoute | PortRoute;

/** Addresses Caddy listens on for us; `tls` unset means no shared TLS listener (SNI routes are refused). */
export interface Listeners {
  admin: string;
  http: string;
  tls?: string;
}

export type Json = Record<string, unknown>;

export const ROUTES_ID = 'pods-routes';
const NOT_FOUND_ID = 'pods-not-found';
const TLS_SERVER = 'pods-tls';
// libpq does not open with a TLS ClientHello: it sends an 8-byte SSLRequest and waits for
// one byte, 'S' or 'N'. The `postgres` matcher recognises the request and `postgres_tls`
// answers 'S' (caddy-l4 v0.1.2, modules/l4postgres). The route is not terminal (that
// handler calls the next one, and there is none), so matching goes on through the SNI
// routes with the ClientHello that follows, as for a client that starts with TLS: one
// route per host serves psql and any other TLS client alike. Caddy ends TLS and the pod's
// server gets plaintext over loopback; passing TLS through to the server's own would need
// Caddy to replay the SSLRequest upstream, which caddy-l4 cannot do.
const PG_PREAMBLE_ID = 'pods-tls-postgres';
const TLS_NAMES_ID = 'pods-tls-names';
const PORT_SERVER_PREFIX = 'pods-port-';
const RESERVED_IDS = new Set([ROUTES_ID, NOT_FOUND_ID, TLS_SERVER, PG_PREAMBLE_ID, TLS_NAMES_ID]);

// A pod whose container is gone answers 502 quickly instead of hanging.
const DIAL_TIMEOUT = '3s';
// Every config change unloads the old handlers, and by default Caddy then
// closes every proxied WebSocket on the host. Creating one pod must not cut
// the notebooks of all the others, so streams outlive a reload this long.
const STREAM_CLOSE_DELAY = '30m';
// ALPN offered by the TLS listener. Caddy's default (h2, http/1.1) would fail the handshake
// of any client that offers only other protocols; none at all lets every client through and
// selects nothing, which suits a plain byte pipe. libpq 17+ offers "postgresql" and wants it back.
const ALPN: Record<TcpProtocol, string[]> = { tcp: [], postgres: ['postgresql'] };

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, 'i');
const UPSTREAM_RE = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?):(\d{1,5})$/i;
const LISTEN_RE = /^(?:([0-9.]+)|\[([0-9a-f:.]+)\]):(\d{1,5})$/i;

export function checkId(id: string): void {
  // The id becomes a URL path segment and a Caddy-wide "@id"; ours must not be touched.
  if (typeof id !== 'string' || !ID_RE.test(id) || RESERVED_IDS.has(id)) {
    throw refused(`route id ${JSON.stringify(id)} is not allowed`);
  }
}

function checkHost(id: string, host: string): void {
  // Caddy accepts any host here and fails only per request or handshake, and one
  // with "{...}" would be a placeholder matching other hosts. Refuse it before it is sent.
  if (typeof host !== 'string' || !HOST_RE.test(host) || host.length > 253) {
    throw refused(`route ${id}: host ${JSON.stringify(host)} is not a hostname`);
  }
}

function checkUpstream(id: string, upstream: string): void {
  // Caddy would accept any dial string and fail every connection.
  const m = typeof upstream === 'string' ? UPSTREAM_RE.exec(upstream) : null;
  const port = m ? Number(m[2]) : 0;
  if (port < 1 || port > 65535) throw refused(`route ${id}: upstream ${JSON.stringify(upstream)} is not host:port`);
}

/** "IP:PORT" with an explicit, specified IP: a dedicated port never binds every interface by accident. */
export function checkListen(what: string, listen: string): void {
  const m = typeof listen === 'string' ? LISTEN_RE.exec(listen) : null;
  const ip = m ? (m[1] ?? m[2] ?? '') : '';
  const port = m ? Number(m[3]) : 0;
  const valid = m !== null && (m[1] !== undefined ? isIPv4(ip) : isIPv6(ip)) && port >= 1 && port <= 65535;
  if (!valid) throw refused(`${what}: listen address ${JSON.stringify(listen)} is not IP:PORT`);
  if (ip === '0.0.0.0' || /^[0:]+$/.test(ip)) {
    throw refused(`${what}: listen address ${listen} binds every interface; give the address to serve on`);
  }
}

export function buildHttpRoute(route: PodRoute, ctx: AccessContext = NO_ACCESS_CONTEXT): Json {
  checkId(route.id);
  checkHost(route.id, route.host);
  checkUpstream(route.id, route.upstream);
  const proxy = {
    handler: 'reverse_proxy',
    transport: { protocol: 'http', dial_timeout: DIAL_TIMEOUT },
    stream_close_delay: STREAM_CLOSE_DELAY,
    upstreams: [{ dial: route.upstream }],
  };
  const gates = route.access ? accessRoutes(route.id, route.access, ctx) : [];
  return {
    '@id': route.id,
    match: [{ host: [route.host] }],
    handle: gates.length === 0 ? [proxy] : [{ handler: 'subroute', routes: [...gates, { handle: [proxy] }] }],
    terminal: true,
  };
}

/** A plain-text answer of Caddy's own (403s of the access rules). */
export function plainResponse(status: number, body: string, headers: Record<string, string[]> = {}): Json {
  return {
    handler: 'static_response',
    status_code: status,
    headers: { 'Content-Type': ['text/plain; charset=utf-8'], 'X-Content-Type-Options': ['nosniff'], ...headers },
    body,
  };
}

/** The HTTP routes that refuse an address outside `ranges` with a 403 (none when `ranges` is empty). */
export function ipGate(ranges: string[]): Json[] {
  if (ranges.length === 0) return [];
  return [{ match: [{ not: [{ remote_ip: { ranges } }] }], handle: [plainResponse(403, 'your address may not reach this pod\n')], terminal: true }];
}

/** The layer4 matcher of an allow list (none when it is empty). */
export function l4IpMatch(ranges: string[] | undefined): Json {
  return ranges && ranges.length > 0 ? { remote_ip: { ranges } } : {};
}

function checkRanges(id: string, ranges: string[] | undefined): void {
  for (const r of ranges ?? []) if (!isCidr(r)) throw refused(`route ${id}: ${JSON.stringify(r)} is not an IP address or CIDR`);
}

/**
 * The routes in front of a pod's proxy, in order: the address check (403), CORS preflights
 * (answered here, before any login: browsers send no cookie with them) and CORS headers on
 * every answer, then the tapis_auth check. Each part is there only when the entry asks for it.
 */
function accessRoutes(id: string, access: RouteAccess, ctx: AccessContext): Json[] {
  checkRanges(id, access.ipAllow);
  checkRanges(id, ctx.edgeSources);
  const routes: Json[] = [];
  if (access.ipAllow?.length) routes.push(...ipGate([...access.ipAllow, ...ctx.edgeSources]));
  if (access.cors) routes.push(...corsRoutes(access.cors));
  if (access.auth) {
    if (!ctx.coordinator) throw refused(`route ${id}: tapis_auth needs the coordinator's address`);
    routes.push(...authRoutes(access.auth, ctx.coordinator));
  }
  return routes;
}

function corsRoutes(cors: NonNullable<RouteAccess['cors']>): Json[] {
  const anyOrigin = cors.origins.includes('*');
  // Origins are matched exactly (validated by the API: scheme://host[:port]), so echoing the
  // one that matched never echoes anything else. "*" with credentials must echo too.
  const origin = anyOrigin ? { Origin: ['*'] } : { Origin: cors.origins };
  const allowOrigin = anyOrigin && !cors.credentials ? '*' : '{http.request.header.Origin}';
  const common: Record<string, string[]> = {
    'Access-Control-Allow-Origin': [allowOrigin],
    ...(cors.credentials ? { 'Access-Control-Allow-Credentials': ['true'] } : {}),
    Vary: ['Origin'],
  };
  const preflight: Record<string, string[]> = {
    ...common,
    ...(cors.methods.length ? { 'Access-Control-Allow-Methods': [cors.methods.join(', ')] } : {}),
    ...(cors.headers.length ? { 'Access-Control-Allow-Headers': [cors.headers.join(', ')] } : {}),
    'Access-Control-Max-Age': [String(cors.maxAge)],
  };
  const isPreflight = { method: ['OPTIONS'], header: { 'Access-Control-Request-Method': ['*'] } };
  return [
    { match: [{ ...isPreflight, header: { ...isPreflight.header, ...origin } }], handle: [{ ...plainResponse(204, '', preflight) }], terminal: true },
    { match: [isPreflight], handle: [plainResponse(403, 'this origin may not call this pod\n', { Vary: ['Origin'] })], terminal: true },
    // The pod's own CORS headers give way to the configured ones.
    { match: [{ header: origin }], handle: [{ handler: 'headers', response: { set: common, deferred: true } }] },
  ];
}

function authRoutes(auth: NonNullable<RouteAccess['auth']>, coordinator: NonNullable<AccessContext['coordinator']>): Json[] {
  const transport = { protocol: 'http', dial_timeout: DIAL_TIMEOUT, ...(coordinator.tls ? { tls: {} } : {}) };
  const toCoordinator = { handler: 'reverse_proxy', transport, upstreams: [{ dial: coordinator.dial }] };
  return [
    // The end of the login, on the pod's own host, so that its cookie is the host's alone.
    { match: [{ path: [`${auth.path}/callback`] }], handle: [toCoordinator], terminal: true },
    // Whatever the client says in these headers is dropped: only the coordinator's answer sets them.
    ...(auth.headers.length ? [{ handle: [{ handler: 'headers', request: { delete: auth.headers } }] }] : []),
    {
      handle: [
        {
          ...toCoordinator,
          // Ask the coordinator (GET, same headers: its cookie and Host); a 2xx lets the request
          // through with the headers it named, anything else (a redirect to the login page, a
          // 403 page) is the answer the client gets.
          rewrite: { method: 'GET', uri: auth.path },
          handle_response: [
            {
              match: { status_code: [2] },
              routes: [
                {
                  handle: [
                    auth.headers.length
                      ? { handler: 'headers', request: { set: Object.fromEntries(auth.headers.map((h) => [h, [`{http.reverse_proxy.header.${h}}`]])) } }
                      : { handler: 'vars' },
                  ],
                },
              ],
            },
          ],
        },
      ],
    },
  ];
}

function buildTcp(route: TcpRoute, listeners: Listeners): Json {
  checkId(route?.id);
  checkUpstream(route.id, route.upstream);
  checkRanges(route.id, route.ipAllow);
  const proxy = { handler: 'proxy', upstreams: [{ dial: [route.upstream] }] };
  const fromAllowed = l4IpMatch(route.ipAllow);
  if (route.kind === 'sni') {
    checkHost(route.id, route.host);
    const protocol = route.protocol ?? 'tcp';
    if (!Object.hasOwn(ALPN, protocol)) throw refused(`route ${route.id}: protocol ${JSON.stringify(protocol)} is not tcp or postgres`);
    if (!listeners.tls) throw refused(`route ${route.id}: no TLS listener is configured for SNI routes`);
    return {
      '@id': route.id,
      match: [{ tls: { sni: [route.host.toLowerCase()] }, ...fromAllowed }],
      handle: [{ handler: 'tls', connection_policies: [{ alpn: ALPN[protocol] }] }, proxy],
    };
  }
  if (route.kind === 'port') {
    checkListen(`route ${route.id}`, route.listen);
    if ([listeners.admin, listeners.http, listeners.tls].includes(route.listen)) {
      throw refused(`route ${route.id}: listen address ${route.listen} is one of Caddy's own`);
    }
    const match = Object.keys(fromAllowed).length ? { match: [fromAllowed] } : {};
    return { '@id': route.id, listen: [route.listen], routes: [{ ...match, handle: [proxy] }] };
  }
  throw refused(`route ${String((route as { id?: unknown }).id)}: kind must be sni or port`);
}

/** Our TCP routes as a config holds them: SNI routes in listener order, port servers by server key. */
export interface TcpState {
  sni: Json[];
  ports: Map<string, Json>;
}

export function emptyTcp(): TcpState {
  return { sni: [], ports: new Map() };
}

/**
 * Put `route` into `state`, replacing the route with its id (of either kind). Refuses it
 * when another route holds its host or listen address: Caddy would route the host to
 * whichever comes first, and share one socket between two port servers, both silently.
 */
export function addTcp(state: TcpState, route: TcpRoute, listeners: Listeners): void {
  const built = buildTcp(route, listeners);
  const others = (r: Json) => r['@id'] !== route.id;
  if (route.kind === 'sni') {
    const host = sniHost(built);
    const holder = state.sni.filter(others).find((r) => sniHost(r) === host);
    if (holder) throw refused(`route ${route.id}: host ${host} is served by route ${String(holder['@id'])}`);
  } else {
    const holder = [...state.ports.values()].filter(others).find((s) => (s.listen as string[])[0] === route.listen);
    if (holder) throw refused(`route ${route.id}: ${route.listen} is the port of route ${String(holder['@id'])}`);
  }
  dropTcp(state, route.id);
  if (route.kind === 'sni') state.sni.push(built);
  else state.ports.set(PORT_SERVER_PREFIX + route.id, built);
}

/** Remove route `id` from `state`; true when it was there. */
export function dropTcp(state: TcpState, id: string): boolean {
  const before = state.sni.length + state.ports.size;
  state.sni = state.sni.filter((r) => r['@id'] !== id);
  for (const [key, server] of state.ports) if (server['@id'] === id) state.ports.delete(key);
  return state.sni.length + state.ports.size !== before;
}

/** The TCP routes in a running config's `apps` (as read from GET /config/apps). */
export function readTcp(apps: Json): TcpState {
  const servers = (at(apps, 'layer4', 'servers') ?? {}) as Record<string, Json>;
  const tlsRoutes = (at(servers, TLS_SERVER, 'routes') ?? []) as Json[];
  const state = emptyTcp();
  state.sni = tlsRoutes.filter((r) => r['@id'] !== PG_PREAMBLE_ID);
  for (const [key, server] of Object.entries(servers)) if (key.startsWith(PORT_SERVER_PREFIX)) state.ports.set(key, server);
  return state;
}

/** `apps` with its TCP part (layer4 servers and their certificate names) made from `state`. */
export function writeTcp(apps: Json, state: TcpState, listeners: Listeners): Json {
  return { ...apps, ...tcpApps(state, listeners) };
}

/** true when `apps` holds our whole base: the HTTP server's routes subroute and the layer4 app. */
export function hasBase(apps: unknown, listeners: Listeners): apps is Json {
  if (at(apps, 'http', 'servers', 'pods', 'routes', '0', '@id') !== ROUTES_ID) return false;
  const servers = at(apps, 'layer4', 'servers');
  if (typeof servers !== 'object' || servers === null) return false;
  return !listeners.tls || at(servers, TLS_SERVER) !== undefined;
}

/** The HTTP routes array inside `apps` (the one POST appends to). */
export function httpRoutesOf(apps: Json): Json[] | undefined {
  const routes = at(apps, 'http', 'servers', 'pods', 'routes', '0', 'handle', '0', 'routes');
  return Array.isArray(routes) ? (routes as Json[]) : undefined;
}

/** The whole config: our base with these routes. */
export function baseConfig(listeners: Listeners, httpRoutes: Json[], tcp: TcpState): Json {
  return {
    admin: { listen: listeners.admin },
    apps: {
      http: {
        servers: {
          pods: {
            listen: [listeners.http],
            automatic_https: { disable: true },
            routes: [
              // `routes` must stay an array even when empty: POST appends only to an array.
              { '@id': ROUTES_ID, handle: [{ handler: 'subroute', routes: httpRoutes }] },
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
      ...tcpApps(tcp, listeners),
    },
  };
}

function tcpApps(state: TcpState, listeners: Listeners): Json {
  const servers: Json = {};
  if (listeners.tls) {
    servers[TLS_SERVER] = {
      listen: [listeners.tls],
      routes: [
        { '@id': PG_PREAMBLE_ID, match: [{ postgres: { tls: 'enabled' } }], handle: [{ handler: 'postgres_tls' }] },
        ...state.sni,
      ],
    };
  }
  for (const [key, server] of state.ports) servers[key] = server;
  // Certificates are for the TLS listener only; without one, Caddy keeps its defaults.
  if (!listeners.tls) return { layer4: { servers } };

  const internal = [{ module: 'internal' }];
  const hosts = [...new Set(state.sni.map(sniHost))].sort();
  // On demand: a host's certificate is made at its first handshake, so adding a route
  // never waits for issuance. Only the hosts listed here get one, and only a connection
  // whose SNI matched a route reaches the `tls` handler at all. An empty subject list
  // would mean "every name" (and Caddy warns about that), so then there is no policy.
  const names = hosts.length > 0 ? [{ '@id': TLS_NAMES_ID, subjects: hosts, issuers: internal, on_demand: true }] : [];
  return {
    layer4: { servers },
    tls: { automation: { policies: [...names, { issuers: internal }] } },
    pki: { certificate_authorities: { local: { install_trust: false } } },
  };
}

function sniHost(route: Json): string {
  return String(at(route, 'match', '0', 'tls', 'sni', '0'));
}

function at(value: unknown, ...path: string[]): unknown {
  let v = value;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}
