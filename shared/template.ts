import { z } from 'zod';
import { VolumeMounts } from './mounts.js';
import { NewPod, Networking, Resources } from './pod.js';

// Templates: declarative pod definitions, one file per template in templates/, each with
// tags (an image per tag and whatever else differs). Tag versions are kept: "id:tag" is the
// newest version of the tag, "id:tag@YYYY-MM-DD-HH:MM:SS" one exact version, and "id" is
// "id:latest", which the coordinator keeps equal to the newest tag of each built-in template.

/** Placeholders a template's environment, command or init may use; filled in per pod. */
export const PLACEHOLDERS = ['pod_id', 'user_username', 'user_password', 'service_password'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

const nonRootUser = z
  .string()
  .regex(/^[a-z0-9_-]+(:[a-z0-9_-]+)?$/, 'user must be name[:group] or uid[:gid]')
  .refine((u) => !/^(0|root)(:|$)/.test(u), 'templates may not run containers as root');

/** What a tag defines: the pod fields (as in NewPod, all optional) plus template-only ones. */
export const PodDefinition = z.strictObject({
  image: NewPod.shape.image.unwrap().optional(),
  template: z.string().max(128).optional(),
  description: NewPod.shape.description.unwrap().optional(),
  command: NewPod.shape.command,
  arguments: NewPod.shape.arguments,
  environment_variables: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(32_768)).optional(),
  volume_mounts: VolumeMounts.optional(),
  time_to_stop_default: z.number().int().optional(),
  time_to_stop_instance: z.number().int().nullable().optional(),
  networking: z.record(z.string().regex(/^[a-z][a-z0-9]{0,15}$/), Networking).optional(),
  resources: Resources.optional(),
  compute_queue: z.string().optional(),
  // Template-only: run as this (non-root) user instead of the host's default.
  user: nonRootUser.optional(),
  // Template-only: commands run inside the container once it is ready (e.g. create a database user).
  init: z.array(z.array(z.string()).min(1)).max(8).optional(),
  // Template-only: a command that exits 0 once the service is ready; default is a TCP connect.
  readiness: z.strictObject({ exec: z.array(z.string()).min(1) }).optional(),
  // Where the service keeps its data: a directory that belongs to the pod and outlives its containers.
  data_dir: NewPod.shape.data_dir,
});
export type PodDefinition = z.infer<typeof PodDefinition>;

export const TemplateId = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'template ids are lowercase letters, digits, - and _, starting with a letter');
export const TagName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'tags are letters, digits, . _ -');

/** The tag a reference without one means ("redis" is "redis:latest"), as in Tapis. */
export const LATEST = 'latest';

export const NewTemplate = z.strictObject({
  template_id: TemplateId,
  description: z.string().max(1024).default(''),
  metatags: z.array(z.string().max(64)).max(32).default([]),
  archive_message: z.string().max(1024).default(''),
});
export type NewTemplate = z.infer<typeof NewTemplate>;

export const UpdateTemplate = NewTemplate.omit({ template_id: true }).partial();

export const NewTemplateTag = z.strictObject({
  pod_definition: PodDefinition,
  commit_message: z.string().max(1024).default(''),
  tag: TagName.default(LATEST),
});
export type NewTemplateTag = z.infer<typeof NewTemplateTag>;

// A file's tags are listed oldest first; the coordinator installs `latest` as a copy of the last.
const FileTags = z
  .array(NewTemplateTag)
  .min(1)
  .superRefine((tags, ctx) => {
    for (const [i, t] of tags.entries()) {
      if (t.tag === LATEST) ctx.addIssue({ code: 'custom', path: [i, 'tag'], message: `"${LATEST}" is made from the newest (last) tag; give this tag a name of its own` });
      if (tags.findIndex((o) => o.tag === t.tag) !== i) ctx.addIssue({ code: 'custom', path: [i, 'tag'], message: `"${t.tag}" is listed twice` });
    }
  });

/** One file in templates/. */
export const TemplateFile = NewTemplate.extend({ tags: FileTags });
export type TemplateFile = z.infer<typeof TemplateFile>;

/**
 * One file in a site's local templates directory (PODS_TEMPLATES_LOCAL_DIR): more tags for a
 * built-in template, newer than its own, so `latest` becomes the last of them.
 */
export const LocalTagsFile = z.strictObject({ template_id: TemplateId, tags: FileTags });
export type LocalTagsFile = z.infer<typeof LocalTagsFile>;

export interface TemplateRef {
  id: string;
  tag: string;
  timestamp: string | null;
}

const REF = /^([a-z][a-z0-9_-]{0,63})(?::([A-Za-z0-9][A-Za-z0-9._-]{0,63}))?(?:@(\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d))?$/;

/** "id", "id:tag" or "id:tag@YYYY-MM-DD-HH:MM:SS"; null when it is none of these. */
export function parseTemplateRef(ref: string): TemplateRef | null {
  const m = REF.exec(ref);
  if (!m) return null;
  return { id: m[1]!, tag: m[2] ?? LATEST, timestamp: m[3] ?? null };
}

/** The timestamp format of tag versions: YYYY-MM-DD-HH:MM:SS (UTC). */
export function tagTimestamp(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', '-');
}

/** Fill {{placeholder}}s; unknown names are left as they are. */
export function render(text: string, values: Record<Placeholder, string>): string {
  return text.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (all, name: string) => (Object.hasOwn(values, name) ? values[name as Placeholder] : all));
}
