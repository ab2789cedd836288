import Router from '@koa/router';
import type Koa from 'koa';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, PodsError } from '../../shared/errors.js';
import { issueToken } from '../identity/jwt.js';
import type { SigningKeys } from '../identity/keys.js';
import type { NodeStore } from '../store/nodes.js';
import { TenantRecord, type TenantStore } from '../store/tenants.js';
import type { LoginLimits } from './login-limits.js';
import { Username, type UserRecord, type UserStore } from '../store/users.js';
import { requestTenant, requireSiteAdmin, requireTenantAdmin, type AuthDeps, type Identity } from './auth.js';
import { readJson, readJsonOrForm, validate } from './body.js';
import { ok } from './envelope.js';

const TokenRequest = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  grant_type: z.string(),
});

const Password = z.string().min(8, 'must be at least 8 characters').max(1024);

const NewUser = z.strictObject({
  tenant_id: z.string().optional(),
  username: Username,
  password: Password,
  admin: z.boolean().default(false),
  site_admin: z.boolean().default(false),
});

const UserUpdate = z.strictObject({
  password: Password.optional(),
  admin: z.boolean().optional(),
  site_admin: z.boolean().optional(),
  disabled: z.boolean().optional(),
});

const userView = (tenant: string, u: UserRecord) => ({
  tenant_id: tenant,
  username: u.username,
  admin: u.admin,
  site_admin: u.site_admin,
  disabled: u.disabled,
  created: u.created,
  updated: u.updated ?? u.created,
});

const NewTenant = z.strictObject({
  tenant_id: TenantRecord.shape.tenant_id,
  base_url: TenantRecord.shape.base_url,
  description: z.string().max(255).default(''),
});

export interface IdentityDeps extends AuthDeps {
  config: CoordinatorConfig;
  tenants: TenantStore;
  users: UserStore;
  nodes: NodeStore;
  keys: SigningKeys;
  logins: LoginLimits;
}

/** A tenant as Tapis' tenants service shows it. */
function tenantView(deps: Pick<IdentityDeps, 'config' | 'keys'>, t: TenantRecord) {
  const { config, keys } = deps;
  return {
    tenant_id: t.tenant_id,
    base_url: t.base_url,
    site_id: config.siteId,
    public_key: keys.publicPem,
    token_service: `${t.base_url}/v3/tokens`,
    security_kernel: `${t.base_url}/v3/security`,
    authenticator: `${t.base_url}/v3/oauth2`,
    admin_user: config.adminUser,
    token_gen_services: [],
    description: t.description,
    status: 'active',
    owner: t.created_by || config.adminUser,
  };
}

/** Sites, tenants and tokens as tapipy expects them before its first pods call: no token needed. */
export function identityRouter(deps: IdentityDeps): Router {
  const { config, tenants, users, keys, logins } = deps;
  const router = new Router();

  router.get('/v3/sites', async (ctx) => {
    const primary = (await tenants.list())[0]!;
    ok(ctx, [{
      site_id: config.siteId,
      base_url: primary.base_url,
      primary: true,
      services: ['pods', 'tenants', 'tokens', 'authenticator'],
      site_admin_tenant_id: primary.tenant_id,
      tenant_base_url_template: '',
    }], 'Sites retrieved successfully.');
  });

  router.get('/v3/tenants', async (ctx) => {
    ok(ctx, (await tenants.list()).map((t) => tenantView(deps, t)), 'Tenants retrieved successfully.');
  });

  router.get('/v3/tenants/:tenant_id', async (ctx) => {
    const t = await tenants.get(ctx.params.tenant_id!);
    if (!t) throw new PodsError('NOT_FOUND', `tenant "${ctx.params.tenant_id}" was not found`);
    ok(ctx, tenantView(deps, t), 'Tenant retrieved successfully.');
  });

  router.post('/v3/oauth2/tokens', async (ctx) => {
    const body = validate(TokenRequest, await readJsonOrForm(ctx, config.maxBodyBytes));
    if (body.grant_type !== 'password') throw badRequest(`grant_type: "${body.grant_type}" is not supported; use "password"`);
    const tenant = requestTenant(ctx);
    const user = await logins.attempt(tenant.tenant_id, body.username, ctx.ip, () => users.authenticate(tenant.tenant_id, body.username, body.password));
    if (!user) throw new PodsError('UNAUTHORIZED', 'invalid username or password');
    const { token, claims } = issueToken(keys.privateKey, {
      issuer: `${tenant.base_url}/v3/tokens`,
      tenant: tenant.tenant_id,
      username: user.username,
      epoch: user.epoch,
      ttlS: config.tokenTtlS,
    });
    ok(ctx, {
      access_token: {
        access_token: token,
        expires_at: new Date(claims.exp * 1000).toISOString(),
        expires_in: config.tokenTtlS,
        jti: claims.jti,
      },
    }, 'Token created successfully.');
  });

  return router;
}

/**
 * Tenant and user administration (our own extension; Tapis does this in other services), for
 * authenticated callers: mounted behind the API's authentication.
 */
export function identityAdminRouter(deps: IdentityDeps): Router {
  const { config, tenants, users } = deps;
  const admin = new Router();
  admin.post('/v3/admin/tenants', async (ctx) => {
    const id = requireSiteAdmin(ctx, 'add tenants');
    const body = validate(NewTenant, await readJson(ctx, config.maxBodyBytes));
    const rec: TenantRecord = { ...body, created_by: id.username };
    const r = await tenants.add(rec);
    if (r === 'id-taken') throw badRequest(`tenant_id: tenant "${body.tenant_id}" already exists`);
    if (r === 'url-taken') throw badRequest(`base_url: another tenant already uses ${body.base_url}`);
    ok(ctx, tenantView(deps, rec), 'Tenant added successfully.');
  });
  // Users: a tenant admin manages its own tenant's users; a site admin any tenant's, and
  // only a site admin makes, changes or removes another site admin.
  const tenantOf = async (ctx: Koa.Context, given: unknown) => {
    const tenant = typeof given === 'string' ? given : requestTenant(ctx).tenant_id;
    requireTenantAdmin(ctx, tenant, 'manage users');
    if (!(await tenants.get(tenant))) throw badRequest(`tenant_id: tenant "${tenant}" does not exist`);
    return tenant;
  };
  const guardSiteAdmins = (id: Identity, target: { site_admin?: boolean } | null, what: string) => {
    if (target?.site_admin && !id.site) throw new PodsError('FORBIDDEN', `only site admins may ${what} a site admin`);
  };
  const existing = async (tenant: string, username: string) => {
    const rec = await users.get(tenant, username);
    if (!rec) throw new PodsError('NOT_FOUND', `user "${username}" was not found in tenant "${tenant}"`);
    return rec;
  };

  admin.post('/v3/admin/users', async (ctx) => {
    const body = validate(NewUser, await readJson(ctx, config.maxBodyBytes));
    const tenant = await tenantOf(ctx, body.tenant_id);
    guardSiteAdmins(ctx.state.identity as Identity, body, 'make');
    const rec = await users.create(tenant, body.username, body.password, { admin: body.admin || body.site_admin, site_admin: body.site_admin });
    if (!rec) throw new PodsError('CONFLICT', `user "${body.username}" already exists in tenant "${tenant}"; change it with PUT /v3/admin/users/${body.username}`);
    ok(ctx, userView(tenant, rec), 'User created successfully.');
  });
  admin.get('/v3/admin/users', async (ctx) => {
    const tenant = await tenantOf(ctx, ctx.query.tenant_id);
    ok(ctx, (await users.list(tenant)).map((u) => userView(tenant, u)), 'Users retrieved successfully.');
  });
  admin.get('/v3/admin/users/:username', async (ctx) => {
    const tenant = await tenantOf(ctx, ctx.query.tenant_id);
    ok(ctx, userView(tenant, await existing(tenant, ctx.params.username!)), 'User retrieved successfully.');
  });
  admin.put('/v3/admin/users/:username', async (ctx) => {
    const tenant = await tenantOf(ctx, ctx.query.tenant_id);
    const body = validate(UserUpdate, await readJson(ctx, config.maxBodyBytes));
    const id = ctx.state.identity as Identity;
    guardSiteAdmins(id, await existing(tenant, ctx.params.username!), 'change');
    guardSiteAdmins(id, body, 'make');
    const rec = await users.update(tenant, ctx.params.username!, body);
    if (!rec) throw new PodsError('NOT_FOUND', `user "${ctx.params.username}" was not found in tenant "${tenant}"`);
    ok(ctx, userView(tenant, rec), 'User updated successfully.');
  });
  admin.delete('/v3/admin/users/:username', async (ctx) => {
    const tenant = await tenantOf(ctx, ctx.query.tenant_id);
    guardSiteAdmins(ctx.state.identity as Identity, await existing(tenant, ctx.params.username!), 'delete');
    if (!(await users.remove(tenant, ctx.params.username!))) throw new PodsError('NOT_FOUND', `user "${ctx.params.username}" was not found in tenant "${tenant}"`);
    ok(ctx, `User ${ctx.params.username} deleted.`, 'User deleted successfully.');
  });
  return admin;
}
