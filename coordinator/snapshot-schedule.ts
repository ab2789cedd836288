import { Cron } from 'croner';
import { badRequest } from '../shared/errors.js';
import { placeVolume, takeSnapshot, type SharesDeps } from './api/shares.js';
import type { SnapshotRecord } from './store/shares.js';
import type { TenantStore } from './store/tenants.js';

// Tapis stores a snapshot's `cron` and `retention_policy` and never acts on them; here they
// run. A snapshot with a cron is a schedule: each time it comes due, a new snapshot of the
// same source is taken, named `{snapshot_id}{YYYYMMDDHHMMSS}`, and the schedule's retention
// policy prunes the oldest of its copies. The same loop retries volumes and snapshots that
// wait for a host.

/** The first time `cron` fires after `from`; a bad expression is a 400 naming the field. */
export function nextRun(cron: string, from: Date): Date | null {
  try {
    return new Cron(cron, { paused: true, mode: 'auto' }).nextRun(from);
  } catch (err) {
    throw badRequest(`cron: "${cron}" is not a cron expression (${(err as Error).message})`);
  }
}

export type Retention = { keep: number } | { maxAgeMs: number };

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "N" keeps the newest N copies; "Nm", "Nh", "Nd", "Nw" drop copies older than that. */
export function checkRetention(policy: string): Retention {
  const m = /^\s*(\d{1,6})\s*([mhdw]?)\s*$/.exec(policy);
  if (!m || Number(m[1]) < 1) throw badRequest(`retention_policy: "${policy}" must be a count of copies to keep (e.g. "7") or an age such as "12h", "7d" or "4w"`);
  return m[2] ? { maxAgeMs: Number(m[1]) * UNIT_MS[m[2]]! } : { keep: Number(m[1]) };
}

/** The copies a retention policy drops, oldest first. */
export function toPrune(copies: Array<{ id: string; created: number }>, policy: Retention, now: number): string[] {
  const newestFirst = [...copies].sort((a, b) => b.created - a.created);
  if ('keep' in policy) return newestFirst.slice(policy.keep).map((c) => c.id);
  return newestFirst.filter((c) => now - c.created > policy.maxAgeMs).map((c) => c.id);
}

const stamp = (d: Date) => d.toISOString().slice(0, 19).replace(/[-:T]/g, '');

export class SnapshotScheduler {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private lastRetry = 0;

  constructor(private readonly deps: SharesDeps & { tenants: TenantStore; intervalMs: number }) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.deps.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Retry what waits for a host now (a host came back). */
  retrySoon(): void {
    this.lastRetry = 0;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = new Date();
      for (const key of await this.deps.snapshots.scheduled()) {
        const [tenant, id] = key.split('/') as [string, string];
        const snap = await this.deps.snapshots.get(tenant, id);
        if (snap?.cron) await this.runIfDue(snap, now);
      }
      if (Date.now() - this.lastRetry > 10_000) {
        this.lastRetry = Date.now();
        await this.retryWaiting();
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'snapshot schedule pass failed');
    } finally {
      this.busy = false;
    }
  }

  private async runIfDue(schedule: SnapshotRecord, now: Date): Promise<void> {
    const { snapshots, log } = this.deps;
    const last = new Date(schedule.last_run_ts ?? schedule.creation_ts);
    const due = nextRun(schedule.cron, last);
    if (!due || due > now) return;
    // Claim this run (another coordinator may be looking at the same schedule).
    const claimed = await snapshots.update(schedule.tenant, schedule.snapshot_id, (cur) =>
      cur.last_run_ts === schedule.last_run_ts ? { ...cur, last_run_ts: now.toISOString() } : null,
    );
    if (claimed?.last_run_ts !== now.toISOString()) return;
    const id = `${schedule.snapshot_id}${stamp(now)}`;
    const copy: SnapshotRecord = {
      ...schedule,
      snapshot_id: id,
      description: `taken on schedule "${schedule.cron}" of snapshot ${schedule.snapshot_id}`,
      cron: '',
      retention_policy: '',
      scheduled_by: schedule.snapshot_id,
      last_run_ts: null,
      status: 'CREATING',
      message: '',
      size_bytes: 0,
      creation_ts: now.toISOString(),
      update_ts: now.toISOString(),
    };
    if (!(await snapshots.create(schedule.tenant, id, copy))) return;
    await takeSnapshot(this.deps, copy).catch((err) => log.warn({ schedule: schedule.snapshot_id, err: (err as Error).message }, 'scheduled snapshot not taken'));
    if (schedule.retention_policy) await this.prune(schedule, now);
  }

  private async prune(schedule: SnapshotRecord, now: Date): Promise<void> {
    const { snapshots, storage } = this.deps;
    const copies = [];
    for (const id of await snapshots.ids(schedule.tenant)) {
      if (!id.startsWith(schedule.snapshot_id) || id === schedule.snapshot_id) continue;
      const rec = await snapshots.get(schedule.tenant, id);
      if (rec?.scheduled_by === schedule.snapshot_id) copies.push({ id, created: Date.parse(rec.creation_ts), node: rec.node });
    }
    for (const id of toPrune(copies, checkRetention(schedule.retention_policy), now.getTime())) {
      const node = copies.find((c) => c.id === id)?.node;
      await snapshots.delete(schedule.tenant, id);
      if (node) await storage.deleteArea(node, { kind: 'snapshot', tenant: schedule.tenant, id });
    }
  }

  /** Volumes with no host yet, and snapshots whose copy waits for their host. */
  private async retryWaiting(): Promise<void> {
    const { volumes, snapshots, tenants } = this.deps;
    for (const t of await tenants.list()) {
      for (const id of await volumes.ids(t.tenant_id)) {
        const v = await volumes.get(t.tenant_id, id);
        if (v?.status === 'REQUESTED') await placeVolume(this.deps, v);
      }
      for (const id of await snapshots.ids(t.tenant_id)) {
        const s = await snapshots.get(t.tenant_id, id);
        if (s?.status === 'REQUESTED') await takeSnapshot(this.deps, s).catch(() => undefined);
      }
    }
  }
}
