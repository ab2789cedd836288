import { badRequest } from '../shared/errors.js';
import { accessOf, withResourceDefaults, type NewPod, type PodSpec } from '../shared/pod.js';
import { parseTemplateRef, type PodDefinition } from '../shared/template.js';
import type { TemplateRecord, TemplateStore } from './store/templates.js';

/** Fields of a create request that a template may also set; the user's own always win. */
export const MERGED_FIELDS = [
  'image', 'description', 'command', 'arguments', 'environment_variables', 'volume_mounts',
  'time_to_stop_default', 'time_to_stop_instance', 'networking', 'resources', 'compute_queue', 'data_dir',
] as const;

export type UserFields = Partial<Pick<NewPod, (typeof MERGED_FIELDS)[number]>>;

/** The fields the user really sent (not zod's defaults), from the raw body and the parsed one. */
export function userFields(raw: object, parsed: NewPod): UserFields {
  const out: Record<string, unknown> = {};
  for (const f of MERGED_FIELDS) if (Object.hasOwn(raw, f) && parsed[f] !== undefined) out[f] = parsed[f];
  return out as UserFields;
}

export interface Resolved {
  definition: PodDefinition;
  version: string;
  /** The image comes from a tag a site admin added: it is used without the allow-list. */
  imageTrusted: boolean;
}

export interface ResolveOptions {
  /** Throws unless the caller may use this template (each level of a tag's bases is checked). */
  canUse?: (rec: TemplateRecord) => Promise<void>;
  /** The request field named in errors. */
  field?: string;
  depth?: number;
}

/** Resolve "id[:tag][@timestamp]" ("id" is "id:latest"), following a tag's own `template` base up to 3 levels. */
export async function resolveTemplate(templates: TemplateStore, refText: string, opts: ResolveOptions = {}): Promise<Resolved> {
  const field = opts.field ?? 'template';
  const depth = opts.depth ?? 0;
  const ref = parseTemplateRef(refText);
  if (!ref) throw badRequest(`${field}: "${refText}" is not of the form id, id:tag or id:tag@YYYY-MM-DD-HH:MM:SS`);
  const rec = await templates.get(ref.id);
  if (!rec) throw badRequest(`${field}: template "${ref.id}" does not exist; see GET /v3/pods/templates`);
  await opts.canUse?.(rec);
  const tag = await templates.resolve(ref);
  if (!tag) {
    const names = [...new Set((await templates.tags(ref.id)).map((t) => t.tag))];
    throw badRequest(`${field}: template "${ref.id}" has no tag "${ref.tag}${ref.timestamp ? `@${ref.timestamp}` : ''}"; its tags: ${names.join(', ') || 'none'}`);
  }
  const own = tag.pod_definition;
  const version = `${ref.id}:${tag.tag_timestamp}`;
  if (!own.template) return { definition: own, version, imageTrusted: tag.by_site_admin };
  if (depth >= 2) throw badRequest(`${field}: "${refText}" is based on templates nested too deeply`);
  const base = await resolveTemplate(templates, own.template, { ...opts, depth: depth + 1 });
  return { definition: overlay(base.definition, own), version, imageTrusted: own.image !== undefined ? tag.by_site_admin : base.imageTrusted };
}

/** `top` over `bottom`, field by field; environment and resources merge key by key. */
function overlay(bottom: PodDefinition, top: PodDefinition): PodDefinition {
  const out: Record<string, unknown> = { ...bottom };
  for (const [k, v] of Object.entries(top)) if (v !== undefined) out[k] = v;
  out.environment_variables = { ...bottom.environment_variables, ...top.environment_variables };
  out.resources = { ...bottom.resources, ...top.resources };
  delete out.template;
  return out as PodDefinition;
}

/** The spec fields of a pod: the template's definition (if any) with the user's fields over it. */
export function derive(def: PodDefinition | null, user: UserFields): Omit<PodSpec, 'pod_id' | 'tenant' | 'owner' | 'template' | 'creation_ts' | 'update_ts' | 'template_version' | 'user_fields'> {
  const merged = overlay(def ?? {}, user as PodDefinition);
  const networking = merged.networking ?? { default: { protocol: 'http', port: 5000 } };
  return {
    image: merged.image ?? '',
    description: merged.description ?? '',
    ...(merged.command ? { command: merged.command } : {}),
    ...(merged.arguments ? { arguments: merged.arguments } : {}),
    environment_variables: merged.environment_variables ?? {},
    volume_mounts: merged.volume_mounts ?? {},
    time_to_stop_default: merged.time_to_stop_default ?? 43200,
    time_to_stop_instance: merged.time_to_stop_instance ?? null,
    networking: Object.fromEntries(
      Object.entries(networking).map(([k, n]) => [k, { protocol: n.protocol ?? 'http', port: n.port ?? 5000, ...(n.dedicated_port ? { dedicated_port: true } : {}), ...accessOf(n) }]),
    ),
    resources: withResourceDefaults(merged.resources),
    compute_queue: merged.compute_queue ?? 'default',
    ...(def?.user ? { user: def.user } : {}),
    ...(def?.init ? { init: def.init } : {}),
    ...(def?.readiness ? { readiness: def.readiness } : {}),
    ...(merged.data_dir ? { data_dir: merged.data_dir } : {}),
  };
}
