import Router from '@koa/router';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, notFound } from '../../shared/errors.js';
import { NewTemplate, NewTemplateTag, TagName, UpdateTemplate } from '../../shared/template.js';
import type { TemplateStore } from '../store/templates.js';
import { requireSiteAdmin } from './auth.js';
import { readJson, validate } from './body.js';
import { ok } from './envelope.js';

/** Templates and their tags. Anyone in the site may read them; site admins change them. */
export function templatesRouter(config: CoordinatorConfig, templates: TemplateStore): Router {
  const router = new Router();
  const mustExist = async (id: string) => {
    const t = await templates.get(id);
    if (!t) throw notFound(`template "${id}" was not found`);
    return t;
  };
  const full = (q: unknown) => q === 'true' || q === '1';
  const brief = <T extends { pod_definition: unknown }>(t: T, withDefinition: boolean) => {
    if (withDefinition) return t;
    const { pod_definition: _omit, ...rest } = t;
    return rest;
  };

  router.get('/v3/pods/templates', async (ctx) => {
    ok(ctx, await templates.list(), 'Templates retrieved successfully.');
  });

  router.post('/v3/pods/templates', async (ctx) => {
    const id = requireSiteAdmin(ctx, 'add templates');
    const body = validate(NewTemplate, await readJson(ctx, config.maxBodyBytes));
    const rec = await templates.add(body, id.username);
    if (!rec) throw badRequest(`template_id: template "${body.template_id}" already exists`);
    ok(ctx, rec, 'Template created successfully.');
  });

  router.get('/v3/pods/templates/tags', async (ctx) => {
    const out: Record<string, unknown[]> = {};
    for (const t of await templates.list()) out[t.template_id] = (await templates.tags(t.template_id)).map((x) => brief(x, full(ctx.query.full)));
    ok(ctx, out, 'Templates and tags retrieved successfully.');
  });

  router.get('/v3/pods/templates/:template_id', async (ctx) => {
    ok(ctx, await mustExist(ctx.params.template_id!), 'Template retrieved successfully.');
  });

  router.put('/v3/pods/templates/:template_id', async (ctx) => {
    requireSiteAdmin(ctx, 'change templates');
    await mustExist(ctx.params.template_id!);
    const body = validate(UpdateTemplate, await readJson(ctx, config.maxBodyBytes));
    ok(ctx, await templates.update(ctx.params.template_id!, body), 'Template updated successfully.');
  });

  router.delete('/v3/pods/templates/:template_id', async (ctx) => {
    requireSiteAdmin(ctx, 'delete templates');
    await mustExist(ctx.params.template_id!);
    await templates.remove(ctx.params.template_id!);
    ok(ctx, `Template ${ctx.params.template_id} deleted.`, 'Template deleted successfully.');
  });

  router.get('/v3/pods/templates/:template_id/tags', async (ctx) => {
    await mustExist(ctx.params.template_id!);
    const tags = await templates.tags(ctx.params.template_id!);
    ok(ctx, tags.map((t) => brief(t, full(ctx.query.full ?? 'true'))), 'Template tags retrieved successfully.');
  });

  router.post('/v3/pods/templates/:template_id/tags', async (ctx) => {
    const id = requireSiteAdmin(ctx, 'add template tags');
    await mustExist(ctx.params.template_id!);
    const body = validate(NewTemplateTag, await readJson(ctx, config.maxBodyBytes));
    ok(ctx, await templates.addTag(ctx.params.template_id!, body, id.username), 'Template tag added successfully.');
  });

  router.get('/v3/pods/templates/:template_id/tags/:tag_id', async (ctx) => {
    await mustExist(ctx.params.template_id!);
    const [tag, stamp] = ctx.params.tag_id!.split('@') as [string, string | undefined];
    if (!TagName.safeParse(tag).success) throw badRequest(`tag_id: "${ctx.params.tag_id}" is not a tag or tag@YYYY-MM-DD-HH:MM:SS`);
    const matches = (await templates.tags(ctx.params.template_id!)).filter((t) => t.tag === tag && (!stamp || t.tag_timestamp === `${tag}@${stamp}`));
    if (!matches.length) throw notFound(`template "${ctx.params.template_id}" has no tag "${ctx.params.tag_id}"`);
    ok(ctx, matches, 'Template tag retrieved successfully.');
  });

  return router;
}
