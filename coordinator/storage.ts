import { Readable } from 'node:stream';
import { Zip, ZipDeflate } from 'fflate';
import { PodsError, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { PeerError } from '../shared/peer.js';
import type { ExecResult, MessageType, PayloadOf, PodExec, PodRef, PodUsage } from '../shared/protocol.js';
import { CHUNK_BYTES, type Area, type FileChunk, type FileList, type UsageReply, type Written } from '../shared/storage.js';
import type { AgentHub } from './agents/hub.js';
import type { NodeStore } from './store/nodes.js';

/** How an agent's storage error code reaches the user. */
const STATUS_OF: Record<string, ErrorCode> = {
  BAD_PATH: 'BAD_REQUEST',
  NOT_A_FILE: 'BAD_REQUEST',
  FILE_NOT_FOUND: 'NOT_FOUND',
  AREA_NOT_FOUND: 'CONFLICT',
  AREA_FULL: 'PAYLOAD_TOO_LARGE',
  TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  POD_NOT_RUNNING: 'CONFLICT',
  PEER_CLOSED: 'UNAVAILABLE',
  PEER_TIMEOUT: 'UNAVAILABLE',
  PEER_SEND: 'UNAVAILABLE',
};

/** A zip of a directory stops growing past this many files (the user asks for a smaller one). */
const MAX_ZIP_FILES = 10_000;

/**
 * The coordinator's side of storage and exec: typed requests to the agent that holds the data,
 * with the agent's error codes turned into API errors, uploads sent in order in chunks, and
 * files and zips streamed back.
 */
export class StorageClient {
  constructor(private readonly deps: { hub: AgentHub; nodes: NodeStore; log: Logger; sharedStorage: boolean }) {}

  /** The node to ask about data that lives on `node` (any connected one when storage is shared). */
  reach(node: string | null): string {
    const { hub, sharedStorage } = this.deps;
    if (node && hub.isConnected(node)) return node;
    if (sharedStorage) {
      const any = hub.connected()[0];
      if (any) return any.nodeId;
    }
    throw new PodsError('UNAVAILABLE', node ? `host ${node}, which holds this data, is not connected; try again when it is back` : 'no host is connected to hold this data yet');
  }

  private async call<T extends MessageType>(node: string, type: T, payload: PayloadOf<T>, timeoutMs?: number): Promise<unknown> {
    try {
      return (await this.deps.hub.request(node, type, payload, timeoutMs)).payload;
    } catch (err) {
      if (err instanceof PodsError) throw err;
      const code = err instanceof PeerError ? err.code : '';
      const mapped = STATUS_OF[code];
      if (mapped) throw new PodsError(mapped, mapped === 'UNAVAILABLE' ? `host ${node} did not answer: ${(err as Error).message}` : (err as Error).message);
      this.deps.log.error({ err, type, node }, 'agent request failed');
      throw new PodsError('INTERNAL', `agent request ${type} failed`, { cause: err });
    }
  }

  async createArea(node: string, area: Area): Promise<void> {
    await this.call(node, 'area_create', { area });
  }

  /** Delete now if the node is here, and in any case remember it, so a node that is away deletes it when it returns. */
  async deleteArea(node: string, area: Area): Promise<void> {
    await this.deps.nodes.addGarbage(node, area);
    if (this.deps.hub.isConnected(node)) await this.collectGarbage(node);
  }

  /** Delete what a node was asked to while it was away. */
  async collectGarbage(node: string): Promise<void> {
    for (const area of await this.deps.nodes.garbage(node)) {
      try {
        await this.call(node, 'area_delete', { area });
        await this.deps.nodes.clearGarbage(node, area);
      } catch (err) {
        this.deps.log.warn({ node, area, err: (err as Error).message }, 'storage not deleted yet; will retry');
        return;
      }
    }
  }

  async usage(node: string, area: Area, timeoutMs?: number): Promise<UsageReply> {
    return (await this.call(node, 'area_usage', { area }, timeoutMs)) as UsageReply;
  }

  async list(node: string, area: Area, path: string, recursive = false): Promise<FileList> {
    return (await this.call(node, 'area_list', { area, path, recursive })) as FileList;
  }

  async copy(node: string, from: Area, path: string, to: Area, destPath: string): Promise<void> {
    await this.call(node, 'area_copy', { from, path, to, destPath }, 300_000);
  }

  async move(node: string, from: Area, to: Area): Promise<void> {
    await this.call(node, 'area_move', { from, to });
  }

  /** A file of an area as a stream; the first chunk is read before this returns, so a missing file is an error, not a broken stream. */
  async readFile(node: string, area: Area, path: string): Promise<{ size: number; stream: Readable }> {
    const first = (await this.call(node, 'area_read', { area, path, offset: 0, length: CHUNK_BYTES })) as FileChunk;
    const rest = async function* (this: StorageClient) {
      let chunk = first;
      let offset = 0;
      for (;;) {
        const data = Buffer.from(chunk.data, 'base64');
        yield data;
        offset += data.length;
        if (chunk.eof || data.length === 0) return;
        chunk = (await this.call(node, 'area_read', { area, path, offset, length: CHUNK_BYTES })) as FileChunk;
      }
    };
    return { size: first.size, stream: Readable.from(rest.call(this)) };
  }

  /** A directory of an area as a zip, streamed as it is made. */
  async zipDir(node: string, area: Area, path: string): Promise<Readable> {
    const listing = await this.list(node, area, path, true);
    const files = listing.entries.filter((e) => e.type === 'file');
    if (listing.truncated || files.length > MAX_ZIP_FILES) throw new PodsError('PAYLOAD_TOO_LARGE', `path: "${path}" holds more than ${MAX_ZIP_FILES} files; download a smaller directory`);
    const base = path.replace(/^\/+|\/+$/g, '');
    const out = new Readable({ read() {} });
    const zip = new Zip((err, data, final) => {
      if (err) out.destroy(err);
      else {
        out.push(Buffer.from(data));
        if (final) out.push(null);
      }
    });
    void (async () => {
      try {
        for (const f of files) {
          const entry = new ZipDeflate(base ? f.path.slice(base.length + 1) : f.path, { level: 6 });
          zip.add(entry);
          let offset = 0;
          for (;;) {
            const c = (await this.call(node, 'area_read', { area, path: f.path, offset, length: CHUNK_BYTES })) as FileChunk;
            const data = Buffer.from(c.data, 'base64');
            offset += data.length;
            entry.push(data, c.eof || data.length === 0);
            if (c.eof || data.length === 0) break;
          }
        }
        zip.end();
      } catch (err) {
        out.destroy(err as Error);
      }
    })();
    return out;
  }

  /** Send an upload to a node in order, chunk by chunk; `commit` puts it in place there. */
  upload(node: string): Upload {
    const transferId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
    let offset = 0;
    return {
      transferId,
      chunk: async (data: Buffer) => {
        for (let i = 0; i < data.length; i += CHUNK_BYTES) {
          const piece = data.subarray(i, i + CHUNK_BYTES);
          await this.call(node, 'upload_chunk', { transferId, offset, data: piece.toString('base64') });
          offset += piece.length;
        }
      },
      toArea: async (area: Area, path: string, limitBytes: number | null) =>
        (await this.call(node, 'upload_to_area', { transferId, area, path, limitBytes }, 120_000)) as Written,
      toPod: async (ref: PodRef, path: string) => (await this.call(node, 'upload_to_pod', { ...ref, transferId, path }, 120_000)) as Written,
      abort: async () => {
        await this.call(node, 'upload_abort', { transferId }).catch(() => undefined);
      },
    };
  }

  async exec(node: string, req: PodExec): Promise<ExecResult> {
    return (await this.call(node, 'pod_exec', req, (req.totalTimeoutS + 15) * 1000)) as ExecResult;
  }

  /** The usage samples the pod's host keeps of it (the last hour). */
  async podUsage(node: string, ref: PodRef): Promise<PodUsage> {
    return (await this.call(node, 'pod_metrics', ref, 15_000)) as PodUsage;
  }

  async listPod(node: string, ref: PodRef, path: string): Promise<FileList> {
    return (await this.call(node, 'pod_list', { ...ref, path }, 60_000)) as FileList;
  }

  /** A file inside a running pod, staged on its host first, then streamed. */
  async readPodFile(node: string, ref: PodRef, path: string): Promise<{ size: number; stream: Readable }> {
    const staged = (await this.call(node, 'pod_fetch', { ...ref, path }, 120_000)) as { transferId: string; size: number };
    const self = this;
    async function* chunks() {
      let offset = 0;
      for (;;) {
        const c = (await self.call(node, 'transfer_read', { transferId: staged.transferId, offset, length: CHUNK_BYTES })) as FileChunk;
        const data = Buffer.from(c.data, 'base64');
        if (data.length) yield data;
        offset += data.length;
        if (c.eof || data.length === 0) return;
      }
    }
    return { size: staged.size, stream: Readable.from(chunks()) };
  }
}

export interface Upload {
  transferId: string;
  chunk(data: Buffer): Promise<void>;
  toArea(area: Area, path: string, limitBytes: number | null): Promise<Written>;
  toPod(ref: PodRef, path: string): Promise<Written>;
  abort(): Promise<void>;
}
