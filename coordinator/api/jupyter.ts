import Router from '@koa/router';
import type { Context } from 'koa';
import path from 'node:path';
import type { z } from 'zod';
import { PodView } from '../../shared/api.js';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, PodsError } from '../../shared/errors.js';
import { parseTemplateRef } from '../../shared/template.js';
import type { PodRecord, PodStore } from '../store/pods.js';
import type { StorageClient } from '../storage.js';
import { podResponse } from '../view.js';
import type { Identity } from './auth.js';
import { ok } from './envelope.js';
import { receiveFile } from './multipart.js';
import { hasLevel, levelOf, loadPodFor } from './permissions.js';
import { runningInstance } from './pod-files.js';
import { startedInstance, type CreatePod } from './pods.js';

// Tapis's Jupyter helpers: `ensure_jupyter_pod` gives the caller a running pod from the Jupyter
// template (PODS_JUPYTER_TEMPLATE, default `jupyter`), made or started as needed, and
// `upload_to_jupyter` puts a file into it, under its notebook directory (the pod's data_dir).

export interface JupyterDeps {
  config: CoordinatorConfig;
  pods: PodStore;
  storage: StorageClient;
  createPod: CreatePod;
  kick: (tenant: string, podId: string) => void;
  nodeConnected: (nodeId: string) => boolean;
}

const who = (ctx: Context) => ctx.state.identity as Identity;

/** What ensure_jupyter_pod answers: the pod, its status and where it is served. */
export const JupyterView = PodView.pick({ pod_id: true, status: true, status_requested: true, networking: true, url: true }).strict();

/** The ids ensure_jupyter_pod tries for a user, in order: `{username}jupyter`, then with 2..9 after it. */
export function jupyterPodIds(username: string): string[] {
  let name = username.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 55);
  if (!/^[a-z]/.test(name)) name = `u${name}`.slice(0, 55);
  const base = `${name}jupyter`;
  return [base, ...Array.from({ length: 8 }, (_, i) => `${base}${i + 2}`)];
}

export function jupyterRouter(deps: JupyterDeps): Router {
  const { config, pods } = deps;
  const router = new Router();
  const templateId = parseTemplateRef(config.jupyterTemplate)!.id;
  const fromJupyterTemplate = (rec: PodRecord) => parseTemplateRef(rec.spec.template)?.id === templateId;
  const result = (rec: PodRecord): z.infer<typeof JupyterView> => {
    const view = podResponse(rec, config.baseDomain, deps.nodeConnected, config.publicTlsPort);
    return { pod_id: view.pod_id, status: view.status, status_requested: view.status_requested, networking: view.networking, url: view.url };
  };

  router.get('/v3/pods/jupyter/ensure', async (ctx) => {
    const id = who(ctx);
    for (const podId of jupyterPodIds(id.username)) {
      const rec = await pods.get(id.tenant, podId);
      if (!rec) {
        const made = await deps.createPod(id, { pod_id: podId, template: config.jupyterTemplate, description: `Jupyter of ${id.username}, made by ensure_jupyter_pod` });
        ok(ctx, result(made), 'Created new Jupyter pod successfully.');
        return;
      }
      // Someone else's pod with this id, or one that is not the caller's Jupyter: try the next id.
      const mine = rec.spec.owner === id.username && fromJupyterTemplate(rec) && !rec.desired.deleting;
      if (!mine || !hasLevel(levelOf(id, await pods.perms(id.tenant, podId)), 'ADMIN')) continue;
      if (rec.desired.status_requested !== 'OFF') {
        ok(ctx, result(rec), 'Retrieved existing Jupyter pod successfully.');
        return;
      }
      const started = await pods.update(id.tenant, podId, ({ desired, spec }) =>
        desired.deleting || desired.status_requested !== 'OFF' ? null : { desired: startedInstance(desired, spec, new Date()) });
      if (!started) continue;
      await pods.action(id.tenant, podId, `start requested by ${id.username} (ensure_jupyter_pod); instance ${started.desired.generation}`, 'start_requested');
      deps.kick(id.tenant, podId);
      ok(ctx, result(started), 'Started existing Jupyter pod successfully.');
      return;
    }
    throw new PodsError('CONFLICT', `every pod id ensure_jupyter_pod tries for "${id.username}" (${jupyterPodIds(id.username)[0]} and 2 to 9 after it) is taken by a pod that is not your Jupyter pod`);
  });

  // USER on the pod, as upload_to_pod; `path` is relative to the notebook directory.
  router.post('/v3/pods/jupyter/:pod_id/upload', async (ctx) => {
    const id = who(ctx);
    const rec = await loadPodFor(pods, id, ctx.params.pod_id!, 'USER');
    if (!fromJupyterTemplate(rec)) throw badRequest(`pod_id: pod "${rec.spec.pod_id}" is not made from the Jupyter template "${templateId}"; use upload_to_pod`);
    const root = rec.spec.data_dir;
    if (!root) throw badRequest(`pod_id: pod "${rec.spec.pod_id}" has no notebook directory (data_dir); use upload_to_pod`);
    const { node, ref } = runningInstance(rec, deps.nodeConnected);
    const upload = deps.storage.upload(node);
    try {
      const got = await receiveFile(ctx, { maxBytes: config.maxUploadBytes, onChunk: (data) => upload.chunk(data) });
      const rel = notebookPath(got.fields.path, got.filename);
      const written = await upload.toPod(ref, path.posix.join(root, rel));
      await pods.action(id.tenant, rec.spec.pod_id, `${id.username} uploaded ${written.bytes} bytes to ${written.path} (upload_to_jupyter)`);
      ok(ctx, { upload_path: rel, pod_name: rec.spec.pod_id, path: written.path, bytes: written.bytes, url: result(rec).url }, `File uploaded to ${rel} in Jupyter.`);
    } catch (err) {
      await upload.abort();
      throw err;
    }
  });

  return router;
}

/**
 * Where in the notebook directory a file goes: `path` as Jupyter names it (relative; a leading /
 * is its root), with the uploaded file's name when it names a directory (ends in /).
 */
export function notebookPath(given: string | undefined, filename: string): string {
  if (given === undefined) throw badRequest('path: give the destination in Jupyter, e.g. notebooks/analysis.ipynb');
  const trimmed = given.replace(/^\/+/, '');
  const rel = trimmed === '' || trimmed.endsWith('/') ? `${trimmed}${filename}` : trimmed;
  const parts = rel.split('/');
  if (!rel || parts.some((p) => p === '..' || p === '.' || p === '') || rel.includes('\0')) {
    throw badRequest(`path: "${given}" must be a file path inside the notebook directory, without . or .. parts`);
  }
  return rel;
}
