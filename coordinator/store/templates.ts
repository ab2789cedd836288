import { z } from 'zod';
import { PodDefinition, tagTimestamp, type NewTemplate, type NewTemplateTag, type TemplateRef } from '../../shared/template.js';
import { Keys } from './keys.js';
import { PermLevel } from './pods.js';
import { runScript, type Redis } from './redis.js';
import { CREATE_TEMPLATE, SET_TEMPLATE_PERMISSION } from './scripts.js';

// Template ids are unique on the site, as in Tapis (one table for every tenant). A template
// belongs to the tenant it was made in: its permissions name users of that tenant, and other
// tenants do not see it, unless it is one of the site's (`site`), which every user may READ.

export const TemplateRecord = z.object({
  template_id: z.string(),
  description: z.string(),
  metatags: z.array(z.string()),
  archive_message: z.string(),
  creation_ts: z.string(),
  update_ts: z.string(),
  added_by: z.string(),
  /** The tenant whose users its permissions name; '' for the built-in templates. */
  tenant_id: z.string().default(''),
  /** One of the site's templates: every user of every tenant may READ it. Records from before templates had owners were all the site's. */
  site: z.boolean().default(true),
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
  /** Added by a site admin (or the system): its image is trusted without the allow-list. Older versions were all added so. */
  by_site_admin: z.boolean().default(true),
});
export type TagRecord = z.infer<typeof TagRecord>;

/** Who a new template belongs to; the default is a built-in template of the site. */
export interface TemplateOwner {
  tenant: string;
  site: boolean;
  /** The user given ADMIN on it, or null (built-in templates: site admins administer them). */
  admin: string | null;
}

const BUILTIN: TemplateOwner = { tenant: '', site: true, admin: null };

const parse = <T>(schema: z.ZodType<T>, raw: string): T | null => {
  try {
    const p = schema.safeParse(JSON.parse(raw));
    return p.success ? p.data : null;
  } catch {
    return null;
  }
};

/** Templates, their permissions and their tag versions (append-only, so old versions stay resolvable). */
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

  /** Add a template; null when its id is taken on the site. */
  async add(t: NewTemplate, by: string, owner: TemplateOwner = BUILTIN): Promise<TemplateRecord | null> {
    const now = new Date().toISOString();
    const rec: TemplateRecord = { ...t, creation_ts: now, update_ts: now, added_by: by, tenant_id: owner.tenant, site: owner.site };
    const k = this.keys;
    const r = await runScript(this.redis, CREATE_TEMPLATE, {
      keys: [k.templates(), k.templatePerms(t.template_id), k.templateTags(t.template_id)],
      arguments: [t.template_id, JSON.stringify(rec), owner.admin ?? ''],
    });
    return r === 1 ? rec : null;
  }

  async update(id: string, change: Partial<Pick<TemplateRecord, 'description' | 'metatags' | 'archive_message' | 'site'>>): Promise<TemplateRecord | null> {
    const cur = await this.get(id);
    if (!cur) return null;
    const next = { ...cur, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)), update_ts: new Date().toISOString() };
    await this.redis.hSet(this.keys.templates(), id, JSON.stringify(next));
    return next;
  }

  async remove(id: string): Promise<boolean> {
    const k = this.keys;
    const [n] = (await this.redis.multi().hDel(k.templates(), id).del(k.templateTags(id)).del(k.templatePerms(id)).exec()) as unknown as [number];
    return n === 1;
  }

  /** Levels by user of the template's tenant, and TENANT for all of them. */
  async perms(id: string): Promise<Record<string, PermLevel>> {
    const h = await this.redis.hGetAll(this.keys.templatePerms(id));
    return Object.fromEntries(Object.entries(h).filter(([, v]) => PermLevel.safeParse(v).success)) as Record<string, PermLevel>;
  }

  /** 'set' | 'last-admin' (would leave no ADMIN) | 'gone'. */
  async setPermission(id: string, user: string, level: PermLevel | null): Promise<'set' | 'last-admin' | 'gone'> {
    const r = await runScript(this.redis, SET_TEMPLATE_PERMISSION, { keys: [this.keys.templates(), this.keys.templatePerms(id)], arguments: [id, user, level ?? ''] });
    return r === 1 ? 'set' : r === 0 ? 'last-admin' : 'gone';
  }

  async tags(id: string): Promise<TagRecord[]> {
    const raw = await this.redis.lRange(this.keys.templateTags(id), 0, -1);
    return raw.flatMap((r) => parse(TagRecord, r) ?? []);
  }

  /** Add a version of a tag. Two versions in the same second get distinct timestamps. */
  async addTag(id: string, t: NewTemplateTag, by: string, opts: { bySiteAdmin?: boolean; now?: Date } = {}): Promise<TagRecord> {
    const existing = new Set((await this.tags(id)).map((x) => x.tag_timestamp));
    let when = opts.now ?? new Date();
    let stamp = `${t.tag}@${tagTimestamp(when)}`;
    while (existing.has(stamp)) {
      when = new Date(when.getTime() + 1000);
      stamp = `${t.tag}@${tagTimestamp(when)}`;
    }
    const rec: TagRecord = {
      template_id: id, pod_definition: t.pod_definition, commit_message: t.commit_message, tag: t.tag, tag_timestamp: stamp, added_by: by,
      creation_ts: when.toISOString(), by_site_admin: opts.bySiteAdmin ?? true,
    };
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
