import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, PodsError } from '../../shared/errors.js';
import type { PodRef } from '../../shared/protocol.js';
import { deriveStatus, isCurrent } from '../../shared/status.js';
import type { PodRecord, PodStore } from '../store/pods.js';
import type { StorageClient } from '../storage.js';
import type { Identity } from './auth.js';
import { readJson, validate } from './body.js';
import { ok } from './envelope.js';
import { receiveFile } from './multipart.js';
import { loadPodFor } from './permissions.js';

// Inside a running pod: exec (Tapis `exec_pod_commands`), `upload_to_pod`, and our listing and
// download of a path, all through the agent of the pod's host (Docker's exec and archive APIs).

const Command = z.union([z.string().min(1).max(65_536), z.array(z.string().max(65_536)).min(1).max(1024)]);

export const ExecRequest = z.strictObject({
  commands: z.array(Command).min(1, 'commands: give at least one command').max(64, 'commands: at most 64 commands'),
  command_timeout: z.number().int().min(1).max(3600).default(60),
  total_timeout: z.number().int().min(1).max(3600).default(300),
  fail_on_non_success: z.boolean().default(true),
});

export interface PodFilesDeps {
  config: CoordinatorConfig;
  pods: PodStore;
  storage: StorageClient;
  nodeConnected: (nodeId: string) => boolean;
}

const who = (ctx: Context) => ctx.state.identity as Identity;
const podIdOf = (ctx: Context) => (ctx as Context & { params: Record<string, string> }).params.pod_id!;

/** The node and instance of a pod that runs now; a clear 409 otherwise. */
export function runningInstance(rec: PodRecord, nodeConnected: (nodeId: string) => boolean): { node: string; ref: PodRef } {
  const { desired, placement, observed } = rec;
  const status = deriveStatus(desired, placement, observed).status;
  if (!isCurrent(desired, observed) || observed.phase !== 'running') {
    throw new PodsError('CONFLICT', `pod "${rec.spec.pod_id}" is not running (status ${status}); start it first`);
  }
  if (!nodeConnected(observed.nodeId)) throw new PodsError('UNAVAILABLE', `host ${observed.nodeId}, which runs pod "${rec.spec.pod_id}", is not connected now`);
  return { node: observed.nodeId, ref: { tenant: rec.spec.tenant, podId: rec.spec.pod_id, uid: observed.uid, generation: observed.generation } };
}

export function podFilesRouter(deps: PodFilesDeps): Router {
  const { config, pods, storage } = deps;
  const router = new Router();

  router.post('/v3/pods/:pod_id/exec', async (ctx) => {
    const id = who(ctx);
    const rec = await loadPodFor(pods, id, podIdOf(ctx), 'ADMIN');
    const body = validate(ExecRequest, await readJson(ctx, config.maxBodyBytes));
    const { node, ref } = runningInstance(rec, deps.nodeConnected);
    // A string is a shell command line, as the user wrote it; a list is an argv, run as it is.
    const argvs = body.commands.map((c) => (typeof c === 'string' ? ['/bin/sh', '-c', c] : c));
    const r = await storage.exec(node, { ...ref, commands: argvs, commandTimeoutS: body.command_timeout, totalTimeoutS: body.total_timeout, failOnNonSuccess: body.fail_on_non_success });
    const results = r.results.map((x, i) => ({
      command: body.commands[i],
      stdout: x.stdout,
      stderr: x.timedOut ? `${x.stderr}${x.stderr ? '\n' : ''}timed out after ${body.command_timeout} s` : x.stderr,
      success: x.exitCode === 0 && !x.timedOut,
      exit_code: x.exitCode,
      duration_sec: Math.round(x.durationMs) / 1000,
      timestamp: x.startedAt,
    }));
    const succeeded = results.filter((x) => x.success).length;
    const last = results[results.length - 1];
    let message = 'All commands completed.';
    if (last && !last.success && r.results[r.results.length - 1]!.timedOut) message = `Execution stopped: command ${results.length} timed out after ${body.command_timeout} s.`;
    else if (results.length < body.commands.length && last && !last.success && body.fail_on_non_success) message = `Execution stopped: command ${results.length} of ${body.commands.length} failed with exit code ${last.exit_code}.`;
    else if (results.length < body.commands.length) message = `Execution stopped: total_timeout of ${body.total_timeout} s passed after ${results.length} of ${body.commands.length} commands.`;
    else if (succeeded < results.length) message = `${succeeded} of ${results.length} commands succeeded.`;
    // The action log names what ran, never its arguments or output (they may hold secrets).
    const names = argvs.slice(0, results.length).map((a, i) => (typeof body.commands[i] === 'string' ? 'sh' : a[0]!.split('/').pop()));
    await pods.action(id.tenant, rec.spec.pod_id, `${id.username} executed ${results.length} of ${body.commands.length} command(s) (${names.join(', ')}); ${succeeded} succeeded`);
    ok(ctx, { execution_results: results, total_commands: body.commands.length, successful_commands: succeeded }, message);
  });

  router.post('/v3/pods/:pod_id/upload_to_pod', async (ctx) => {
    const id = who(ctx);
    const rec = await loadPodFor(pods, id, podIdOf(ctx), 'USER');
    const { node, ref } = runningInstance(rec, deps.nodeConnected);
    const upload = storage.upload(node);
    try {
      const got = await receiveFile(ctx, { maxBytes: config.maxUploadBytes, onChunk: (data) => upload.chunk(data) });
      const dest = got.fields.dest_path;
      if (!dest) throw badRequest('dest_path: give the path inside the pod to write the file to');
      const written = await upload.toPod(ref, dest);
      await pods.action(id.tenant, rec.spec.pod_id, `${id.username} uploaded ${written.bytes} bytes to ${written.path}`);
      ok(ctx, { path: written.path, bytes: written.bytes }, `File uploaded to ${written.path}.`);
    } catch (err) {
      await upload.abort();
      throw err;
    }
  });

  const pathQuery = (ctx: Context) => {
    const p = ctx.query.path;
    if (typeof p !== 'string' || !p) throw badRequest('path: give an absolute path inside the pod, e.g. ?path=/tmp');
    return p;
  };

  router.get('/v3/pods/:pod_id/files', async (ctx) => {
    const rec = await loadPodFor(pods, who(ctx), podIdOf(ctx), 'READ');
    const { node, ref } = runningInstance(rec, deps.nodeConnected);
    const listing = await storage.listPod(node, ref, pathQuery(ctx));
    ok(ctx, listing.entries, listing.truncated ? `Listed the first ${listing.entries.length} entries only.` : 'Pod files listed successfully.');
  });

  router.get('/v3/pods/:pod_id/files/contents', async (ctx) => {
    const rec = await loadPodFor(pods, who(ctx), podIdOf(ctx), 'READ');
    const { node, ref } = runningInstance(rec, deps.nodeConnected);
    const path = pathQuery(ctx);
    const file = await storage.readPodFile(node, ref, path);
    ctx.body = file.stream;
    ctx.length = file.size;
    ctx.set('Content-Type', 'application/octet-stream');
    ctx.set('Content-Disposition', `attachment; filename="${(path.split('/').pop() || 'file').replace(/[^A-Za-z0-9._-]/g, '_')}"`);
  });

  return router;
}
