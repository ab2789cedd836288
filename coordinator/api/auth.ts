import { timingSafeEqual } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { CoordinatorConfig } from '../../shared/config.js';
import { PodsError } from '../../shared/errors.js';
import type { SigningKeys } from '../identity/keys.js';
import { verifiedTokens } from '../identity/verified-tokens.js';
import type { TenantRecord, TenantStore } from '../store/tenants.js';
import type { UserStore } from '../store/users.js';

export interface Identity {
  tenant: string;
  username: string;
  /** Tenant admin: ADMIN on every pod, volume and snapshot of its own tenant; manages that tenant's users and images. */
  admin: boolean;
  /** Site admin (the service's operators): tenants, nodes, node tokens, the site's templates and images, every tenant's users. */
  site: boolean;
}

/** Whether a presented token is this one, in constant time for a given length. */
function tokenEquals(known: Buffer, presented: string): boolean {
  return known.length === Buffer.byteLength(presented) && timingSafeEqual(known, Buffer.from(presented));
}

export interface AuthDeps {
  config: CoordinatorConfig;
  tenants: TenantStore;
  users: UserStore;
  keys: SigningKeys;
}

/** The tenant a request is for: the one whose base URL host is the request's Host. */
export function tenantResolver(tenants: TenantStore): Middleware {
  return async (ctx, next) => {
    const host = ctx.get('host');
    ctx.state.tenant = tenants.known(host) ?? (await tenants.forHost(host));
    await next();
  };
}

export const requestTenant = (ctx: Context) => ctx.state.tenant as TenantRecord;

/**
 * Checks X-Tapis-Token on every request it guards: a JWT signed by this site (signature,
 * expiry, and a tenant that must be the request's tenant, for a user that still exists), or
 * one of the static tokens from config (the site admin's works in every tenant).
 */
export function authenticate(deps: AuthDeps): Middleware {
  const { config, users, keys } = deps;
  const adminToken = Buffer.from(config.adminToken);
  const statics = config.extraTokens.map((t) => ({ ...t, bytes: Buffer.from(t.token) }));
  const tokens = verifiedTokens(keys.publicKey);
  return async (ctx, next) => {
    const tenant = requestTenant(ctx).tenant_id;
    const presented = ctx.get('x-tapis-token');
    if (!presented) throw new PodsError('UNAUTHORIZED', 'no X-Tapis-Token header; a token is required');
    let identity: Identity | null = null;
    if (tokenEquals(adminToken, presented)) {
      identity = { tenant, username: config.adminUser, admin: true, site: true };
    } else if (presented.split('.').length === 3) {
      const v = tokens.verify(presented);
      if (!v.ok) {
        throw new PodsError('UNAUTHORIZED', v.reason === 'expired' ? 'the X-Tapis-Token has expired; get a new one' : 'the X-Tapis-Token is not valid');
      }
      const tokenTenant = v.claims['tapis/tenant_id'];
      if (tokenTenant !== tenant) throw new PodsError('UNAUTHORIZED', `the X-Tapis-Token is for tenant "${tokenTenant}", not "${tenant}"`);
      const user = await users.get(tenant, v.claims['tapis/username']);
      if (!user) throw new PodsError('UNAUTHORIZED', 'the X-Tapis-Token names a user that no longer exists');
      if (user.disabled) throw new PodsError('UNAUTHORIZED', `user "${user.username}" is disabled`);
      if (v.claims['pods/epoch'] !== user.epoch) throw new PodsError('UNAUTHORIZED', 'the X-Tapis-Token was revoked (password or rights changed since it was issued); get a new one');
      identity = { tenant, username: user.username, admin: user.admin || user.site_admin, site: user.site_admin };
    } else {
      const match = statics.find((t) => tokenEquals(t.bytes, presented));
      if (match && match.tenant !== tenant) throw new PodsError('UNAUTHORIZED', `the X-Tapis-Token is for tenant "${match.tenant}", not "${tenant}"`);
      if (match) identity = { tenant, username: match.username, admin: match.admin || match.site_admin, site: match.site_admin };
    }
    if (!identity) throw new PodsError('UNAUTHORIZED', 'the X-Tapis-Token is not valid');
    ctx.state.identity = identity;
    await next();
  };
}

export function requireSiteAdmin(ctx: Context, what: string): Identity {
  const id = ctx.state.identity as Identity;
  if (!id.site) throw new PodsError('FORBIDDEN', `only site admins may ${what}`);
  return id;
}

/** A tenant admin of `tenant` (the caller's own tenant) or a site admin. */
export function requireTenantAdmin(ctx: Context, tenant: string, what: string): Identity {
  const id = ctx.state.identity as Identity;
  if (id.site || (id.admin && id.tenant === tenant)) return id;
  throw new PodsError('FORBIDDEN', id.admin ? `tenant admins may ${what} only in their own tenant ("${id.tenant}")` : `only admins of tenant "${tenant}" may ${what}`);
}
