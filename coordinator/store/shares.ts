import { z } from 'zod';
import { Keys } from './keys.js';
import { parseField, PermLevel } from './pods.js';
import { runScript, type Redis } from './redis.js';
import { CAS_SHARE, CREATE_SHARE, DELETE_SHARE, SET_PERMISSION } from './scripts.js';

// Volumes and snapshots: storage that outlives pods, each a directory on one host (or on a
// shared filesystem), with Tapis-style permissions. Their records are owned by the API; a
// node's directory is made, copied and removed through the agent (coordinator/storage.ts).

export const ShareStatus = z.enum(['REQUESTED', 'CREATING', 'AVAILABLE', 'ERROR']);
export type ShareStatus = z.infer<typeof ShareStatus>;

const Common = z.object({
  tenant: z.string(),
  owner: z.string(),
  description: z.string(),
  /** MB, as Tapis counts it. */
  size_limit: z.number().int(),
  /** Bytes used, as last measured on the host. */
  size_bytes: z.number().int().min(0).default(0),
  status: ShareStatus,
  /** Why the status is what it is (an error, or what it waits for). */
  message: z.string().default(''),
  /** The host whose data root holds it; null until one is chosen. */
  node: z.string().nullable(),
  creation_ts: z.string(),
  update_ts: z.string(),
});

export const VolumeRecord = Common.extend({ volume_id: z.string() });
export type VolumeRecord = z.infer<typeof VolumeRecord>;

export const SnapshotRecord = Common.extend({
  snapshot_id: z.string(),
  source_volume_id: z.string(),
  source_volume_path: z.string(),
  destination_path: z.string(),
  cron: z.string(),
  retention_policy: z.string(),
  /** A copy taken on schedule names the snapshot whose cron made it. */
  scheduled_by: z.string().nullable().default(null),
  /** When the schedule last fired (scheduled snapshots only). */
  last_run_ts: z.string().nullable().default(null),
});
export type SnapshotRecord = z.infer<typeof SnapshotRecord>;

export type ShareKind = 'volume' | 'snapshot';
type RecordOf<K extends ShareKind> = K extends 'volume' ? VolumeRecord : SnapshotRecord;

const SCHEMAS = { volume: VolumeRecord, snapshot: SnapshotRecord } as const;

/** One kind's records (volumes, or snapshots) in Redis. */
export class ShareStore<K extends ShareKind> {
  private readonly keys: Keys;
  constructor(private readonly redis: Redis, prefix: string, readonly kind: K) {
    this.keys = new Keys(prefix);
  }

  private parse(raw: string | null, key: string): RecordOf<K> | null {
    return parseField(SCHEMAS[this.kind] as unknown as z.ZodType<RecordOf<K>>, raw ?? undefined, key, `${this.kind} record`);
  }

  async get(tenant: string, id: string): Promise<RecordOf<K> | null> {
    const key = this.keys.share(this.kind, tenant, id);
    return this.parse(await this.redis.get(key), key);
  }

  async ids(tenant: string): Promise<string[]> {
    return (await this.redis.sMembers(this.keys.tenantShares(this.kind, tenant))).sort();
  }

  /** false when the id is taken. */
  async create(tenant: string, id: string, rec: RecordOf<K>): Promise<boolean> {
    const k = this.keys;
    const r = await runScript(this.redis, CREATE_SHARE, {
      keys: [k.share(this.kind, tenant, id), k.tenantShares(this.kind, tenant), k.sharePerms(this.kind, tenant, id)],
      arguments: [JSON.stringify(rec), id, rec.owner],
    });
    if (r === 1 && this.kind === 'snapshot' && (rec as SnapshotRecord).cron) await this.redis.sAdd(k.scheduledSnapshots(), `${tenant}/${id}`);
    return r === 1;
  }

  /** Read-modify-write with retries; `change` returns the new record or null for none. */
  async update(tenant: string, id: string, change: (cur: RecordOf<K>) => RecordOf<K> | null): Promise<RecordOf<K> | null> {
    const key = this.keys.share(this.kind, tenant, id);
    for (let attempt = 0; attempt < 20; attempt++) {
      const raw = await this.redis.get(key);
      const cur = this.parse(raw, key);
      if (!cur) return null;
      const next = change(cur);
      if (!next) return cur;
      const r = await runScript(this.redis, CAS_SHARE, { keys: [key], arguments: [raw!, JSON.stringify(next)] });
      if (r === -1) return null;
      if (r === 1) {
        if (this.kind === 'snapshot') {
          const scheduled = this.keys.scheduledSnapshots();
          if ((next as SnapshotRecord).cron) await this.redis.sAdd(scheduled, `${tenant}/${id}`);
          else await this.redis.sRem(scheduled, `${tenant}/${id}`);
        }
        return next;
      }
    }
    throw new Error(`${this.kind} ${tenant}/${id} is changing too fast to update`);
  }

  async delete(tenant: string, id: string): Promise<void> {
    const k = this.keys;
    await runScript(this.redis, DELETE_SHARE, {
      keys: [k.share(this.kind, tenant, id), k.tenantShares(this.kind, tenant), k.sharePerms(this.kind, tenant, id), k.scheduledSnapshots()],
      arguments: [id, `${tenant}/${id}`],
    });
  }

  async perms(tenant: string, id: string): Promise<Record<string, PermLevel>> {
    const h = await this.redis.hGetAll(this.keys.sharePerms(this.kind, tenant, id));
    return Object.fromEntries(Object.entries(h).filter(([, v]) => PermLevel.safeParse(v).success)) as Record<string, PermLevel>;
  }

  /** 'set' | 'last-admin' (would leave no ADMIN) | 'gone'. */
  async setPermission(tenant: string, id: string, user: string, level: PermLevel | null): Promise<'set' | 'last-admin' | 'gone'> {
    const k = this.keys;
    const r = await runScript(this.redis, SET_PERMISSION, { keys: [k.share(this.kind, tenant, id), k.sharePerms(this.kind, tenant, id)], arguments: [user, level ?? ''] });
    return r === 1 ? 'set' : r === 0 ? 'last-admin' : 'gone';
  }

  /** Every scheduled snapshot, as "tenant/id". */
  async scheduled(): Promise<string[]> {
    return this.redis.sMembers(this.keys.scheduledSnapshots());
  }
}
