import { z } from 'zod';
import { PodDefinition, tagTimestamp, type NewTemplate, type NewTemplateTag, type TemplateRef } from '../../shared/template.js';
import { Keys } from './keys.js';
import type { Redis } from './redis.js';

export const TemplateRecord = z.object({
  template_id: z.string(),
  description: z.string(),
  metatags: z.array(z.string()),
  archive_message: z.string(),
  creation_ts: z.string(),
  update_ts: z.string(),
  added_by: z.string(),
});
export type TemplateRecord = z.infer<typeof TemplateRecord>;

export const TagRecord = z.object({
  template_id: z.string(),
  pod_definition: PodDefinition,
  commit_message: z.string(),
  tag: z.string(),
  tag_timestamp: z.string(),
  added_by: z.string(),
  creation_ts: z.string(),
});
export type TagRecord = z.infer<typeof TagRecord>;

const parse = <T>(schema: z.ZodType<T>, raw: string): T | null => {
  try {
    const p = schema.safeParse(JSON.parse(raw));
    return p.success ? p.data : null;
  } catch {
    return null;
  }
};

/** Templates and their tag versions (append-only, so old versions stay resolvable). */
export class TemplateStore {
  private readonly keys: Keys;
  constructor(private readonly redis: Redis, prefix: string) {
    this.keys = new Keys(prefix);
  }

  async list(): Promise<TemplateRecord[]> {
    const h = await this.redis.hGetAll(this.keys.templates());
    return Object.values(h).flatMap((raw) => parse(TemplateRecord, raw) ?? []).sort((a, b) => a.template_id.localeCompare(b.template_id));
  }

  async get(id: string): Promise<TemplateRecord | null> {
    const raw = await this.redis.hGet(this.keys.templates(), id);
    return raw ? parse(TemplateRecord, raw) : null;
  }

  async add(t: NewTemplate, by: string): Promise<TemplateRecord | null> {
    const now = new Date().toISOString();
    const rec: TemplateRecord = { ...t, creation_ts: now, update_ts: now, added_by: by };
    return (await this.redis.hSetNX(this.keys.templates(), t.template_id, JSON.stringify(rec))) ? rec : null;
  }

  async update(id: string, change: Partial<Pick<TemplateRecord, 'description' | 'metatags' | 'archive_message'>>): Promise<TemplateRecord | null> {
    const cur = await this.get(id);
    if (!cur) return null;
    const next = { ...cur, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)), update_ts: new Date().toISOString() };
    await this.redis.hSet(this.keys.templates(), id, JSON.stringify(next));
    return next;
  }

  async remove(id: string): Promise<boolean> {
    const [n] = (await this.redis.multi().hDel(this.keys.templates(), id).del(this.keys.templateTags(id)).exec()) as unknown as [number];
    return n === 1;
  }

  async tags(id: string): Promise<TagRecord[]> {
    const raw = await this.redis.lRange(this.keys.templateTags(id), 0, -1);
    return raw.flatMap((r) => parse(TagRecord, r) ?? []);
  }

  /** Add a version of a tag. Two versions in the same second get distinct timestamps. */
  async addTag(id: string, t: NewTemplateTag, by: string, now = new Date()): Promise<TagRecord> {
    const existing = new Set((await this.tags(id)).map((x) => x.tag_timestamp));
    let when = now;
    let stamp = `${t.tag}@${tagTimestamp(when)}`;
    while (existing.has(stamp)) {
      when = new Date(when.getTime() + 1000);
      stamp = `${t.tag}@${tagTimestamp(when)}`;
    }
    const rec: TagRecord = { template_id: id, pod_definition: t.pod_definition, commit_message: t.commit_message, tag: t.tag, tag_timestamp: stamp, added_by: by, creation_ts: when.toISOString() };
    await this.redis.rPush(this.keys.templateTags(id), JSON.stringify(rec));
    return rec;
  }

  /** The newest version of ref.tag, or the exact version when a timestamp is given. */
  async resolve(ref: TemplateRef): Promise<TagRecord | null> {
    const versions = (await this.tags(ref.id)).filter((t) => t.tag === ref.tag);
    if (ref.timestamp) return versions.find((t) => t.tag_timestamp === `${ref.tag}@${ref.timestamp}`) ?? null;
    return versions.at(-1) ?? null;
  }
}
