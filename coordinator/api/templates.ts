import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, forbidden, notFound } from '../../shared/errors.js';
import { NewTemplate, NewTemplateTag, PodDefinition, TagName, UpdateTemplate } from '../../shared/template.js';
import { resolveTemplate } from '../derive.js';
import { PermLevel } from '../store/pods.js';
import type { TagRecord, TemplateRecord, TemplateStore } from '../store/templates.js';
import { Username } from '../store/users.js';
import type { Identity } from './auth.js';
import { readJson, validate } from './body.js';
import { ok } from './envelope.js';
import { queryBool } from './query.js';
import { loadTemplateFor, readableTemplates, requireTemplateUse } from './template-access.js';

/** A template as the API shows it (its tenant and sharing are in its permissions). */
export function templateView(rec: TemplateRecord) {
  const { tenant_id: _tenant, site: _site, ...view } = rec;
  return view;
}

/** A tag version as the API shows it (the pod definition is left out when full=false). */
export const TagView = z.strictObject({
  template_id: z.string(),
  commit_message: z.string(),
  tag: z.string(),
  tag_timestamp: z.string(),
  added_by: z.string(),
  creation_ts: z.string(),
  pod_definition: PodDefinition.optional(),
});

/** A tag version as the API shows it, with or without its pod definition. */
export function tagView(tag: TagRecord, withDefinition = true) {
  const { by_site_admin: _trusted, pod_definition, ...rest } = tag;
  return withDefinition ? { ...rest, pod_definition } : rest;
}

/** `user:LEVEL` entries, as Tapis lists them; TENANT and SITE are the tenant- and site-wide ones. */
export function templatePermissionsView(rec: TemplateRecord, perms: Record<string, PermLevel>) {
  const entries = Object.entries(perms).sort(([a], [b]) => a.localeCompare(b)).map(([user, level]) => `${user}:${level}`);
  return { permissions: rec.site ? [...entries, 'SITE:READ'] : entries };
}

export const SetTemplatePermission = z.strictObject({
  user: z.string().refine((u) => u === 'TENANT' || u === 'SITE' || Username.safeParse(u).success, 'give a username of the template\'s tenant, TENANT (all its users) or SITE (every user of the site)'),
  level: PermLevel,
});

/** Tapis reserves these ids: /pods/templates/tags is a listing, not a template. */
const RESERVED_IDS = new Set(['tags']);

const who = (ctx: Context) => ctx.state.identity as Identity;

/** Templates, their tags and permissions. Site admins' templates are the site's; anyone else's are their tenant's, shared as they choose. */
export function templatesRouter(config: CoordinatorConfig, templates: TemplateStore): Router {
  const router = new Router();
  const templateId = (ctx: Context) => (ctx as Context & { params: Record<string, string> }).params.template_id!;

  /** A tag's base template (its own `template` field) must exist and be usable by the one adding it. */
  async function checkBase(def: PodDefinition, id: Identity, field: string): Promise<void> {
    if (def.template) await resolveTemplate(templates, def.template, { field, canUse: (rec) => requireTemplateUse(templates, id, rec, field) });
  }

  router.get('/v3/pods/templates', async (ctx) => {
    ok(ctx, (await readableTemplates(templates, who(ctx))).map(templateView), 'Templates retrieved successfully.');
  });

  router.post('/v3/pods/templates', async (ctx) => {
    const id = who(ctx);
    const body = validate(NewTemplate, await readJson(ctx, config.maxBodyBytes));
    if (RESERVED_IDS.has(body.template_id)) throw badRequest(`template_id: "${body.template_id}" is reserved; choose another`);
    // A site admin's template is the site's; anyone else's belongs to their tenant and is theirs to share.
    const rec = await templates.add(body, id.username, { tenant: id.tenant, site: id.site, admin: id.username });
    if (!rec) throw badRequest(`template_id: "${body.template_id}" is already taken on this site; choose another`);
    ok(ctx, templateView(rec), 'Template created successfully.');
  });

  router.get('/v3/pods/templates/tags', async (ctx) => {
    const withDefinition = queryBool(ctx.query.full, 'full', true);
    const out: Record<string, unknown[]> = {};
    for (const t of await readableTemplates(templates, who(ctx))) out[t.template_id] = (await templates.tags(t.template_id)).map((x) => tagView(x, withDefinition));
    ok(ctx, out, 'Templates and tags retrieved successfully.');
  });

  router.get('/v3/pods/templates/:template_id', async (ctx) => {
    const { rec } = await loadTemplateFor(templates, who(ctx), templateId(ctx), 'READ');
    ok(ctx, templateView(rec), 'Template retrieved successfully.');
  });

  router.put('/v3/pods/templates/:template_id', async (ctx) => {
    await loadTemplateFor(templates, who(ctx), templateId(ctx), 'USER');
    const body = validate(UpdateTemplate, await readJson(ctx, config.maxBodyBytes));
    const rec = await templates.update(templateId(ctx), body);
    if (!rec) throw notFound(`template "${templateId(ctx)}" was not found`);
    ok(ctx, templateView(rec), 'Template updated successfully.');
  });

  router.delete('/v3/pods/templates/:template_id', async (ctx) => {
    await loadTemplateFor(templates, who(ctx), templateId(ctx), 'ADMIN');
    await templates.remove(templateId(ctx));
    ok(ctx, `Template ${templateId(ctx)} deleted.`, 'Template deleted successfully.');
  });

  router.get('/v3/pods/templates/:template_id/tags', async (ctx) => {
    await loadTemplateFor(templates, who(ctx), templateId(ctx), 'READ');
    const tags = await templates.tags(templateId(ctx));
    ok(ctx, tags.map((t) => tagView(t, queryBool(ctx.query.full, 'full', true))), 'Template tags retrieved successfully.');
  });

  router.post('/v3/pods/templates/:template_id/tags', async (ctx) => {
    const id = who(ctx);
    await loadTemplateFor(templates, id, templateId(ctx), 'USER');
    const body = validate(NewTemplateTag, await readJson(ctx, config.maxBodyBytes));
    await checkBase(body.pod_definition, id, 'pod_definition.template');
    const tag = await templates.addTag(templateId(ctx), body, id.username, { bySiteAdmin: id.site });
    ok(ctx, tagView(tag), 'Template tag added successfully.');
  });

  router.get('/v3/pods/templates/:template_id/tags/:tag_id', async (ctx) => {
    await loadTemplateFor(templates, who(ctx), templateId(ctx), 'READ');
    const tagId = ctx.params.tag_id!;
    const [tag, stamp] = tagId.split('@') as [string, string | undefined];
    if (!TagName.safeParse(tag).success) throw badRequest(`tag_id: "${tagId}" is not a tag or tag@YYYY-MM-DD-HH:MM:SS`);
    const matches = (await templates.tags(templateId(ctx))).filter((t) => t.tag === tag && (!stamp || t.tag_timestamp === `${tag}@${stamp}`));
    if (!matches.length) throw notFound(`template "${templateId(ctx)}" has no tag "${tagId}"`);
    ok(ctx, matches.map((t) => tagView(t)), 'Template tag retrieved successfully.');
  });

  router.get('/v3/pods/templates/:template_id/permissions', async (ctx) => {
    const { rec, perms } = await loadTemplateFor(templates, who(ctx), templateId(ctx), 'USER');
    ok(ctx, templatePermissionsView(rec, perms), 'Template permissions retrieved successfully.');
  });

  router.post('/v3/pods/templates/:template_id/permissions', async (ctx) => {
    const id = who(ctx);
    const { rec } = await loadTemplateFor(templates, id, templateId(ctx), 'ADMIN');
    const body = validate(SetTemplatePermission, await readJson(ctx, config.maxBodyBytes));
    if (body.user === 'SITE') {
      if (!id.site) throw forbidden('only site admins may share a template with every user of the site (SITE)');
      if (body.level !== 'READ') throw badRequest('level: SITE may only have READ');
      const next = await templates.update(rec.template_id, { site: true });
      if (!next) throw notFound(`template "${rec.template_id}" was not found`);
      ok(ctx, templatePermissionsView(next, await templates.perms(rec.template_id)), 'Template permissions updated successfully.');
      return;
    }
    if (body.user === 'TENANT' && body.level === 'ADMIN') throw badRequest('level: TENANT may have READ or USER; give ADMIN to users by name');
    if (!rec.tenant_id) throw badRequest(`user: template "${rec.template_id}" is built in and belongs to no tenant; share it with SITE, or add a template of your tenant`);
    const r = await templates.setPermission(rec.template_id, body.user, body.level);
    if (r === 'last-admin') throw badRequest(`level: ${body.user} is the template's last ADMIN; give another user ADMIN first`);
    if (r === 'gone') throw notFound(`template "${rec.template_id}" was not found`);
    const now = await templates.get(rec.template_id);
    ok(ctx, templatePermissionsView(now ?? rec, await templates.perms(rec.template_id)), 'Template permissions updated successfully.');
  });

  router.delete('/v3/pods/templates/:template_id/permissions/:user', async (ctx) => {
    const id = who(ctx);
    const user = ctx.params.user!;
    const { rec, perms } = await loadTemplateFor(templates, id, templateId(ctx), 'ADMIN');
    if (user === 'SITE') {
      if (!id.site) throw forbidden('only site admins may stop sharing a template with the whole site (SITE)');
      if (!rec.site) throw notFound(`template "${rec.template_id}" is not shared with SITE`);
      const next = await templates.update(rec.template_id, { site: false });
      ok(ctx, templatePermissionsView(next ?? rec, perms), 'Template permission deleted successfully.');
      return;
    }
    if (!perms[user]) throw notFound(`user "${user}" has no permission on template "${rec.template_id}"`);
    const r = await templates.setPermission(rec.template_id, user, null);
    if (r === 'last-admin') throw badRequest(`user: ${user} is the template's last ADMIN and cannot be removed`);
    if (r === 'gone') throw notFound(`template "${rec.template_id}" was not found`);
    ok(ctx, templatePermissionsView(rec, await templates.perms(rec.template_id)), 'Template permission deleted successfully.');
  });

  return router;
}
