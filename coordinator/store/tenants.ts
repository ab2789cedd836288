import { z } from 'zod';
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
 * Tenants: the primary one from config, others added by site admins. Each has its own
 * base URL; a request belongs to the tenant whose base URL host matches its Host header.
 */
export class TenantStore {
  private readonly keys: Keys;
  private readonly primaryHost: string;
  /** Added tenants by host. A tenant is never changed or removed once added, so a hit needs no read. */
  private readonly byHost = new Map<string, TenantRecord>();

  constructor(private readonly redis: Redis, prefix: string, private readonly primary: TenantRecord) {
    this.keys = new Keys(prefix);
    this.primaryHost = hostOf(primary.base_url).toLowerCase();
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

  /** The tenant of a Host header this coordinator knows already (no Redis read), if any. */
  known(host: string | undefined): TenantRecord | undefined {
    const h = (host ?? '').toLowerCase();
    return h === this.primaryHost ? this.primary : this.byHost.get(h);
  }

  /** The tenant a request is for, by its Host header; the primary tenant when none matches. */
  async forHost(host: string | undefined): Promise<TenantRecord> {
    const known = this.known(host);
    if (known) return known;
    const h = (host ?? '').toLowerCase();
    // Perhaps added since (through another coordinator): read them all again.
    for (const t of await this.list()) {
      const th = hostOf(t.base_url).toLowerCase();
      if (th !== this.primaryHost && !this.byHost.has(th)) this.byHost.set(th, t);
    }
    return this.byHost.get(h) ?? this.primary;
  }

  /** false when the id or the base URL is taken. */
  async add(rec: TenantRecord): Promise<'added' | 'id-taken' | 'url-taken'> {
    const all = await this.list();
    if (all.some((t) => t.tenant_id === rec.tenant_id)) return 'id-taken';
    if (all.some((t) => hostOf(t.base_url) === hostOf(rec.base_url))) return 'url-taken';
    return (await this.redis.hSetNX(this.keys.tenants(), rec.tenant_id, JSON.stringify(rec))) === 1 ? 'added' : 'id-taken';
  }
}
