import Router from '@koa/router';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, PodsError } from '../../shared/errors.js';
import { issueToken } from '../identity/jwt.js';
import type { SigningKeys } from '../identity/keys.js';
import type { NodeStore } from '../store/nodes.js';
import { TenantRecord, type TenantStore } from '../store/tenants.js';
import { Username, type UserStore } from '../store/users.js';
import { authenticate, requestTenant, requireSiteAdmin, type AuthDeps } from './auth.js';
import { readJson, readJsonOrForm, validate } from './body.js';
import { ok } from './envelope.js';

const TokenRequest = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  grant_type: z.string(),
});

const NewUser = z.strictObject({
  tenant_id: z.string().optional(),
  username: Username,
  password: z.string().min(8, 'must be at least 8 characters').max(1024),
  admin: z.boolean().default(false),
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
}

/** Sites, tenants and tokens as tapipy expects them before its first pods call; user and tenant admin. */
export function identityRouter(deps: IdentityDeps): Router {
  const { config, tenants, users, keys } = deps;
  const router = new Router();

  const tenantView = (t: TenantRecord) => ({
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
  });

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
    ok(ctx, (await tenants.list()).map(tenantView), 'Tenants retrieved successfully.');
  });

  router.get('/v3/tenants/:tenant_id', async (ctx) => {
    const t = await tenants.get(ctx.params.tenant_id!);
    if (!t) throw new PodsError('NOT_FOUND', `tenant "${ctx.params.tenant_id}" was not found`);
    ok(ctx, tenantView(t), 'Tenant retrieved successfully.');
  });

  router.post('/v3/oauth2/tokens', async (ctx) => {
    const body = validate(TokenRequest, await readJsonOrForm(ctx, config.maxBodyBytes));
    if (body.grant_type !== 'password') throw badRequest(`grant_type: "${body.grant_type}" is not supported; use "password"`);
    const tenant = requestTenant(ctx);
    const user = await users.authenticate(tenant.tenant_id, body.username, body.password);
    if (!user) throw new PodsError('UNAUTHORIZED', 'invalid username or password');
    const { token, claims } = issueToken(keys.privateKey, {
      issuer: `${tenant.base_url}/v3/tokens`,
      tenant: tenant.tenant_id,
      username: user.username,
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

  // Site administration (our own extension; Tapis does this in other services).
  const admin = new Router();
  admin.use(authenticate(deps));
  admin.post('/v3/admin/tenants', async (ctx) => {
    const id = requireSiteAdmin(ctx, 'add tenants');
    const body = validate(NewTenant, await readJson(ctx, config.maxBodyBytes));
    const rec: TenantRecord = { ...body, created_by: id.username };
    const r = await tenants.add(rec);
    if (r === 'id-taken') throw badRequest(`tenant_id: tenant "${body.tenant_id}" already exists`);
    if (r === 'url-taken') throw badRequest(`base_url: another tenant already uses ${body.base_url}`);
    ok(ctx, tenantView(rec), 'Tenant added successfully.');
  });
  admin.post('/v3/admin/users', async (ctx) => {
    requireSiteAdmin(ctx, 'manage users');
    const body = validate(NewUser, await readJson(ctx, config.maxBodyBytes));
    const tenant = body.tenant_id ?? requestTenant(ctx).tenant_id;
    if (!(await tenants.get(tenant))) throw badRequest(`tenant_id: tenant "${tenant}" does not exist`);
    const rec = await users.put(tenant, body.username, body.password, body.admin);
    ok(ctx, { tenant_id: tenant, username: rec.username, admin: rec.admin, created: rec.created }, 'User saved successfully.');
  });
  admin.get('/v3/admin/users', async (ctx) => {
    requireSiteAdmin(ctx, 'list users');
    const tenant = typeof ctx.query.tenant_id === 'string' ? ctx.query.tenant_id : requestTenant(ctx).tenant_id;
    ok(ctx, await users.list(tenant), 'Users retrieved successfully.');
  });
  router.use(admin.routes());
  return router;
}
