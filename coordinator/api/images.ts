import Router from '@koa/router';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, notFound } from '../../shared/errors.js';
import { imageName, type ImageStore } from '../store/images.js';
import { requireTenantAdmin, type Identity } from './auth.js';
import type { Context } from 'koa';
import { PodsError } from '../../shared/errors.js';
import { readJson, validate } from './body.js';
import { ok } from './envelope.js';

export const NewImage = z.strictObject({
  image: z.string().min(1).max(255).regex(/^[a-z0-9][a-z0-9._\/-]*(:[A-Za-z0-9._-]+)?$/, 'image must be a Docker image name such as name or name:tag'),
  tenants: z.array(z.string().regex(/^(\*|[a-z][a-z0-9-]*)$/)).default([]),
  description: z.string().max(255).default(''),
});

/**
 * The image allow-list. Anyone may read what their tenant may run; site admins change any
 * entry, a tenant admin only entries for its own tenant alone.
 */
/** A tenant admin (not a site admin) may only touch entries for its own tenant alone. */
function ownOnly(ctx: Context, tenants: string[]): void {
  const id = ctx.state.identity as Identity;
  if (!id.site && !(tenants.length === 1 && tenants[0] === id.tenant)) {
    throw new PodsError('FORBIDDEN', `tenant admins may change only images for their own tenant ("${id.tenant}") alone; this one is for ${tenants.join(', ')}`);
  }
}

export function imagesRouter(config: CoordinatorConfig, images: ImageStore): Router {
  const router = new Router();

  // A tenant sees the images its users may run; site admins see the whole list.
  router.get('/v3/pods/images', async (ctx) => {
    const id = ctx.state.identity as Identity;
    const all = await images.list();
    const mine = id.site ? all : all.filter((i) => i.tenants.length === 0 || i.tenants.includes('*') || i.tenants.includes(id.tenant));
    ok(ctx, mine, 'Images retrieved successfully.');
  });

  router.post('/v3/pods/images', async (ctx) => {
    const id = requireTenantAdmin(ctx, (ctx.state.identity as Identity).tenant, 'change the image allow-list');
    const body = validate(NewImage, await readJson(ctx, config.maxBodyBytes));
    const tenants = body.tenants.length ? body.tenants : [id.tenant];
    ownOnly(ctx, tenants);
    const rec = {
      image: imageName(body.image),
      tenants,
      description: body.description,
      creation_ts: new Date().toISOString(),
      added_by: id.username,
    };
    if (!(await images.add(rec))) throw badRequest(`image: "${rec.image}" is already on the allow-list`);
    ok(ctx, rec, 'Image added successfully.');
  });

  router.get('/v3/pods/images/*image_id', async (ctx) => {
    const rec = await images.get(ctx.params.image_id!);
    if (!rec) throw notFound(`image "${ctx.params.image_id}" is not on the allow-list`);
    ok(ctx, rec, 'Image retrieved successfully.');
  });

  router.delete('/v3/pods/images/*image_id', async (ctx) => {
    requireTenantAdmin(ctx, (ctx.state.identity as Identity).tenant, 'change the image allow-list');
    const name = ctx.params.image_id!;
    const rec = await images.get(name);
    if (rec) ownOnly(ctx, rec.tenants);
    if (!(await images.remove(name))) throw notFound(`image "${name}" is not on the allow-list`);
    ok(ctx, `Image ${imageName(name)} removed.`, 'Image deleted successfully.');
  });

  return router;
}
