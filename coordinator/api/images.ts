import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, notFound, PodsError } from '../../shared/errors.js';
import { formatIssues } from '../../shared/protocol.js';
import { imageName, type ImageStore } from '../store/images.js';
import { requireTenantAdmin, type Identity } from './auth.js';
import { readJson, validate } from './body.js';
import { ok } from './envelope.js';
import { queryBool } from './query.js';

const TagOrDigest = z.string().regex(/^([A-Za-z0-9_][A-Za-z0-9._-]{0,127}|sha256:[a-f0-9]{64})$/, 'tags are Docker tags (1.2, latest) or digests (sha256:...)');

export const NewImage = z.strictObject({
  image: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[a-z0-9][a-z0-9._\/-]*(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$/, 'image must be a Docker image name such as name, name:tag or name@sha256:digest'),
  /** Tags and digests to pin: only these run, and only these may be pulled. Empty: any tag runs, none is pulled. */
  tags: z.array(TagOrDigest).max(64).default([]),
  tenants: z.array(z.string().regex(/^(\*|[a-z][a-z0-9-]*)$/)).default([]),
  description: z.string().max(255).default(''),
});

export const MAX_BULK_IMAGES = 256;
export const NewImages = z.array(NewImage, 'the body must be a JSON list of images').min(1, 'give at least one image').max(MAX_BULK_IMAGES, `at most ${MAX_BULK_IMAGES} images at once`);

/** A tenant admin (not a site admin) may only touch entries for its own tenant alone. */
function ownOnly(ctx: Context, tenants: string[]): void {
  const id = ctx.state.identity as Identity;
  if (!id.site && !(tenants.length === 1 && tenants[0] === id.tenant)) {
    throw new PodsError('FORBIDDEN', `tenant admins may change only images for their own tenant ("${id.tenant}") alone; this one is for ${tenants.join(', ')}`);
  }
}

/**
 * The image allow-list. Anyone may read what their tenant may run; site admins change any
 * entry, a tenant admin only entries for its own tenant alone.
 */
export function imagesRouter(config: CoordinatorConfig, images: ImageStore): Router {
  const router = new Router();

  // A tenant sees the images its users may run; site admins see the whole list.
  router.get('/v3/pods/images', async (ctx) => {
    const id = ctx.state.identity as Identity;
    const all = await images.list();
    const mine = id.site ? all : all.filter((i) => i.tenants.length === 0 || i.tenants.includes('*') || i.tenants.includes(id.tenant));
    ok(ctx, mine, 'Images retrieved successfully.');
  });

  /** An allow-list entry from a request, for the caller (tenants default to the caller's own). */
  const entryFor = (ctx: Context, id: Identity, body: z.infer<typeof NewImage>) => {
    const tenants = body.tenants.length ? body.tenants : [id.tenant];
    ownOnly(ctx, tenants);
    // The entry is for the name (a tag in `image` is not kept, as Tapis has it); `tags` pins tags and digests.
    const tags = [...new Set(body.tags)];
    return { image: imageName(body.image), tags, tenants, description: body.description, creation_ts: new Date().toISOString(), added_by: id.username };
  };

  router.post('/v3/pods/images', async (ctx) => {
    const id = requireTenantAdmin(ctx, (ctx.state.identity as Identity).tenant, 'change the image allow-list');
    const rec = entryFor(ctx, id, validate(NewImage, await readJson(ctx, config.maxBodyBytes)));
    if (!(await images.add(rec))) throw badRequest(`image: "${rec.image}" is already on the allow-list`);
    ok(ctx, rec, 'Image added successfully.');
  });

  // Tapis `add_images`: all or nothing, unless skip_duplicates leaves out those already listed.
  router.post('/v3/pods/images/bulk', async (ctx) => {
    const id = requireTenantAdmin(ctx, (ctx.state.identity as Identity).tenant, 'change the image allow-list');
    const skipDuplicates = queryBool(ctx.query.skip_duplicates, 'skip_duplicates', false);
    const raw = await readJson(ctx, config.maxBodyBytes);
    const parsed = NewImages.safeParse(raw);
    if (!parsed.success) throw badRequest(formatIssues(parsed.error));
    const recs = parsed.data.map((body) => entryFor(ctx, id, body));
    const twice = recs.map((r) => r.image).filter((name, i, all) => all.indexOf(name) !== i);
    if (twice.length) throw badRequest(`image: "${twice[0]}" is given twice; give each image once`);
    const { added, listed } = await images.addMany(recs, skipDuplicates);
    if (listed.length && !skipDuplicates) {
      throw badRequest(`image: ${listed.map((n) => `"${n}"`).join(', ')} ${listed.length === 1 ? 'is' : 'are'} already on the allow-list; nothing was added (use skip_duplicates=true to add the others)`);
    }
    const skipped = listed.length ? `; skipped ${listed.length} already on the allow-list: ${listed.join(', ')}` : '';
    ok(ctx, added, added.length ? `Images added successfully${skipped}.` : `No images added: all were already on the allow-list.`);
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
