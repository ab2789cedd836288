import Router from '@koa/router';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, notFound } from '../../shared/errors.js';
import { imageName, type ImageStore } from '../store/images.js';
import { requireSiteAdmin, type Identity } from './auth.js';
import { readJson, validate } from './body.js';
import { ok } from './envelope.js';

export const NewImage = z.strictObject({
  image: z.string().min(1).max(255).regex(/^[a-z0-9][a-z0-9._\/-]*(:[A-Za-z0-9._-]+)?$/, 'image must be a Docker image name such as name or name:tag'),
  tenants: z.array(z.string().regex(/^(\*|[a-z][a-z0-9-]*)$/)).default([]),
  description: z.string().max(255).default(''),
});

/** The image allow-list. Anyone may read it; only site admins may change it. */
export function imagesRouter(config: CoordinatorConfig, images: ImageStore): Router {
  const router = new Router();

  // A tenant sees the images its users may run; site admins see the whole list.
  router.get('/v3/pods/images', async (ctx) => {
    const id = ctx.state.identity as Identity;
    const all = await images.list();
    const mine = id.admin ? all : all.filter((i) => i.tenants.length === 0 || i.tenants.includes('*') || i.tenants.includes(id.tenant));
    ok(ctx, mine, 'Images retrieved successfully.');
  });

  router.post('/v3/pods/images', async (ctx) => {
    const id = requireSiteAdmin(ctx, 'change the image allow-list');
    const body = validate(NewImage, await readJson(ctx, config.maxBodyBytes));
    const rec = {
      image: imageName(body.image),
      tenants: body.tenants.length ? body.tenants : [id.tenant],
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
    requireSiteAdmin(ctx, 'change the image allow-list');
    const name = ctx.params.image_id!;
    if (!(await images.remove(name))) throw notFound(`image "${name}" is not on the allow-list`);
    ok(ctx, `Image ${imageName(name)} removed.`, 'Image deleted successfully.');
  });

  return router;
}
