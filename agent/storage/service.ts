import type { Logger } from '../../shared/log.js';
import { reply, type Peer } from '../../shared/peer.js';
import { MAX_FRAME_BYTES, type ExecResult, type PodExec, type PodRef } from '../../shared/protocol.js';
import { StorageError } from '../../shared/storage.js';
import type { Runtime } from '../runtime/runtime.js';
import { numericOwner, type AreaStore } from './areas.js';
import { ContainerFiles } from './container-files.js';
import type { Transfers } from './transfers.js';

/** Output kept per command and stream, and for all commands of one request together (one frame). */
const EXEC_MAX_BYTES = 128 * 1024;
const EXEC_TOTAL_BYTES = 640 * 1024;

export interface RunningPods {
  /** The running container of this pod instance here, with the user it runs as; null when there is none. */
  running(ref: PodRef): { containerId: string; user: string } | null;
}

/**
 * The agent's side of storage and exec requests: volumes, snapshots and pod data directories
 * (AreaStore), uploads staged in order (Transfers), files inside running pods (ContainerFiles)
 * and commands run in them. Errors carry StorageError codes to the coordinator.
 */
export class StorageService {
  private readonly files: ContainerFiles;

  constructor(
    private readonly deps: { areas: AreaStore; transfers: Transfers; runtime: Runtime; pods: RunningPods; log: Logger },
  ) {
    this.files = new ContainerFiles(deps.runtime);
  }

  serve(peer: Peer): void {
    const { areas, transfers } = this.deps;
    peer.on('area_create', ({ area }) => areas.create(area));
    peer.on('area_delete', ({ area }) => areas.delete(area));
    peer.on('area_usage', async ({ area }) => reply('usage', await areas.usage(area)));
    peer.on('area_list', async ({ area, path, recursive }) => reply('file_list', await areas.list(area, path, recursive)));
    peer.on('area_read', async ({ area, path, offset, length }) => reply('file_chunk', await areas.read(area, path, offset, length)));
    peer.on('area_copy', ({ from, path, to, destPath }) => areas.copy(from, path, to, destPath));
    peer.on('area_move', ({ from, to }) => areas.move(from, to));
    peer.on('upload_chunk', ({ transferId, offset, data }) => transfers.append(transferId, offset, Buffer.from(data, 'base64')));
    peer.on('upload_abort', ({ transferId }) => transfers.drop(transferId));
    peer.on('upload_to_area', async ({ transferId, area, path, limitBytes }) => {
      try {
        return reply('written', await areas.commitUpload(area, path, await transfers.staged(transferId), limitBytes));
      } finally {
        await transfers.drop(transferId);
      }
    });
    peer.on('upload_to_pod', async (p) => {
      const pod = this.runningPod(p);
      try {
        return reply('written', await this.files.put(pod.containerId, p.path, await transfers.staged(p.transferId), numericOwner(pod.user)));
      } finally {
        await transfers.drop(p.transferId);
      }
    });
    peer.on('pod_list', async (p) => reply('file_list', await this.files.list(this.runningPod(p).containerId, p.path)));
    peer.on('pod_fetch', async (p) => {
      const id = transfers.newId();
      try {
        const size = await this.files.fetch(this.runningPod(p).containerId, p.path, transfers.pathOf(id));
        return reply('staged', { transferId: id, size });
      } catch (err) {
        await transfers.drop(id);
        throw err;
      }
    });
    peer.on('transfer_read', async ({ transferId, offset, length }) => {
      const r = await transfers.read(transferId, offset, length);
      if (r.eof) await transfers.drop(transferId);
      return reply('file_chunk', { data: r.data.toString('base64'), size: r.size, eof: r.eof });
    });
    peer.on('pod_exec', async (p) => reply('exec_result', await this.exec(p)));
  }

  private runningPod(ref: PodRef): { containerId: string; user: string } {
    const pod = this.deps.pods.running(ref);
    if (!pod) throw new StorageError('POD_NOT_RUNNING', `pod ${ref.podId} has no running container on this host`);
    return pod;
  }

  /** Commands one after another; stops at the first failure when asked to, or when the total time is up. */
  private async exec(p: PodExec): Promise<ExecResult> {
    const { containerId } = this.runningPod(p);
    const deadline = Date.now() + p.totalTimeoutS * 1000;
    let budget = EXEC_TOTAL_BYTES;
    const results: ExecResult['results'] = [];
    for (const cmd of p.commands) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const startedAt = new Date();
      const maxBytes = Math.max(1024, Math.min(EXEC_MAX_BYTES, Math.floor(budget / 2)));
      const r = await this.deps.runtime.run(containerId, cmd, { timeoutMs: Math.min(p.commandTimeoutS * 1000, left), maxBytes });
      budget -= Buffer.byteLength(r.stdout) + Buffer.byteLength(r.stderr);
      results.push({ ...r, durationMs: Date.now() - startedAt.getTime(), startedAt: startedAt.toISOString() });
      if (p.failOnNonSuccess && r.exitCode !== 0) break;
    }
    return { results: fitFrame(results) };
  }
}

/**
 * The reply must fit one frame: output full of bytes that JSON escapes (\u0000) can grow six
 * times. Cut the longest outputs in half until it fits, saying so in each.
 */
function fitFrame(results: ExecResult['results']): ExecResult['results'] {
  const limit = Math.floor(MAX_FRAME_BYTES * 0.9);
  const size = () => Buffer.byteLength(JSON.stringify(results));
  for (let i = 0; i < 64 && size() > limit; i++) {
    let longest: { r: ExecResult['results'][number]; key: 'stdout' | 'stderr' } | null = null;
    for (const r of results) for (const key of ['stdout', 'stderr'] as const) if (!longest || r[key].length > longest.r[longest.key].length) longest = { r, key };
    if (!longest) break;
    const text = longest.r[longest.key];
    longest.r[longest.key] = `${text.slice(0, Math.floor(text.length / 2))}\n[output cut to fit the reply]`;
  }
  return results;
}
