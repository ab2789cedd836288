import { z } from 'zod';
import { Announcements, type Read } from './announcements.js';
import { Keys } from './keys.js';
import type { Redis } from './redis.js';

export const TenantRecord = z.object({
  tenant_id: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/),
  base_url: z.string().regex(/^https?:\/\/[^/]+$/),
  description: z.string().default(''),
  created_by: z.string().default(''),
});
export type TenantRecord = z.infer<typeof TenantRecord>;

/** The host:port a base URL is reached at: what the request's Host header must say. */
export function hostOf(baseUrl: string): string {
  const u = new URL(baseUrl);
  return u.host;
}

/**
 * How long every tenant read stays the answer for a Host no tenant has, while additions are
 * announced to this process: a safety net only, for an announcement lost in Redis.
 */
const ALL_KNOWN_MS = 5_000;

/**
 * Tenants: the primary one from config, others added by site admins. Each has its own
 * base URL; a request belongs to the tenant whose base URL host is its Host header, and to
 * the primary tenant when none is.
 */
export class TenantStore {
  private readonly keys: Keys;
  private readonly primaryHost: string;
  /** Added tenants by host. A tenant is never changed or removed once added, so a hit needs no read. */
  private readonly byHost = new Map<string, TenantRecord>();
  /** Tenants added anywhere, as announced (see watchAdded). */
  private readonly additions: Announcements;
  /**
   * When byHost last held every tenant, and the count of additions then: while none was added
   * since, a Host that no tenant has is the primary tenant's without a read, however many such hosts come.
   */
  private allKnown: Read | null = null;
  /** The read of every tenant under way, and the count of additions when it began. */
  private reading: { additions: number; done: Promise<void> } | null = null;

  constructor(private readonly redis: Redis, prefix: string, private readonly primary: TenantRecord) {
    this.keys = new Keys(prefix);
    this.primaryHost = hostOf(primary.base_url).toLowerCase();
    this.additions = new Announcements(redis, this.keys.tenantAdded());
  }

  get primaryId(): string {
    return this.primary.tenant_id;
  }

  async list(): Promise<TenantRecord[]> {
    const h = await this.redis.hGetAll(this.keys.tenants());
    const others = Object.values(h).flatMap((raw) => {
      const p = TenantRecord.safeParse(JSON.parse(raw));
      return p.success && p.data.tenant_id !== this.primary.tenant_id ? [p.data] : [];
    });
    return [this.primary, ...others.sort((a, b) => a.tenant_id.localeCompare(b.tenant_id))];
  }

  async get(id: string): Promise<TenantRecord | null> {
    return (await this.list()).find((t) => t.tenant_id === id) ?? null;
  }

  /** The tenant of a Host header if this coordinator can tell without a Redis read. */
  known(host: string | undefined): TenantRecord | undefined {
    const h = (host ?? '').toLowerCase();
    if (h === this.primaryHost) return this.primary;
    const t = this.byHost.get(h);
    if (t) return t;
    return this.additions.holds(this.allKnown, ALL_KNOWN_MS) ? this.primary : undefined;
  }

  /** The tenant a request is for, by its Host header; the primary tenant when none matches. */
  async forHost(host: string | undefined): Promise<TenantRecord> {
    const known = this.known(host);
    if (known) return known;
    // Perhaps added since (through another coordinator or the CLI): read them all again, once
    // for every request that asks meanwhile.
    if (this.reading?.additions !== this.additions.count) {
      const reading = { additions: this.additions.count, done: this.readAll() };
      this.reading = reading;
      reading.done
        .finally(() => {
          if (this.reading === reading) this.reading = null;
        })
        .catch(() => undefined); // the callers below get the error
    }
    await this.reading!.done;
    return this.byHost.get((host ?? '').toLowerCase()) ?? this.primary;
  }

  private async readAll(): Promise<void> {
    const before = this.additions.count;
    for (const t of await this.list()) {
      const th = hostOf(t.base_url).toLowerCase();
      if (th !== this.primaryHost && !this.byHost.has(th)) this.byHost.set(th, t);
    }
    // Only a read that began after the last addition anyone announced holds every tenant.
    this.allKnown = this.additions.readAt(before) ?? this.allKnown;
  }

  /** false when the id or the base URL is taken. */
  async add(rec: TenantRecord): Promise<'added' | 'id-taken' | 'url-taken'> {
    const all = await this.list();
    if (all.some((t) => t.tenant_id === rec.tenant_id)) return 'id-taken';
    if (all.some((t) => hostOf(t.base_url) === hostOf(rec.base_url))) return 'url-taken';
    if ((await this.redis.hSetNX(this.keys.tenants(), rec.tenant_id, JSON.stringify(rec))) !== 1) return 'id-taken';
    await this.additions.announce(rec.tenant_id);
    return 'added';
  }

  /**
   * Be told of every tenant added through any coordinator or the CLI, until the returned stop
   * is called, so that a Host no tenant has needs no read. While the subscription is down
   * (Redis restarting) every such Host reads again.
   */
  watchAdded(): Promise<() => void> {
    return this.additions.watch();
  }
}
