import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { Logger } from '../shared/log.js';
import { formatIssues } from '../shared/protocol.js';
import { LATEST, LocalTagsFile, TemplateFile, type NewTemplateTag } from '../shared/template.js';
import type { TemplateStore } from './store/templates.js';

/** templates/ at the root of the installed project (this file runs from dist/coordinator/). */
export const DEFAULT_TEMPLATES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../templates');

/**
 * templates/local/: the tags of a site without registry access (every template's image built
 * here by ops/images/build-template-images.sh). Used only when PODS_TEMPLATES_LOCAL_DIR names it.
 */
export const LOCAL_TEMPLATES_DIR = path.join(DEFAULT_TEMPLATES_DIR, 'local');

/** Every NAME.json in dir, sorted, parsed with schema; a bad file is an error naming it and the field. */
async function readTemplateJson<T extends { template_id: string }>(dir: string, schema: z.ZodType<T>): Promise<Array<{ where: string; data: T }>> {
  const out = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
    const where = path.join(path.basename(dir), name);
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path.join(dir, name), 'utf8'));
    } catch (err) {
      throw new Error(`${where}: not valid JSON (${(err as Error).message})`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new Error(`${where}: ${formatIssues(parsed.error)}`);
    if (`${parsed.data.template_id}.json` !== name) throw new Error(`${where}: template_id must match the file name`);
    out.push({ where, data: parsed.data });
  }
  return out;
}

/** Read and validate every templates/*.json. */
export async function readTemplateFiles(dir: string): Promise<TemplateFile[]> {
  return (await readTemplateJson(dir, TemplateFile)).map(({ data }) => data);
}

/**
 * The built-in templates with a site's local tags (every NAME.json in localDir) after their own,
 * so the local tags are the newest. A local tag may not reuse a built-in tag's name: a site's
 * image never hides under the public image's tag.
 */
export async function withLocalTags(files: TemplateFile[], localDir: string): Promise<TemplateFile[]> {
  const out = files.map((f) => ({ ...f, tags: [...f.tags] }));
  for (const { where, data } of await readTemplateJson(localDir, LocalTagsFile)) {
    const file = out.find((f) => f.template_id === data.template_id);
    if (!file) throw new Error(`${where}: there is no built-in template "${data.template_id}" to add tags to`);
    for (const tag of data.tags) {
      if (file.tags.some((t) => t.tag === tag.tag)) throw new Error(`${where}: template "${data.template_id}" already has a tag "${tag.tag}"; give the local tag a name of its own`);
      file.tags.push(tag);
    }
  }
  return out;
}

/** A template's tags (oldest first) and `latest`: the newest one's definition, saying which tag it is. */
export function withLatest(tags: NewTemplateTag[]): NewTemplateTag[] {
  const newest = tags.at(-1)!;
  return [...tags, { tag: LATEST, commit_message: `${LATEST} is tag ${newest.tag}: ${newest.commit_message}`, pod_definition: newest.pod_definition }];
}

/**
 * Make sure the site has every built-in template and tag, with a site's local tags when
 * localDir is given, and `latest` equal to the newest tag. A tag version is added only when
 * its definition differs from the newest version of that tag, so restarts add nothing.
 */
export async function installBuiltinTemplates(dir: string, store: TemplateStore, log: Logger, localDir?: string): Promise<void> {
  const builtin = await readTemplateFiles(dir);
  const files = localDir ? await withLocalTags(builtin, localDir) : builtin;
  const latest: Record<string, string> = {};
  for (const file of files) {
    const { tags, ...template } = file;
    if (await store.add(template, 'system')) log.info({ template: template.template_id }, 'built-in template added');
    const existing = await store.tags(template.template_id);
    for (const tag of withLatest(tags)) {
      const newest = existing.filter((t) => t.tag === tag.tag).at(-1);
      if (newest && isDeepStrictEqual(newest.pod_definition, tag.pod_definition)) continue;
      await store.addTag(template.template_id, tag, 'system');
      log.info({ template: template.template_id, tag: tag.tag, image: tag.pod_definition.image }, 'built-in template tag added');
    }
    latest[template.template_id] = tags.at(-1)!.tag;
  }
  log.info({ latest, localDir }, 'built-in templates installed');
}
