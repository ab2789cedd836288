import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import type { Context } from 'koa';
import { notFound } from '../../shared/errors.js';

// The web console: static files built by `npm run build` into dist/coordinator/console/
// (index.html and console.css copied, the *.ts compiled to ES modules), served at /ui/ on the
// API's port. The page calls the API with the user's token like any other client, so this
// router needs none: it serves files only, under a Content-Security-Policy that allows no
// inline script or style and no origin but this one.

/** dist/coordinator/console/, next to this file's dist/coordinator/api/. */
export const CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../console');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every servable file of the console, read once: a handful of small files. */
async function loadAssets(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const type = CONTENT_TYPES[path.extname(name)];
    if (!type) continue; // source maps and anything else stay unserved
    const body = await readFile(path.join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

function serve(ctx: Context, asset: Asset, cache: string): void {
  ctx.set('Content-Security-Policy', CONSOLE_CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cache-Control', cache);
  ctx.set('ETag', asset.etag);
  if (ctx.get('if-none-match') === asset.etag) {
    ctx.status = 304;
    return;
  }
  ctx.status = 200;
  ctx.type = asset.type;
  ctx.body = asset.body;
}

export function consoleRouter(dir = CONSOLE_DIR): Router {
  // strict: /ui and /ui/ are two routes (the first redirects to the second).
  const router = new Router({ strict: true });
  let assets: Promise<Map<string, Asset>> | null = null;
  const load = async () => {
    assets ??= loadAssets(dir);
    return assets;
  };

  router.get('/', (ctx) => ctx.redirect('/ui/'));
  router.get('/ui', (ctx) => ctx.redirect('/ui/'));
  router.get('/ui/', async (ctx) => {
    const index = (await load()).get('index.html');
    if (!index) throw notFound('the web console is not built (run npm run build)');
    // The page names its scripts without a version: it must never be served stale.
    serve(ctx, index, 'no-store');
  });
  router.get('/ui/:file', async (ctx) => {
    const name = ctx.params.file!;
    const asset = name === 'index.html' ? undefined : (await load()).get(name);
    if (!asset) throw notFound(`no such file in the web console: ${name}`);
    serve(ctx, asset, 'no-cache');
  });
  return router;
}
