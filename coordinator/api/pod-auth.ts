import { randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { badRequest, PodsError } from '../../shared/errors.js';
import { AUTH_HOLDERS, podHost, type PodSpec } from '../../shared/pod.js';
import type { PodStore } from '../store/pods.js';
import type { UserRecord } from '../store/users.js';
import { podIdNet } from '../view.js';
import { requestTenant } from './auth.js';
import { readJsonOrForm } from './body.js';
import type { IdentityDeps } from './identity.js';
import { hasLevel, levelOf } from './permissions.js';

// tapis_auth: a login in front of a pod's URL, with this service's own users.
//
//   1. The host's Caddy asks GET /v3/pods/{pod_id_net}/auth for every request to the pod,
//      with the request's own Host (the pod's) and cookies. A valid cookie of an allowed user:
//      200, with the entry's tapis_auth_response_headers, and Caddy passes the request on.
//      No cookie: a redirect to the same path on the tenant's API host, the login page.
//   2. The login page (GET, then POST of user and password, under the login limits) sends an
//      allowed user back to the pod's host with a code valid for a minute, once:
//      /v3/pods/{pod_id_net}/auth/callback?code=..., which Caddy routes here.
//   3. The callback sets the cookie on the pod's host alone (no Domain: host-only; HttpOnly;
//      SameSite=Lax; an hour) and redirects to tapis_auth_return_path.
// Cookie and code are signed with the site's RS256 key and name the pod's host and instance
// uid: neither opens another pod, nor a pod made again with the same id.

export const AUTH_COOKIE = 'pods_auth';
const COOKIE_TTL_S = 3600;
const CODE_TTL_S = 60;

export interface PodAuthDeps extends IdentityDeps {
  pods: PodStore;
}

const Grant = z.object({
  typ: z.enum(['pods-auth-cookie', 'pods-auth-code']),
  host: z.string(),
  uid: z.string(),
  tenant: z.string(),
  user: z.string(),
  epoch: z.number().int(),
  exp: z.number().int(),
  jti: z.string(),
});
type Grant = z.infer<typeof Grant>;

function signGrant(key: KeyObject, grant: Omit<Grant, 'exp' | 'jti'>, ttlS: number): string {
  const body = Buffer.from(JSON.stringify({ ...grant, exp: Math.floor(Date.now() / 1000) + ttlS, jti: randomUUID() })).toString('base64url');
  return `${body}.${sign('sha256', Buffer.from(body), key).toString('base64url')}`;
}

/** The grant in `token` when it is ours, of type `typ`, for `host`, and not expired; else null. */
function readGrant(key: KeyObject, token: string | undefined, typ: Grant['typ'], host: string): Grant | null {
  const [body, sig, ...rest] = (token ?? '').split('.');
  if (!body || !sig || rest.length > 0) return null;
  try {
    if (!verify('sha256', Buffer.from(body), key, Buffer.from(sig, 'base64url'))) return null;
    const g = Grant.safeParse(JSON.parse(Buffer.from(body, 'base64url').toString()));
    if (!g.success || g.data.typ !== typ || g.data.host !== host || g.data.exp <= Date.now() / 1000) return null;
    return g.data;
  } catch {
    return null;
  }
}

/** Codes already exchanged, until they expire (a code opens one session, once). */
class UsedCodes {
  private readonly seen = new Map<string, number>();
  take(jti: string, exp: number): boolean {
    const now = Date.now() / 1000;
    for (const [k, e] of this.seen) if (e <= now) this.seen.delete(k);
    if (this.seen.has(jti)) return false;
    this.seen.set(jti, exp);
    return true;
  }
}

const LoginForm = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  rd: z.string().max(2048).default(''),
});

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(ctx: Context, status: number, title: string, inner: string): void {
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Content-Type-Options', 'nosniff');
  // The login form must not be framed by another site (clickjacking) and runs no script.
  ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  ctx.body = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${inner}</body></html>\n`;
}

/** The pod and networking entry a pod_id_net names, when it exists and asks for tapis_auth. */
interface Target {
  tenant: string;
  podId: string;
  net: string;
  spec: PodSpec;
  uid: string;
  host: string;
  entry: PodSpec['networking'][string];
}

export function podAuthRouter(deps: PodAuthDeps): Router {
  const { config, tenants, users, pods, keys, logins } = deps;
  const router = new Router();
  const used = new UsedCodes();
  const base = config.baseDomain.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const POD_HOST = new RegExp(`^([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)?)\\.pods\\.([a-z][a-z0-9-]*)\\.${base}$`);

  const hostnameOf = (ctx: Context) => ctx.get('host').toLowerCase().replace(/:\d+$/, '');

  async function target(tenant: string, idNet: string): Promise<Target | null> {
    const m = /^([a-z][a-z0-9]*)(?:-([a-z][a-z0-9]*))?$/.exec(idNet);
    if (!m) return null;
    const [podId, net] = [m[1]!, m[2] ?? 'default'];
    const rec = await pods.get(tenant, podId);
    const entry = rec?.spec.networking[net];
    if (!rec || rec.desired.deleting || !entry?.tapis_auth || podIdNet(podId, net) !== idNet) return null;
    return { tenant, podId, net, spec: rec.spec, uid: rec.desired.uid, host: podHost(podId, net, tenant, config.baseDomain), entry };
  }

  /** The pod whose host this request came to (through its Caddy), or null. */
  async function targetOfHost(ctx: Context, idNet: string): Promise<Target | null> {
    const m = POD_HOST.exec(hostnameOf(ctx));
    if (!m || m[1] !== idNet) return null;
    return target(m[2]!, idNet);
  }

  /** A user who may still use the pod: exists, enabled, same epoch, and allowed by the entry. */
  async function admitted(t: Target, username: string, epoch: number | null): Promise<{ user: UserRecord; allowed: boolean } | null> {
    const user = await users.get(t.tenant, username);
    if (!user || user.disabled || (epoch !== null && user.epoch !== epoch)) return null;
    const list = t.entry.tapis_auth_allowed_users ?? ['*'];
    const name = user.username.toLowerCase();
    if (list.includes('*') || list.some((u) => u.toLowerCase() === name)) return { user, allowed: true };
    const needs = list.flatMap((u) => (Object.hasOwn(AUTH_HOLDERS, u) ? [AUTH_HOLDERS[u as keyof typeof AUTH_HOLDERS]] : []));
    if (needs.length === 0) return { user, allowed: false };
    const level = levelOf({ tenant: t.tenant, username: user.username, admin: user.admin || user.site_admin, site: user.site_admin }, await pods.perms(t.tenant, t.podId));
    return { user, allowed: needs.some((need) => hasLevel(level, need)) };
  }

  const denied = (ctx: Context, username: string, t: Target) =>
    page(ctx, 403, 'Access denied', `<p>User <b>${esc(username)}</b> may not use <b>${esc(t.host)}</b>. Ask the pod's owner to add you to its <code>tapis_auth_allowed_users</code>.</p>`);

  const loginForm = (ctx: Context, status: number, t: Target, rd: string, message = '') =>
    page(
      ctx,
      status,
      `Log in to ${t.host}`,
      `${message ? `<p role="alert">${esc(message)}</p>` : ''}<form method="post">` +
        `<input type="hidden" name="rd" value="${esc(rd)}">` +
        `<p><label>Username <input name="username" autocomplete="username" required></label></p>` +
        `<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>` +
        `<p><button type="submit">Log in</button></p></form><p>Tenant <b>${esc(t.tenant)}</b></p>`,
    );

  /** Where on the pod's host to come back to: the origin the pod was asked at, checked to be the pod's own host. */
  function podOrigin(t: Target, rd: string): string | null {
    if (!rd) return `https://${t.host}`;
    try {
      const u = new URL(rd);
      if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname !== t.host || u.username || u.password) return null;
      return u.origin;
    } catch {
      return null;
    }
  }

  // A pod that does not exist, or has no login, is a plain API error (the Tapis envelope).
  const notFoundPage = (_ctx: Context): never => {
    throw new PodsError('NOT_FOUND', 'no pod networking entry with tapis_auth is served under this name');
  };
  const badRd = (t: Target): never => {
    throw badRequest(`rd: must be the address of ${t.host} (http or https, any port)`);
  };

  // pod_auth: Caddy's check on the pod's host; the login page on the API host.
  router.get('/v3/pods/:idNet/auth', async (ctx) => {
    const idNet = ctx.params.idNet!;
    const onPodHost = POD_HOST.test(hostnameOf(ctx));
    if (onPodHost) {
      const t = await targetOfHost(ctx, idNet);
      if (!t) return notFoundPage(ctx);
      const grant = readGrant(keys.publicKey, cookieOf(ctx, AUTH_COOKIE), 'pods-auth-cookie', t.host);
      const who = grant && grant.uid === t.uid && grant.tenant === t.tenant ? await admitted(t, grant.user, grant.epoch) : null;
      if (who && !who.allowed) return denied(ctx, who.user.username, t);
      if (who) {
        const fill = (v: string) =>
          v.replaceAll('<<tapisusername>>', who.user.username).replaceAll('<<tapistenantid>>', t.tenant).replaceAll('<<tapissiteid>>', config.siteId);
        for (const [name, value] of Object.entries(t.entry.tapis_auth_response_headers ?? {})) ctx.set(name, fill(value));
        ctx.status = 200;
        ctx.body = '';
        return;
      }
      const tenant = await tenants.get(t.tenant);
      if (!tenant) return notFoundPage(ctx);
      const proto = ctx.get('x-forwarded-proto') === 'https' ? 'https' : 'http';
      const login = `${tenant.base_url.replace(/\/+$/, '')}/v3/pods/${idNet}/auth?rd=${encodeURIComponent(`${proto}://${ctx.get('host')}`)}`;
      ctx.set('Cache-Control', 'no-store');
      ctx.redirect(login);
      return;
    }
    const t = await target(requestTenant(ctx).tenant_id, idNet);
    if (!t) return notFoundPage(ctx);
    const rd = typeof ctx.query.rd === 'string' ? ctx.query.rd : '';
    if (podOrigin(t, rd) === null) return badRd(t);
    loginForm(ctx, 200, t, rd);
  });

  router.post('/v3/pods/:idNet/auth', async (ctx) => {
    // A form posted from another site never logs anyone in (login CSRF).
    const origin = ctx.get('origin');
    if (origin && origin !== 'null' && safeHost(origin) !== ctx.get('host').toLowerCase()) {
      return page(ctx, 403, 'Access denied', '<p>This form may only be sent from its own page.</p>');
    }
    const t = await target(requestTenant(ctx).tenant_id, ctx.params.idNet!);
    if (!t) return notFoundPage(ctx);
    const form = LoginForm.safeParse(await readJsonOrForm(ctx, 16_384));
    if (!form.success) return loginForm(ctx, 400, t, '', 'Give a username and a password.');
    const { username, password, rd } = form.data;
    const back = podOrigin(t, rd);
    if (back === null) return badRd(t);
    let user: UserRecord | null;
    try {
      user = await logins.attempt(t.tenant, username, ctx.ip, () => users.authenticate(t.tenant, username, password));
    } catch (err) {
      if (!(err instanceof PodsError) || err.code !== 'TOO_MANY_REQUESTS') throw err;
      if (err.retryAfterS) ctx.set('Retry-After', String(err.retryAfterS));
      return loginForm(ctx, 429, t, rd, err.message);
    }
    if (!user) return loginForm(ctx, 401, t, rd, 'Invalid username or password.');
    const who = await admitted(t, user.username, null);
    if (!who?.allowed) return denied(ctx, user.username, t);
    const code = signGrant(keys.privateKey, { typ: 'pods-auth-code', host: t.host, uid: t.uid, tenant: t.tenant, user: user.username, epoch: user.epoch }, CODE_TTL_S);
    ctx.status = 303;
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Location', `${back}/v3/pods/${ctx.params.idNet}/auth/callback?code=${encodeURIComponent(code)}`);
    ctx.body = '';
  });

  // pod_auth_callback: on the pod's host, through its Caddy.
  router.get('/v3/pods/:idNet/auth/callback', async (ctx) => {
    const t = await targetOfHost(ctx, ctx.params.idNet!);
    if (!t) return notFoundPage(ctx);
    const code = typeof ctx.query.code === 'string' ? ctx.query.code : undefined;
    const grant = readGrant(keys.publicKey, code, 'pods-auth-code', t.host);
    if (!grant || grant.uid !== t.uid || grant.tenant !== t.tenant || !used.take(grant.jti, grant.exp)) {
      return page(ctx, 400, 'Login expired', `<p>This login link is not valid (any more). Open <b>${esc(t.host)}</b> again to log in.</p>`);
    }
    const cookie = signGrant(keys.privateKey, { ...grant, typ: 'pods-auth-cookie' }, COOKIE_TTL_S);
    const secure = ctx.get('x-forwarded-proto') === 'https' ? '; Secure' : '';
    ctx.set('Set-Cookie', `${AUTH_COOKIE}=${cookie}; Path=/; Max-Age=${COOKIE_TTL_S}; HttpOnly; SameSite=Lax${secure}`);
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(t.entry.tapis_auth_return_path ?? '/');
  });

  return router;
}

function cookieOf(ctx: Context, name: string): string | undefined {
  for (const part of ctx.get('cookie').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function safeHost(origin: string): string | null {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return null;
  }
}
