import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../shared/log.js';
import { formatIssues } from '../shared/protocol.js';
import { TemplateFile } from '../shared/template.js';
import type { TemplateStore } from './store/templates.js';

/** templates/ at the root of the installed project (this file runs from dist/coordinator/). */
export const DEFAULT_TEMPLATES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../templates');

/** Read and validate every templates/*.json; a bad file is an error naming it and the field. */
export async function readTemplateFiles(dir: string): Promise<TemplateFile[]> {
  const out: TemplateFile[] = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path.join(dir, name), 'utf8'));
    } catch (err) {
      throw new Error(`templates/${name}: not valid JSON (${(err as Error).message})`);
    }
    const parsed = TemplateFile.safeParse(json);
    if (!parsed.success) throw new Error(`templates/${name}: ${formatIssues(parsed.error)}`);
    if (`${parsed.data.template_id}.json` !== name) throw new Error(`templates/${name}: template_id must match the file name`);
    out.push(parsed.data);
  }
  return out;
}

/**
 * Make sure the site has every built-in template and tag. A tag version is added only when
 * its definition differs from the newest version of that tag, so restarts add nothing.
 */
export async function installBuiltinTemplates(dir: string, store: TemplateStore, log: Logger): Promise<void> {
  for (const file of await readTemplateFiles(dir)) {
    const { tags, ...template } = file;
    if (await store.add(template, 'system')) log.info({ template: template.template_id }, 'built-in template added');
    const existing = await store.tags(template.template_id);
    for (const tag of tags) {
      const newest = existing.filter((t) => t.tag === tag.tag).at(-1);
      if (newest && isDeepStrictEqual(newest.pod_definition, tag.pod_definition)) continue;
      await store.addTag(template.template_id, tag, 'system');
      log.info({ template: template.template_id, tag: tag.tag }, 'built-in template tag added');
    }
  }
}
