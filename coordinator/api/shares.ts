import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, notFound, PodsError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { podMounts, ShareId } from '../../shared/mounts.js';
import type { Area } from '../../shared/storage.js';
import type { Scheduler } from '../scheduler.js';
import { checkRetention, nextRun } from '../snapshot-schedule.js';
import type { PodStore } from '../store/pods.js';
import type { ShareKind, ShareStore, SnapshotRecord, VolumeRecord } from '../store/shares.js';
import type { StorageClient } from '../storage.js';
import type { Identity } from './auth.js';
import { readJson, validate } from './body.js';
import { ok, okPage } from './envelope.js';
import { Quotas } from '../quotas.js';
import { receiveFile } from './multipart.js';
import { requireLevel } from './permissions.js';
import { SetPermission } from './pods.js';

// Volumes and snapshots, as the Tapis spec has them: records with READ/USER/ADMIN permissions,
// their files listed, read (a folder as a zip) and, for volumes, uploaded. The data is a
// directory on one host (coordinator/storage.ts talks to its agent).

const MB = 1024 * 1024;
const sizeLimit = z.number().int().min(1, 'size_limit: must be at least 1 (MB)').max(1024 * 1024, 'size_limit: must be at most 1048576 (MB)');
const description = z.string().max(255, 'description must be at most 255 characters');

export const NewVolume = z.strictObject({ volume_id: ShareId, description: description.default(''), size_limit: sizeLimit.default(1024) });
export const UpdateVolume = z.strictObject({ description: description.optional(), size_limit: sizeLimit.optional() });
export const NewSnapshot = z.strictObject({
  snapshot_id: ShareId,
  source_volume_id: ShareId,
  source_volume_path: z.string().max(1024).default(''),
  destination_path: z.string().max(1024).default(''),
  description: description.default(''),
  size_limit: sizeLimit.default(1024),
  cron: z.string().max(128).default(''),
  retention_policy: z.string().max(64).default(''),
});
export const UpdateSnapshot = z.strictObject({ description: description.optional(), size_limit: sizeLimit.optional(), cron: z.string().max(128).optional(), retention_policy: z.string().max(64).optional() });

export interface SharesDeps {
  config: CoordinatorConfig;
  log: Logger;
  volumes: ShareStore<'volume'>;
  snapshots: ShareStore<'snapshot'>;
  pods: PodStore;
  storage: StorageClient;
  /** Where a new volume goes: the open host with the most free CPU (pods that mount it run there). */
  scheduler: Pick<Scheduler, 'pick'>;
}

const who = (ctx: Context) => ctx.state.identity as Identity;
const param = (ctx: Context, name: string) => (ctx as Context & { params: Record<string, string> }).params[name] ?? '';

export function volumeView(v: VolumeRecord) {
  return {
    volume_id: v.volume_id,
    description: v.description,
    size_limit: v.size_limit,
    size: Math.ceil(v.size_bytes / MB),
    status: v.status,
    creation_ts: v.creation_ts,
    update_ts: v.update_ts,
  };
}

export function snapshotView(s: SnapshotRecord) {
  return {
    snapshot_id: s.snapshot_id,
    source_volume_id: s.source_volume_id,
    source_volume_path: s.source_volume_path,
    destination_path: s.destination_path,
    description: s.description,
    size_limit: s.size_limit,
    cron: s.cron,
    retention_policy: s.retention_policy,
    size: Math.ceil(s.size_bytes / MB),
    status: s.status,
    creation_ts: s.creation_ts,
    update_ts: s.update_ts,
  };
}

const areaOf = (kind: ShareKind, tenant: string, id: string): Area => ({ kind, tenant, id });

/** Take a snapshot's copy on its volume's host, and record the outcome. */
export async function takeSnapshot(deps: Pick<SharesDeps, 'snapshots' | 'storage' | 'log'>, snap: SnapshotRecord): Promise<SnapshotRecord | null> {
  const { snapshots, storage } = deps;
  try {
    const node = storage.reach(snap.node);
    await storage.copy(node, areaOf('volume', snap.tenant, snap.source_volume_id), snap.source_volume_path, areaOf('snapshot', snap.tenant, snap.snapshot_id), snap.destination_path);
    const used = await storage.usage(node, areaOf('snapshot', snap.tenant, snap.snapshot_id));
    return snapshots.update(snap.tenant, snap.snapshot_id, (cur) => ({ ...cur, status: 'AVAILABLE', message: '', size_bytes: used.bytes, update_ts: new Date().toISOString() }));
  } catch (err) {
    const e = err as PodsError;
    // Waiting for the host is not a failure: the copy is made when it is back.
    const waiting = e.code === 'UNAVAILABLE';
    deps.log.warn({ snapshot: snap.snapshot_id, err: e.message }, 'snapshot copy not made');
    await snapshots.update(snap.tenant, snap.snapshot_id, (cur) => ({ ...cur, status: waiting ? 'REQUESTED' : 'ERROR', message: e.message, update_ts: new Date().toISOString() }));
    // A half-made copy is removed (now, or when its host is back).
    if (!waiting && snap.node) await storage.deleteArea(snap.node, areaOf('snapshot', snap.tenant, snap.snapshot_id)).catch(() => undefined);
    throw err;
  }
}

export function sharesRouter(deps: SharesDeps): Router {
  const { config, volumes, snapshots, pods, storage } = deps;
  const quotas = new Quotas(config.quotas, deps);
  const router = new Router();
  const storeOf = (kind: ShareKind) => (kind === 'volume' ? volumes : snapshots) as ShareStore<ShareKind>;
  const noun = (kind: ShareKind) => (kind === 'volume' ? 'Volume' : 'Snapshot');

  /** A volume or snapshot of the caller's tenant, at the level asked; another tenant's or an unshared one is a 404. */
  async function load<K extends ShareKind>(kind: K, ctx: Context, need: 'READ' | 'USER' | 'ADMIN') {
    const id = who(ctx);
    const shareId = param(ctx, `${kind}_id`);
    const store = storeOf(kind);
    const rec = await store.get(id.tenant, shareId);
    const perms = rec ? await store.perms(id.tenant, shareId) : {};
    if (!rec || (!id.admin && !perms[id.username])) throw notFound(`${kind} "${shareId}" was not found`);
    requireLevel(id, perms, need, `${kind} "${shareId}"`);
    return rec as K extends 'volume' ? VolumeRecord : SnapshotRecord;
  }

  const permissionsView = (perms: Record<string, string>) => ({
    permissions: Object.entries(perms).sort(([a], [b]) => a.localeCompare(b)).map(([user, level]) => `${user}:${level}`),
  });

  for (const kind of ['volume', 'snapshot'] as const) {
    const base = `/v3/pods/${kind}s`;
    const store = storeOf(kind);
    const view = (r: VolumeRecord | SnapshotRecord) => (kind === 'volume' ? volumeView(r as VolumeRecord) : snapshotView(r as SnapshotRecord));

    router.get(base, async (ctx) => {
      const id = who(ctx);
      const out = [];
      for (const shareId of await store.ids(id.tenant)) {
        const rec = await store.get(id.tenant, shareId);
        if (rec && (id.admin || (await store.perms(id.tenant, shareId))[id.username])) out.push(view(rec));
      }
      okPage(ctx, out, `${noun(kind)}s retrieved successfully.`);
    });

    router.get(`${base}/:${kind}_id`, async (ctx) => {
      let rec = await load(kind, ctx, 'READ');
      // Measure the size now when its host answers quickly; the stored figure otherwise.
      if (rec.status === 'AVAILABLE') {
        try {
          const used = await storage.usage(storage.reach(rec.node), areaOf(kind, rec.tenant, param(ctx, `${kind}_id`)), 3000);
          if (used.bytes !== rec.size_bytes) rec = (await store.update(rec.tenant, param(ctx, `${kind}_id`), (cur) => ({ ...cur, size_bytes: used.bytes }))) ?? rec;
        } catch {
          /* host away: the last measured size */
        }
      }
      ok(ctx, view(rec), `${noun(kind)} retrieved successfully.`);
    });

    router.get(`${base}/:${kind}_id/list`, async (ctx) => {
      const rec = await load(kind, ctx, 'READ');
      const path = typeof ctx.query.path === 'string' ? ctx.query.path : '';
      const recursive = ctx.query.recursive === 'true';
      const listing = await storage.list(storage.reach(rec.node), areaOf(kind, rec.tenant, param(ctx, `${kind}_id`)), path, recursive);
      ok(ctx, listing.entries, listing.truncated ? `${noun(kind)} files listed (the first ${listing.entries.length} only).` : `${noun(kind)} files listed successfully.`);
    });

    router.get(`${base}/:${kind}_id/contents/{*path}`, async (ctx) => {
      const rec = await load(kind, ctx, 'READ');
      const path = param(ctx, 'path');
      if (!path.replace(/\//g, '')) throw badRequest('path: name a file or folder inside it (downloading the whole root is not allowed)');
      const node = storage.reach(rec.node);
      const area = areaOf(kind, rec.tenant, param(ctx, `${kind}_id`));
      const name = path.split('/').filter(Boolean).pop()!;
      if (ctx.query.zip === 'true') {
        const listing = await storage.list(node, area, path);
        const single = listing.entries.length === 1 && listing.entries[0]!.path === path.replace(/^\/+|\/+$/g, '') && listing.entries[0]!.type !== 'dir';
        if (!single) {
          ctx.body = await storage.zipDir(node, area, path);
          ctx.set('Content-Type', 'application/zip');
          ctx.set('Content-Disposition', `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, '_')}.zip"`);
          return;
        }
      }
      const file = await storage.readFile(node, area, path);
      ctx.body = file.stream;
      ctx.length = file.size;
      ctx.set('Content-Type', 'application/octet-stream');
      ctx.set('Content-Disposition', `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, '_')}"`);
    });

    router.put(`${base}/:${kind}_id`, async (ctx) => {
      const rec = await load(kind, ctx, 'USER');
      const body = validate(kind === 'volume' ? UpdateVolume : UpdateSnapshot, await readJson(ctx, config.maxBodyBytes)) as z.infer<typeof UpdateSnapshot>;
      if (body.cron) nextRun(body.cron, new Date()); // a bad expression is a 400 here
      if (body.retention_policy) checkRetention(body.retention_policy);
      const next = await store.update(rec.tenant, param(ctx, `${kind}_id`), (cur) => ({
        ...cur,
        ...Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)),
        update_ts: new Date().toISOString(),
      }));
      if (!next) throw notFound(`${kind} "${param(ctx, `${kind}_id`)}" was not found`);
      ok(ctx, view(next), `${noun(kind)} updated successfully.`);
    });

    router.delete(`${base}/:${kind}_id`, async (ctx) => {
      const rec = await load(kind, ctx, 'ADMIN');
      const shareId = param(ctx, `${kind}_id`);
      const users = [];
      for (const podId of await pods.listIds(rec.tenant)) {
        const pod = await pods.get(rec.tenant, podId);
        if (pod && !pod.desired.deleting && podMounts(pod.spec.volume_mounts).some((m) => m.kind === kind && m.sourceId === shareId)) users.push(podId);
      }
      if (users.length) throw new PodsError('CONFLICT', `${kind} "${shareId}" is mounted by pod${users.length > 1 ? 's' : ''} ${users.join(', ')}; change or delete ${users.length > 1 ? 'them' : 'it'} first`);
      await store.delete(rec.tenant, shareId);
      if (rec.node) await storage.deleteArea(rec.node, areaOf(kind, rec.tenant, shareId));
      ok(ctx, `${noun(kind)} ${shareId} deleted.`, `${noun(kind)} deleted successfully.`);
    });

    router.get(`${base}/:${kind}_id/permissions`, async (ctx) => {
      const rec = await load(kind, ctx, 'USER');
      ok(ctx, permissionsView(await store.perms(rec.tenant, param(ctx, `${kind}_id`))), `${noun(kind)} permissions retrieved successfully.`);
    });

    router.post(`${base}/:${kind}_id/permissions`, async (ctx) => {
      const rec = await load(kind, ctx, 'ADMIN');
      const body = validate(SetPermission, await readJson(ctx, config.maxBodyBytes));
      const r = await store.setPermission(rec.tenant, param(ctx, `${kind}_id`), body.user, body.level);
      if (r === 'last-admin') throw badRequest(`level: ${body.user} is the ${kind}'s last ADMIN; give another user ADMIN first`);
      if (r === 'gone') throw notFound(`${kind} "${param(ctx, `${kind}_id`)}" was not found`);
      ok(ctx, permissionsView(await store.perms(rec.tenant, param(ctx, `${kind}_id`))), `${noun(kind)} permission set successfully.`);
    });

    router.delete(`${base}/:${kind}_id/permissions/:user`, async (ctx) => {
      const rec = await load(kind, ctx, 'ADMIN');
      const user = param(ctx, 'user');
      if (!(await store.perms(rec.tenant, param(ctx, `${kind}_id`)))[user]) throw notFound(`user "${user}" has no permission on ${kind} "${param(ctx, `${kind}_id`)}"`);
      const r = await store.setPermission(rec.tenant, param(ctx, `${kind}_id`), user, null);
      if (r === 'last-admin') throw badRequest(`user: ${user} is the ${kind}'s last ADMIN and cannot be removed`);
      ok(ctx, permissionsView(await store.perms(rec.tenant, param(ctx, `${kind}_id`))), `${noun(kind)} permission deleted successfully.`);
    });
  }

  router.post('/v3/pods/volumes', async (ctx) => {
    const id = who(ctx);
    const body = validate(NewVolume, await readJson(ctx, config.maxBodyBytes));
    await quotas.check(id, id.username, { volumes: 1, volume_mb: body.size_limit });
    const now = new Date().toISOString();
    const rec: VolumeRecord = {
      volume_id: body.volume_id, tenant: id.tenant, owner: id.username, description: body.description, size_limit: body.size_limit,
      size_bytes: 0, status: 'REQUESTED', message: '', node: null, creation_ts: now, update_ts: now,
    };
    if (!(await volumes.create(id.tenant, body.volume_id, rec))) throw badRequest(`volume_id: a volume named "${body.volume_id}" already exists`);
    ok(ctx, volumeView((await placeVolume(deps, rec)) ?? rec), 'Volume created successfully.');
  });

  router.post('/v3/pods/volumes/:volume_id/upload/{*path}', async (ctx) => {
    const rec = await load('volume', ctx, 'USER');
    const path = param(ctx, 'path');
    if (!path.replace(/\//g, '')) throw badRequest('path: name the file to write inside the volume');
    const node = storage.reach(rec.node);
    const limit = rec.size_limit * MB;
    const upload = storage.upload(node);
    let sent = 0;
    try {
      await receiveFile(ctx, {
        maxBytes: config.maxUploadBytes,
        onChunk: async (data) => {
          sent += data.length;
          // Refuse early what could never fit; the host checks exactly when it commits.
          if (sent > limit) throw new PodsError('PAYLOAD_TOO_LARGE', `the file is larger than the volume's size_limit of ${rec.size_limit} MB; nothing was written`);
          await upload.chunk(data);
        },
      });
      const written = await upload.toArea(areaOf('volume', rec.tenant, rec.volume_id), path, limit);
      const used = await storage.usage(node, areaOf('volume', rec.tenant, rec.volume_id)).catch(() => null);
      if (used) await volumes.update(rec.tenant, rec.volume_id, (cur) => ({ ...cur, size_bytes: used.bytes }));
      ok(ctx, { path: written.path, bytes: written.bytes }, `File uploaded to volume ${rec.volume_id} at ${written.path}.`);
    } catch (err) {
      await upload.abort();
      throw err;
    }
  });

  router.post('/v3/pods/snapshots', async (ctx) => {
    const id = who(ctx);
    const body = validate(NewSnapshot, await readJson(ctx, config.maxBodyBytes));
    if (body.cron) {
      nextRun(body.cron, new Date());
      if (body.snapshot_id.length > 48) throw badRequest('snapshot_id: a scheduled snapshot\'s id may be at most 48 characters (its copies add a timestamp)');
    }
    if (body.retention_policy) checkRetention(body.retention_policy);
    const source = await volumes.get(id.tenant, body.source_volume_id);
    const perms = source ? await volumes.perms(id.tenant, body.source_volume_id) : {};
    if (!source || (!id.admin && !perms[id.username])) throw notFound(`source_volume_id: volume "${body.source_volume_id}" was not found`);
    requireLevel(id, perms, 'READ', `volume "${body.source_volume_id}"`);
    if (source.status !== 'AVAILABLE') throw new PodsError('CONFLICT', `source_volume_id: volume "${body.source_volume_id}" is ${source.status}, not AVAILABLE`);
    const now = new Date().toISOString();
    const rec: SnapshotRecord = {
      ...body, tenant: id.tenant, owner: id.username, size_bytes: 0, status: 'CREATING', message: '', node: source.node,
      creation_ts: now, update_ts: now, scheduled_by: null, last_run_ts: body.cron ? now : null,
    };
    if (!(await snapshots.create(id.tenant, body.snapshot_id, rec))) throw badRequest(`snapshot_id: a snapshot named "${body.snapshot_id}" already exists`);
    try {
      const done = await takeSnapshot(deps, rec);
      ok(ctx, snapshotView(done ?? rec), 'Snapshot created successfully.');
    } catch (err) {
      const e = err as PodsError;
      if (e.code === 'UNAVAILABLE') return ok(ctx, snapshotView((await snapshots.get(id.tenant, body.snapshot_id)) ?? rec), `Snapshot requested; the copy is made when host ${source.node} is back.`);
      // Bad input found on the host (a path that does not exist or leads out): nothing is kept.
      await snapshots.delete(id.tenant, body.snapshot_id);
      throw err;
    }
  });

  return router;
}

/** Give a new volume a host and make its directory there; it stays REQUESTED (and is retried) while no host is connected. */
export async function placeVolume(deps: Pick<SharesDeps, 'volumes' | 'storage' | 'scheduler' | 'log'>, rec: VolumeRecord): Promise<VolumeRecord | null> {
  const { volumes, storage, scheduler } = deps;
  let node = rec.node;
  if (!node) {
    const chosen = await scheduler.pick({ cpu_request: 0, mem_request: 0 });
    if ('reason' in chosen) {
      return volumes.update(rec.tenant, rec.volume_id, (cur) => ({ ...cur, message: `waiting for a host: ${chosen.reason}` }));
    }
    node = chosen.nodeId;
  }
  try {
    await storage.createArea(storage.reach(node), areaOf('volume', rec.tenant, rec.volume_id));
  } catch (err) {
    deps.log.warn({ volume: rec.volume_id, node, err: (err as Error).message }, 'volume not made yet');
    return volumes.update(rec.tenant, rec.volume_id, (cur) => ({ ...cur, node, message: (err as Error).message }));
  }
  return volumes.update(rec.tenant, rec.volume_id, (cur) => ({ ...cur, node, status: 'AVAILABLE', message: '', update_ts: new Date().toISOString() }));
}
