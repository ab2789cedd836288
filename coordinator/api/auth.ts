import { timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import type { CoordinatorConfig } from '../../shared/config.js';
import { PodsError } from '../../shared/errors.js';

export interface Identity {
  tenant: string;
  username: string;
  /** Site admin: manages the image allow-list and has ADMIN on every pod of its tenant. */
  admin: boolean;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Static tokens from config until the identity issue lands. Every handler reads
 * tenant and user from ctx.state.identity, never from config.
 */
export function staticTokenAuth(config: CoordinatorConfig): Middleware {
  const tokens = [
    { token: config.adminToken, tenant: config.tenant, username: config.adminUser, admin: true },
    ...config.extraTokens,
  ];
  return async (ctx, next) => {
    const presented = ctx.get('x-tapis-token');
    if (!presented) throw new PodsError('UNAUTHORIZED', 'no X-Tapis-Token header; a token is required');
    const match = tokens.find((t) => same(t.token, presented));
    if (!match) throw new PodsError('UNAUTHORIZED', 'the X-Tapis-Token is not valid');
    ctx.state.identity = { tenant: match.tenant, username: match.username, admin: match.admin } satisfies Identity;
    await next();
  };
}
