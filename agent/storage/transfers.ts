import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../../shared/storage.js';

/** A staged transfer nobody has touched for this long is removed. */
const IDLE_MS = 10 * 60_000;

/**
 * Files on their way in or out, staged under the data root (so a commit into an area is a
 * rename on one filesystem): uploads arrive in order, chunk by chunk, then are committed into a
 * volume or a container; downloads out of a container are staged whole, then read in chunks.
 */
export class Transfers {
  private readonly dir: string;
  private timer: NodeJS.Timeout | null = null;

  constructor(root: string, private readonly maxBytes: number) {
    this.dir = path.join(root, '.transfers');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.timer = setInterval(() => void this.sweep(), IDLE_MS / 4);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  newId(): string {
    return randomBytes(12).toString('hex');
  }

  pathOf(id: string): string {
    if (!/^[a-z0-9-]{8,64}$/.test(id)) throw new StorageError('BAD_PATH', 'bad transfer id');
    return path.join(this.dir, id);
  }

  /** Append a chunk; it must start where the staged file ends (chunks come in order). */
  async append(id: string, offset: number, data: Buffer): Promise<void> {
    const p = this.pathOf(id);
    const size = (await stat(p).catch(() => null))?.size ?? 0;
    if (offset !== size) throw new StorageError('BAD_PATH', `upload chunk at ${offset}, expected ${size}`);
    if (size + data.length > this.maxBytes) {
      await rm(p, { force: true });
      throw new StorageError('TOO_LARGE', `uploads are limited to ${this.maxBytes} bytes on this host`);
    }
    const fh = await open(p, 'a', 0o600);
    try {
      await fh.write(data);
    } finally {
      await fh.close();
    }
  }

  /** The staged file of an upload (an empty file for an upload of zero bytes). */
  async staged(id: string): Promise<string> {
    const p = this.pathOf(id);
    if (!(await stat(p).catch(() => null))) await (await open(p, 'a', 0o600)).close();
    return p;
  }

  async drop(id: string): Promise<void> {
    await rm(this.pathOf(id), { force: true });
  }

  /** A piece of a staged download. */
  async read(id: string, offset: number, length: number): Promise<{ data: Buffer; size: number; eof: boolean }> {
    const p = this.pathOf(id);
    const st = await stat(p).catch(() => null);
    if (!st) throw new StorageError('FILE_NOT_FOUND', 'the transfer has expired or never existed');
    const fh = await open(p, 'r');
    try {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, st.size - offset)));
      const { bytesRead } = buf.length ? await fh.read(buf, 0, buf.length, offset) : { bytesRead: 0 };
      const eof = offset + bytesRead >= st.size;
      return { data: buf.subarray(0, bytesRead), size: st.size, eof };
    } finally {
      await fh.close();
    }
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const name of await readdir(this.dir).catch(() => [])) {
      const p = path.join(this.dir, name);
      const st = await stat(p).catch(() => null);
      if (st && now - st.mtimeMs > IDLE_MS) await rm(p, { force: true });
    }
  }
}
