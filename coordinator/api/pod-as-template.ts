import Router from '@koa/router';
import type { Context } from 'koa';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest } from '../../shared/errors.js';
import type { PodSpec } from '../../shared/pod.js';
import { formatIssues } from '../../shared/protocol.js';
import { LATEST, PodDefinition, TagName, TemplateId, type Placeholder } from '../../shared/template.js';
import { derive, MERGED_FIELDS, resolveTemplate } from '../derive.js';
import type { PodStore } from '../store/pods.js';
import type { TemplateStore } from '../store/templates.js';
import type { Identity } from './auth.js';
import { readJson, validate } from './body.js';
import { ok } from './envelope.js';
import { loadPodFor } from './permissions.js';
import { loadTemplateFor } from './template-access.js';
import { tagView } from './templates.js';

// Tapis `save_pod_as_template_tag`: a pod's own configuration saved as a new tag of a template.

export const NewTemplateTagFromPod = z.strictObject({
  template_id: TemplateId,
  commit_message: z.string().max(1024),
  tag: TagName.default(LATEST),
});

/** Environment variables whose names say they hold a secret. */
const SECRET_NAME = /_(PASSWORD|PASSWD|PASS|PWD|SECRET|SECRETS|TOKEN|APIKEY|CREDENTIAL|CREDENTIALS)_|_(API|PRIVATE|ACCESS|SECRET|AUTH)_KEY_/;
const PLACEHOLDER = /\{\{\s*[a-z_]+\s*\}\}/g;

/** Generated secrets shorter than this are not looked for in text (they would match by chance). */
const MIN_SECRET_LENGTH = 8;

/**
 * The pod's own fields as a tag's pod definition: what differs from what its template gives
 * (or from the defaults, for a pod without one), with its template as the tag's base. Generated
 * credentials found in the text become their placeholders, and the value of every environment
 * variable named like a secret becomes {{user_password}}, so that each pod made from the tag gets
 * its own; `replaced` names the variables that were changed.
 */
export function podAsDefinition(
  spec: PodSpec,
  templateDefinition: PodDefinition | null,
  secrets: Record<Placeholder, string>,
): { definition: Record<string, unknown>; replaced: string[] } {
  const base = derive(templateDefinition, {}) as Record<string, unknown>;
  const own: Record<string, unknown> = {};
  for (const field of MERGED_FIELDS) {
    const value = spec[field] as unknown;
    if (value === undefined) continue;
    if (field === 'environment_variables' || field === 'resources') {
      // These merge key by key over the template's: keep only the keys that differ.
      const mine = Object.fromEntries(Object.entries(value as object).filter(([k, v]) => !isDeepStrictEqual(v, (base[field] as Record<string, unknown>)[k])));
      if (Object.keys(mine).length) own[field] = mine;
    } else if (!isDeepStrictEqual(value, base[field])) {
      own[field] = value;
    }
  }
  if (spec.template) own.template = spec.template;

  const known = (['user_password', 'service_password'] as const).filter((p) => secrets[p].length >= MIN_SECRET_LENGTH);
  const hide = (text: string) => known.reduce((t, p) => t.split(secrets[p]).join(`{{${p}}}`), text);
  const replaced: string[] = [];
  if (own.environment_variables) {
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(own.environment_variables as Record<string, string>)) {
      const hidden = hide(value);
      const secretName = SECRET_NAME.test(`_${name.toUpperCase()}_`) && hidden.replace(PLACEHOLDER, '') !== '';
      env[name] = secretName ? '{{user_password}}' : hidden;
      if (env[name] !== value) replaced.push(name);
    }
    own.environment_variables = env;
  }
  for (const field of ['command', 'arguments'] as const) {
    if (Array.isArray(own[field])) own[field] = (own[field] as string[]).map(hide);
  }
  return { definition: own, replaced };
}

export interface PodAsTemplateDeps {
  config: CoordinatorConfig;
  pods: PodStore;
  templates: TemplateStore;
}

const who = (ctx: Context) => ctx.state.identity as Identity;

export function podAsTemplateRouter(deps: PodAsTemplateDeps): Router {
  const { config, pods, templates } = deps;
  const router = new Router();

  // Needs READ on the pod (its definition is what READ already shows) and USER on the template.
  router.post('/v3/pods/:pod_id/save_pod_as_template_tag', async (ctx) => {
    const id = who(ctx);
    const pod = await loadPodFor(pods, id, ctx.params.pod_id!, 'READ');
    const body = validate(NewTemplateTagFromPod, await readJson(ctx, config.maxBodyBytes));
    await loadTemplateFor(templates, id, body.template_id, 'USER');
    const { spec } = pod;
    // What the pod's template gave it, from the exact version it was made from.
    let templateDefinition: PodDefinition | null = null;
    if (spec.template) {
      templateDefinition = await resolveTemplate(templates, spec.template_version ?? spec.template).then((r) => r.definition, () => null);
      if (!templateDefinition) throw badRequest(`pod_id: the template pod "${spec.pod_id}" was made from (${spec.template}) is gone, so its own fields cannot be told apart`);
    }
    const { definition, replaced } = podAsDefinition(spec, templateDefinition, await pods.secrets(id.tenant, spec.pod_id));
    const parsed = PodDefinition.safeParse(definition);
    if (!parsed.success) throw badRequest(`pod_id: pod "${spec.pod_id}" does not make a valid tag: ${formatIssues(parsed.error)}`);
    const tag = await templates.addTag(body.template_id, { pod_definition: parsed.data, commit_message: body.commit_message, tag: body.tag }, id.username, { bySiteAdmin: id.site });
    await pods.action(id.tenant, spec.pod_id, `${id.username} saved the pod as template tag ${body.template_id}:${tag.tag_timestamp}`);
    const note = replaced.length ? `; secrets replaced by placeholders in: ${replaced.join(', ')}` : '';
    ok(ctx, tagView(tag), `Template tag added successfully${note}.`);
  });

  return router;
}
