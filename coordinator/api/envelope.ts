import type { Context, Middleware } from 'koa';
import { isPodsError, PodsError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';

// The Tapis envelope. tapipy parses JSON only when Content-Type is exactly
// "application/json", so it is set by hand, before the body: Koa then leaves it as it is
// (it would add a charset) and skips guessing a type for the body.

export interface Envelope {
  status: 'success' | 'error';
  message: string;
  result: unknown;
  version: string;
  metadata: Record<string, unknown>;
}

export function send(ctx: Context, status: number, env: Envelope): void {
  sendJson(ctx, status, JSON.stringify(env));
}

function sendJson(ctx: Context, status: number, json: string): void {
  ctx.status = status;
  ctx.set('Content-Type', 'application/json');
  ctx.body = json;
}

export function ok(ctx: Context, result: unknown, message: string, metadata: Record<string, unknown> = {}): void {
  send(ctx, 200, { status: 'success', message, result, version: ctx.state.version, metadata });
}

/**
 * `ok` for a result that is JSON already (a remembered view): the same bytes as `ok` with the
 * parsed result, without serialising the result again.
 */
export function okJson(ctx: Context, resultJson: string, message: string, metadata: Record<string, unknown> = {}): void {
  const version = JSON.stringify(ctx.state.version);
  sendJson(ctx, 200, `{"status":"success","message":${JSON.stringify(message)},"result":${resultJson},"version":${version},"metadata":${JSON.stringify(metadata)}}`);
}

const MAX_PAGE = 1000;

/**
 * A list answered a page at a time (our extension; Tapis lists everything): `?limit=N&skip=M`,
 * sorted as given, with {total, limit, skip} in the envelope's metadata. Without `limit` the
 * whole list is the answer, as tapipy expects.
 */
export function okPage<T>(ctx: Context, items: T[], message: string): void {
  const { page, metadata } = pageOf(ctx, items);
  ok(ctx, page, message, metadata);
}

/**
 * `okPage` for items each given as JSON by `json` (remembered views): the same bytes, and
 * only the page's items are asked for.
 */
export function okPageJson<T>(ctx: Context, items: T[], json: (item: T) => string, message: string): void {
  const { page, metadata } = pageOf(ctx, items);
  okJson(ctx, `[${page.map(json).join(',')}]`, message, metadata);
}

function pageOf<T>(ctx: Context, items: T[]): { page: T[]; metadata: { total: number; skip: number; limit: number | null } } {
  const int = (name: string, min: number, max: number): number | undefined => {
    const raw = ctx.query[name];
    if (raw === undefined) return undefined;
    const n = typeof raw === 'string' && /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
    if (!(n >= min && n <= max)) throw new PodsError('BAD_REQUEST', `${name}: must be a whole number from ${min} to ${max}`);
    return n;
  };
  const limit = int('limit', 1, MAX_PAGE);
  const skip = int('skip', 0, 1e9) ?? 0;
  const page = items.slice(skip, limit === undefined ? undefined : skip + limit);
  return { page, metadata: { total: items.length, skip, limit: limit ?? null } };
}

/** The one place an error becomes an HTTP response. */
export function errorEnvelope(log: Logger, version: string): Middleware {
  return async (ctx, next) => {
    ctx.state.version = version;
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new PodsError('NOT_FOUND', `no such endpoint: ${ctx.method} ${ctx.path}`);
      if (ctx.status === 405 && !ctx.body) throw new PodsError('BAD_REQUEST', `method ${ctx.method} is not allowed on ${ctx.path}`);
    } catch (err) {
      const e = isPodsError(err) ? err : new PodsError('INTERNAL', 'internal error', { cause: err });
      if (e.code === 'INTERNAL') log.error({ err, path: ctx.path, method: ctx.method }, 'request failed');
      const status = e.code === 'BAD_REQUEST' && ctx.status === 405 ? 405 : e.status;
      if (e.retryAfterS !== undefined) ctx.set('Retry-After', String(e.retryAfterS));
      send(ctx, status, {
        status: 'error',
        message: e.expose ? e.message : 'Internal server error; the failure has been logged.',
        result: null,
        version,
        metadata: {},
      });
    }
  };
}
