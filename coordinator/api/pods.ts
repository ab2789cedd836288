import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, PodsError } from '../../shared/errors.js';
import {
  checkResources,
  checkTimeToStop,
  NewPod,
  UpdatePod,
  withResourceDefaults,
  type Desired,
  type PodSpec,
} from '../../shared/pod.js';
import { derive, resolveTemplate, userFields } from '../derive.js';
import type { ImageStore } from '../store/images.js';
import type { TemplateStore } from '../store/templates.js';
import { newUid, PermLevel, type PodRecord, type PodStore } from '../store/pods.js';
import { Username } from '../store/users.js';
import { checkMountPaths, podMounts } from '../../shared/mounts.js';
import { podDataArea } from '../../shared/storage.js';
import type { ShareStore, VolumeRecord } from '../store/shares.js';
import type { StorageClient } from '../storage.js';
import { PodViewCache } from '../pod-view-cache.js';
import { podResponse } from '../view.js';
import type { Identity } from './auth.js';
import { readJson, validate } from './body.js';
import { ok, okJson, okPage, okPageJson } from './envelope.js';
import { streamEvents, streamLogs, wantsStream } from './log-stream.js';
import { podUsage, Quotas } from '../quotas.js';
import { hasLevel, loadPodFor, requireLevel } from './permissions.js';
import { requireTemplateUse } from './template-access.js';

export interface PodsDeps {
  config: CoordinatorConfig;
  pods: PodStore;
  images: ImageStore;
  templates: TemplateStore;
  volumes: ShareStore<'volume'>;
  snapshots: ShareStore<'snapshot'>;
  storage: StorageClient;
  /** Ask the reconciler to look at a pod now; `made`: the record a create just stored (not read back). */
  kick: (tenant: string, podId: string, made?: PodRecord) => void;
  nodeConnected: (nodeId: string) => boolean;
}

const who = (ctx: Context) => ctx.state.identity as Identity;

export const SetPermission = z.strictObject({ user: Username, level: PermLevel });

/** How long a create waits for a deleted pod of the same id to finish its teardown. */
const TOMBSTONE_WAIT_MS = 5_000;

/** When a new instance starting now should be turned off, or null for never. */
function stopTs(spec: PodSpec, now: Date): string | null {
  const secs = spec.time_to_stop_instance ?? spec.time_to_stop_default;
  return secs === -1 ? null : new Date(now.getTime() + secs * 1000).toISOString();
}

export function startedInstance(desired: Desired, spec: PodSpec, now: Date): Desired {
  return {
    ...desired,
    status_requested: 'ON',
    generation: desired.generation + 1,
    start_instance_ts: now.toISOString(),
    time_to_stop_ts: stopTs(spec, now),
  };
}

/** Create a pod for the caller from a request body, as POST /v3/pods does. */
export type CreatePod = (id: Identity, raw: unknown) => Promise<PodRecord>;

export function podsRouter(deps: PodsDeps): Router {
  return podsApi(deps).router;
}

/** The pods routes, and pod creation for other routes that make pods (the Jupyter helpers). */
export function podsApi(deps: PodsDeps): { router: Router; createPod: CreatePod } {
  const quotas = new Quotas(deps.config.quotas, deps);
  const { config, pods, images, templates, kick } = deps;
  const router = new Router();
  const views = new PodViewCache((rec, reachable) => podResponse(rec, config.baseDomain, () => reachable, config.publicTlsPort), deps.nodeConnected);
  /** Answer with one pod's view. */
  const okPod = (ctx: Context, rec: PodRecord, message: string) => okJson(ctx, views.json(rec), message);

  /** What is wrong with the times to stop given (undefined: not given), or null. */
  function timeToStopProblem(spec: Partial<Pick<PodSpec, 'time_to_stop_default' | 'time_to_stop_instance'>>): string | null {
    return (
      checkTimeToStop('time_to_stop_default', spec.time_to_stop_default, config.minTimeToStopS) ??
      checkTimeToStop('time_to_stop_instance', spec.time_to_stop_instance, config.minTimeToStopS)
    );
  }

  function checkSpecRules(spec: Pick<PodSpec, 'resources' | 'time_to_stop_default' | 'time_to_stop_instance'>): void {
    const problem = checkResources(spec.resources) ?? timeToStopProblem(spec);
    if (problem) throw badRequest(problem);
  }

  /** A health check's HTTP or TCP port must be one of the pod's networking ports (those are published). */
  function checkHealthPorts(spec: Pick<PodSpec, 'healthchecks' | 'networking'>): void {
    const ports = Object.values(spec.networking).map((n) => n.port);
    for (const [kind, check] of Object.entries(spec.healthchecks ?? {})) {
      const port = check?.http?.port ?? check?.tcp?.port;
      if (port !== undefined && !ports.includes(port)) {
        throw badRequest(`healthchecks.${kind}.${check!.http ? 'http' : 'tcp'}.port: must be one of the pod's networking ports (${ports.join(', ')})`);
      }
    }
  }

  /**
   * Check that a tenant may run `image` (on the allow-list, a pinned tag when its entry pins
   * any), and say whether hosts may pull it: never a tag nobody pinned, unless
   * PODS_IMAGE_PULL=any. `trusted`: the image comes from a site admin's template tag, so it is
   * neither checked nor kept from being pulled. One read of the allow-list entry at most.
   */
  async function imageRules(image: string, tenant: string, trusted: boolean): Promise<{ pull: boolean }> {
    const admitted = trusted ? null : await images.admits(image, tenant);
    if (admitted === 'refused') throw badRequest(`image: "${image}" is not on the image allow-list (or not a tag it pins); see GET /v3/pods/images`);
    if (config.imagePull === 'never') return { pull: false };
    return { pull: config.imagePull === 'any' || trusted || admitted === 'pinned' };
  }

  /**
   * Every volume or snapshot a pod mounts exists, is readable by the caller (others are 404s, as
   * if absent) and, unless storage is shared, sits on one host with the others.
   */
  async function checkMounts(spec: Pick<PodSpec, 'volume_mounts' | 'data_dir'>, id: Identity): Promise<void> {
    const mounts = podMounts(spec.volume_mounts);
    const problem = checkMountPaths(mounts, spec.data_dir);
    if (problem) throw badRequest(problem);
    const hosts = new Map<string, string>();
    for (const m of mounts) {
      const store = m.kind === 'volume' ? deps.volumes : deps.snapshots;
      const rec = await store.get(id.tenant, m.sourceId);
      const perms = rec ? await store.perms(id.tenant, m.sourceId) : {};
      if (!rec || (!id.admin && !perms[id.username])) throw badRequest(`volume_mounts: ${m.kind} "${m.sourceId}" was not found`);
      requireLevel(id, perms, 'READ', `${m.kind} "${m.sourceId}"`);
      if (rec.node) hosts.set(rec.node, `${m.kind} ${m.sourceId}`);
    }
    if (hosts.size > 1 && !config.sharedStorage) {
      throw badRequest(`volume_mounts: ${[...hosts].map(([n, what]) => `${what} is on host ${n}`).join(', ')}; a pod can only mount storage of one host`);
    }
  }

  router.get('/v3/pods', async (ctx) => {
    const id = who(ctx);
    // Every pod of the tenant and the caller's level on it, read at once (one pipelined batch, not two round trips a pod).
    const read = await Promise.all(
      (await pods.listIds(id.tenant)).map((podId) =>
        Promise.all([pods.get(id.tenant, podId), id.admin ? ('ADMIN' as const) : pods.permission(id.tenant, podId, id.username)]),
      ),
    );
    // A deleted pod is gone for users at once, while its teardown goes on (as in Tapis).
    const shown = read.flatMap(([rec, level]) => (rec && !rec.desired.deleting && hasLevel(level, 'READ') ? [rec] : []));
    okPageJson(ctx, shown, (rec) => views.json(rec), 'Pods retrieved successfully.');
  });

  async function createPod(id: Identity, raw: unknown): Promise<PodRecord> {
    const body = validate(NewPod, raw);
    const mine = userFields(raw as object, body);
    const templateRef = body.template || body.pod_template || '';
    const resolved = templateRef ? await resolveTemplate(templates, templateRef, { canUse: (t) => requireTemplateUse(templates, id, t, 'template') }) : null;
    const derived = derive(resolved?.definition ?? null, mine);
    if (!derived.image) throw badRequest('image: a pod needs an image or a template');
    const now = new Date();
    const spec: PodSpec = {
      ...derived,
      pod_id: body.pod_id,
      tenant: id.tenant,
      owner: id.username,
      template: templateRef,
      creation_ts: now.toISOString(),
      update_ts: now.toISOString(),
      ...(resolved ? { template_version: resolved.version, user_fields: mine } : {}),
      ...(body.keep_data ? { keep_data: true } : {}),
      ...(body.healthchecks ? { healthchecks: body.healthchecks } : {}),
    };
    await checkMounts(spec, id);
    checkHealthPorts(spec);
    checkSpecRules(spec);
    // An image from a tag a site admin added was allowed by them; any other image is checked.
    spec.image_pull = (await imageRules(spec.image, id.tenant, resolved !== null && mine.image === undefined && resolved.imageTrusted)).pull;
    const on = body.status_requested === 'ON';
    await quotas.check(id, id.username, podUsage({ spec, desired: { status_requested: body.status_requested, deleting: false } as Desired }));
    const desired: Desired = {
      status_requested: body.status_requested,
      uid: newUid(),
      generation: 1,
      deleting: false,
      start_instance_ts: on ? now.toISOString() : null,
      time_to_stop_ts: on ? stopTs(spec, now) : null,
    };
    const line = `pod created by ${id.username}${resolved ? ` from template ${resolved.version}` : ''}; status_requested ${desired.status_requested}`;
    const made = await pods.createAfterTombstone(spec, desired, TOMBSTONE_WAIT_MS, line);
    if (made === 'taken') throw badRequest(`pod_id: a pod named "${spec.pod_id}" already exists`);
    if (made === 'tombstone') throw new PodsError('CONFLICT', `pod_id: a deleted pod named "${spec.pod_id}" is still being taken down on its host; try again in a moment`);
    kick(id.tenant, spec.pod_id, made);
    // As it was made (not read back): shown REQUESTED, as in Tapis.
    return made;
  }

  router.post('/v3/pods', async (ctx) => {
    const rec = await createPod(who(ctx), await readJson(ctx, config.maxBodyBytes));
    okPod(ctx, rec, 'Pod created successfully.');
  });

  router.get('/v3/pods/:pod_id', async (ctx) => {
    const rec = await loadPodFor(pods, who(ctx), ctx.params.pod_id!, 'READ');
    okPod(ctx, rec, 'Pod retrieved successfully.');
  });

  router.put('/v3/pods/:pod_id', async (ctx) => {
    const id = who(ctx);
    await loadPodFor(pods, id, ctx.params.pod_id!, 'USER');
    const body = validate(UpdatePod, await readJson(ctx, config.maxBodyBytes));
    if (body.template !== undefined) throw badRequest('template: a pod\'s template cannot be changed; create a new pod');
    // Checked before the update; the resources, which need the pod's current ones, inside it.
    const problem = timeToStopProblem(body);
    if (problem) throw badRequest(problem);
    const imagePull = body.image === undefined ? undefined : (await imageRules(body.image, id.tenant, false)).pull;
    if (body.volume_mounts !== undefined) {
      const cur = await pods.get(id.tenant, ctx.params.pod_id!);
      await checkMounts({ volume_mounts: body.volume_mounts, data_dir: cur?.spec.data_dir }, id);
    }
    const rec = await pods.update(id.tenant, ctx.params.pod_id!, (cur) => {
      const { status_requested: _ignored, resources, networking, ...rest } = body;
      const spec: PodSpec = {
        ...cur.spec,
        ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
        ...(resources ? { resources: withResourceDefaults({ ...cur.spec.resources, ...resources }) } : {}),
        ...(imagePull === undefined ? {} : { image_pull: imagePull }),
        ...(networking ? { networking: Object.fromEntries(Object.entries(networking).map(([k, n]) => [k, { protocol: n.protocol, port: n.port }])) } : {}),
        update_ts: new Date().toISOString(),
      };
      const bad = checkResources(spec.resources);
      if (bad) throw badRequest(bad);
      checkHealthPorts(spec);
      return { spec };
    });
    if (!rec) throw new PodsError('NOT_FOUND', `pod "${ctx.params.pod_id}" was not found`);
    await pods.action(id.tenant, rec.spec.pod_id, `pod updated by ${id.username}: ${Object.keys(body).join(', ') || 'nothing'}; takes effect on the next restart`, 'updated');
    okPod(ctx, rec, 'Pod updated successfully. Restart the pod for the changes to take effect.');
  });

  router.delete('/v3/pods/:pod_id', async (ctx) => {
    const id = who(ctx);
    const podId = ctx.params.pod_id!;
    const rec = await loadPodFor(pods, id, podId, 'ADMIN');
    const keep = ctx.query.keep_data === 'true' || (ctx.query.keep_data !== 'false' && rec.spec.keep_data === true);
    let kept = '';
    if (keep && rec.spec.data_dir) kept = await keepDataAsVolume(rec, id);
    await pods.update(id.tenant, podId, (cur) => (cur.desired.deleting ? null : { desired: { ...cur.desired, deleting: true } }));
    await pods.action(id.tenant, podId, `delete requested by ${id.username}`, 'delete_requested');
    kick(id.tenant, podId);
    // As in Tapis: an empty result, and the pod is gone for users from now on (GET is a 404).
    ok(ctx, '', kept ? `Pod deleted successfully; its data is kept as volume ${kept}.` : 'Pod deleted successfully.');
  });

  /** A deleted pod's data directory becomes a volume named like the pod, owned by the caller. */
  async function keepDataAsVolume(rec: PodRecord, id: Identity): Promise<string> {
    const podId = rec.spec.pod_id;
    const home = rec.home ?? rec.placement?.nodeId ?? rec.observed?.nodeId ?? null;
    if (!home) return ''; // it never ran: there is no data to keep
    const node = deps.storage.reach(home);
    const now = new Date().toISOString();
    const vol: VolumeRecord = {
      volume_id: podId, tenant: id.tenant, owner: id.username, description: `data of deleted pod ${podId}`, size_limit: 1024 * 1024,
      size_bytes: 0, status: 'REQUESTED', message: '', node: home, creation_ts: now, update_ts: now,
    };
    if (!(await deps.volumes.create(id.tenant, podId, vol))) throw new PodsError('CONFLICT', `keep_data: a volume named "${podId}" exists already; delete it or delete the pod with keep_data=false`);
    try {
      await deps.storage.move(node, podDataArea(id.tenant, podId, rec.desired.uid), { kind: 'volume', tenant: id.tenant, id: podId });
    } catch (err) {
      await deps.volumes.delete(id.tenant, podId);
      throw err;
    }
    const used = await deps.storage.usage(node, { kind: 'volume', tenant: id.tenant, id: podId }).catch(() => ({ bytes: 0 }));
    await deps.volumes.update(id.tenant, podId, (cur) => ({ ...cur, status: 'AVAILABLE', size_bytes: used.bytes }));
    await pods.action(id.tenant, podId, `its data directory is kept as volume ${podId}`);
    return podId;
  }

  router.get('/v3/pods/:pod_id/logs', async (ctx) => {
    const id = who(ctx);
    const podId = ctx.params.pod_id!;
    const rec = await loadPodFor(pods, id, podId, 'READ');
    if (wantsStream(ctx)) return streamLogs(ctx, pods, id.tenant, podId);
    const run = ctx.query.run;
    if (run !== undefined) {
      // An earlier instance's output (our extension): the newest runs are kept, see /runs.
      if (typeof run !== 'string' || !/^\d{1,9}$/.test(run)) throw badRequest('run: must be an instance number (see GET /v3/pods/{pod_id}/runs)');
      const logs = await pods.runLogs(id.tenant, podId, Number(run));
      if (logs === null) throw new PodsError('NOT_FOUND', `the logs of instance ${run} of pod "${podId}" are not kept; see GET /v3/pods/${podId}/runs`);
      ok(ctx, { logs, action_logs: await pods.actions(id.tenant, podId) }, 'Pod logs retrieved successfully.');
      return;
    }
    const [logs, action_logs] = await Promise.all([pods.getLogs(id.tenant, podId, rec.desired.generation), pods.actions(id.tenant, podId)]);
    ok(ctx, { logs, action_logs }, 'Pod logs retrieved successfully.');
  });

  // The instances whose output is kept (our extension): the current one and up to KEPT_RUNS before it.
  router.get('/v3/pods/:pod_id/runs', async (ctx) => {
    const id = who(ctx);
    const podId = ctx.params.pod_id!;
    const rec = await loadPodFor(pods, id, podId, 'READ');
    const earlier = await pods.logRuns(id.tenant, podId);
    ok(ctx, { current: rec.desired.generation, earlier }, 'Pod runs retrieved successfully.');
  });

  // What happened to the pod (our extension): from the API, the reconciler and its host, oldest first.
  router.get('/v3/pods/:pod_id/events', async (ctx) => {
    const id = who(ctx);
    const podId = ctx.params.pod_id!;
    await loadPodFor(pods, id, podId, 'READ');
    if (wantsStream(ctx)) return streamEvents(ctx, pods, id.tenant, podId);
    okPage(ctx, await pods.events(id.tenant, podId), 'Pod events retrieved successfully.');
  });

  router.get('/v3/pods/:pod_id/derived', async (ctx) => {
    const rec = await loadPodFor(pods, who(ctx), ctx.params.pod_id!, 'READ');
    okPod(ctx, rec, 'Derived pod retrieved successfully.');
  });

  router.get('/v3/pods/:pod_id/credentials', async (ctx) => {
    const id = who(ctx);
    await loadPodFor(pods, id, ctx.params.pod_id!, 'USER');
    const creds = await pods.credentials(id.tenant, ctx.params.pod_id!);
    if (!creds) throw new PodsError('NOT_FOUND', `pod "${ctx.params.pod_id}" has no credentials`);
    ok(ctx, creds, 'Pod credentials retrieved successfully.');
  });

  const permissionsView = (perms: Record<string, PermLevel>) => ({
    permissions: Object.entries(perms).sort(([a], [b]) => a.localeCompare(b)).map(([user, level]) => `${user}:${level}`),
  });

  router.get('/v3/pods/:pod_id/permissions', async (ctx) => {
    const id = who(ctx);
    await loadPodFor(pods, id, ctx.params.pod_id!, 'USER');
    ok(ctx, permissionsView(await pods.perms(id.tenant, ctx.params.pod_id!)), 'Pod permissions retrieved successfully.');
  });

  router.post('/v3/pods/:pod_id/permissions', async (ctx) => {
    const id = who(ctx);
    const podId = ctx.params.pod_id!;
    await loadPodFor(pods, id, podId, 'ADMIN');
    const body = validate(SetPermission, await readJson(ctx, config.maxBodyBytes));
    const r = await pods.setPermission(id.tenant, podId, body.user, body.level);
    if (r === 'last-admin') throw badRequest(`level: ${body.user} is the pod's last ADMIN; give another user ADMIN first`);
    if (r === 'gone') throw new PodsError('NOT_FOUND', `pod "${podId}" was not found`);
    await pods.action(id.tenant, podId, `${id.username} gave ${body.user} ${body.level} permission`);
    ok(ctx, permissionsView(await pods.perms(id.tenant, podId)), 'Pod permission set successfully.');
  });

  router.delete('/v3/pods/:pod_id/permissions/:user', async (ctx) => {
    const id = who(ctx);
    const podId = ctx.params.pod_id!;
    const user = ctx.params.user!;
    await loadPodFor(pods, id, podId, 'ADMIN');
    if (!(await pods.perms(id.tenant, podId))[user]) throw new PodsError('NOT_FOUND', `user "${user}" has no permission on pod "${podId}"`);
    const r = await pods.setPermission(id.tenant, podId, user, null);
    if (r === 'last-admin') throw badRequest(`user: ${user} is the pod's last ADMIN and cannot be removed`);
    if (r === 'gone') throw new PodsError('NOT_FOUND', `pod "${podId}" was not found`);
    await pods.action(id.tenant, podId, `${id.username} removed ${user}'s permission`);
    ok(ctx, permissionsView(await pods.perms(id.tenant, podId)), 'Pod permission deleted successfully.');
  });

  const lifecycle = (verb: 'stop' | 'start' | 'restart') => async (ctx: Context) => {
    const id = who(ctx);
    const podId = (ctx as Context & { params: Record<string, string> }).params.pod_id!;
    const cur = await loadPodFor(pods, id, podId, 'ADMIN');
    if (verb !== 'stop' && cur.desired.status_requested === 'OFF') {
      // Starting counts against the owner's running pods, CPU and memory.
      const { pods: _counted, ...running } = podUsage({ spec: cur.spec, desired: { ...cur.desired, status_requested: 'ON' } });
      await quotas.check(id, cur.spec.owner, running);
    }
    const now = new Date();
    const rec = await pods.update(id.tenant, podId, ({ desired, spec }) => {
      if (desired.deleting) throw new PodsError('CONFLICT', `pod "${podId}" is being deleted`);
      if (verb === 'stop') return desired.status_requested === 'OFF' ? null : { desired: { ...desired, status_requested: 'OFF', time_to_stop_ts: null } };
      if (verb === 'start' && desired.status_requested !== 'OFF') return null;
      // As in Tapis, a restart shows status_requested RESTART until its new instance runs (the reconciler turns it ON).
      const next = startedInstance(desired, spec, now);
      return { desired: verb === 'restart' ? { ...next, status_requested: 'RESTART' } : next };
    });
    if (!rec) throw new PodsError('NOT_FOUND', `pod "${podId}" was not found`);
    await pods.action(id.tenant, podId, `${verb} requested by ${id.username}; instance ${rec.desired.generation}`, `${verb}_requested`, { generation: rec.desired.generation });
    kick(id.tenant, podId);
    okPod(ctx, rec, `Pod ${verb} requested successfully.`);
  };
  router.get('/v3/pods/:pod_id/stop', lifecycle('stop'));
  router.get('/v3/pods/:pod_id/start', lifecycle('start'));
  router.get('/v3/pods/:pod_id/restart', lifecycle('restart'));

  return { router, createPod };
}
