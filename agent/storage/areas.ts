import { execFile } from 'node:child_process';
import { chmod, chown, lstat, mkdir, open, opendir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../../shared/log.js';
import { StorageError, type Area, type FileChunk, type FileEntry, type FileList, type Mount, type UsageReply } from '../../shared/storage.js';
import { cleanPath, ensureDirs, permissionString, prepareWrite, resolveExisting, segmentsOf } from './paths.js';

const run = promisify(execFile);

/** A listing stops after this many entries (and says it was cut). */
const MAX_LIST_ENTRIES = 10_000;

/** A numeric "uid[:gid]", or null for a user name (which the host cannot resolve for the image). */
export function numericOwner(user: string): { uid: number; gid: number } | null {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) return null;
  const uid = Number(m[1]);
  return { uid, gid: m[2] !== undefined ? Number(m[2]) : uid };
}

/**
 * The directories under this host's data root that outlive containers: `pods/` (each pod's data
 * directory), `volumes/` and `snapshots/`, one directory per tenant and id. All file access by
 * users goes through the checks in paths.ts.
 */
export class AreaStore {
  constructor(
    private readonly root: string,
    /** Owner of files the service writes for users (uploads): the hosts' default container user. */
    private readonly defaultUser: string,
    private readonly log: Logger,
  ) {}

  dirOf(area: Area): string {
    return path.join(this.root, `${area.kind}s`, area.tenant, area.id);
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o711 });
  }

  async exists(area: Area): Promise<boolean> {
    return (await stat(this.dirOf(area)).catch(() => null))?.isDirectory() ?? false;
  }

  /**
   * Make an area's directory (nothing happens when it exists). A pod's data directory belongs to
   * the container's user; volumes are open to whichever user a mounting pod runs as.
   */
  async create(area: Area, podUser?: string): Promise<void> {
    const dir = this.dirOf(area);
    if (await this.exists(area)) return;
    await mkdir(path.dirname(dir), { recursive: true, mode: 0o711 });
    await mkdir(dir, { mode: 0o700 });
    const owner = podUser ? numericOwner(podUser) : null;
    if (owner && (await this.tryChown(dir, owner))) return;
    // A named user (or no root here to chown): the directory must still be writable by the pod.
    await chmod(dir, 0o777);
  }

  async delete(area: Area): Promise<void> {
    await rm(this.dirOf(area), { recursive: true, force: true });
  }

  async move(from: Area, to: Area): Promise<void> {
    if (!(await this.exists(from))) throw new StorageError('AREA_NOT_FOUND', `${from.kind} ${from.id} is not on this host`);
    if (await this.exists(to)) throw new StorageError('BAD_PATH', `${to.kind} ${to.id} exists already`);
    await mkdir(path.dirname(this.dirOf(to)), { recursive: true, mode: 0o711 });
    await rename(this.dirOf(from), this.dirOf(to));
    await chmod(this.dirOf(to), 0o777);
  }

  private async rootOf(area: Area): Promise<string> {
    const dir = this.dirOf(area);
    if (!(await this.exists(area))) throw new StorageError('AREA_NOT_FOUND', `${area.kind} ${area.id} is not on this host`);
    return dir;
  }

  /** Bytes and files under an area (links counted, not followed). */
  async usage(area: Area): Promise<UsageReply> {
    const root = await this.rootOf(area);
    let bytes = 0;
    let files = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else {
          files++;
          bytes += (await lstat(p).catch(() => null))?.size ?? 0;
        }
      }
    };
    await walk(root);
    return { bytes, files };
  }

  /** The entries of a directory (or the one entry of a file), optionally the whole tree below it. */
  async list(area: Area, userPath: string, recursive: boolean): Promise<FileList> {
    const root = await this.rootOf(area);
    const real = await resolveExisting(root, userPath);
    const realRoot = await realpath(root);
    const entries: FileEntry[] = [];
    let truncated = false;
    const entryOf = async (p: string): Promise<FileEntry | null> => {
      const st = await lstat(p).catch(() => null);
      if (!st) return null;
      const rel = path.relative(realRoot, p).split(path.sep).join('/');
      return {
        path: rel,
        name: path.basename(p),
        type: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other',
        size: st.isDirectory() ? 0 : st.size,
        lastModified: st.mtime.toISOString(),
        nativePermissions: permissionString(st.mode),
      };
    };
    const st = await lstat(real);
    if (!st.isDirectory()) {
      const e = await entryOf(real);
      return { entries: e ? [e] : [], truncated: false };
    }
    const walk = async (dir: string): Promise<void> => {
      const d = await opendir(dir);
      for await (const child of d) {
        if (entries.length >= MAX_LIST_ENTRIES) {
          truncated = true;
          break;
        }
        const p = path.join(dir, child.name);
        const e = await entryOf(p);
        if (!e) continue;
        entries.push(e);
        if (recursive && e.type === 'dir') await walk(p);
      }
    };
    await walk(real);
    entries.sort((a, b) => a.path.localeCompare(b.path));
    return { entries, truncated };
  }

  /** A piece of a file. */
  async read(area: Area, userPath: string, offset: number, length: number): Promise<FileChunk> {
    const root = await this.rootOf(area);
    const real = await resolveExisting(root, userPath);
    const st = await stat(real);
    if (!st.isFile()) throw new StorageError('NOT_A_FILE', `path: "${cleanPath(userPath)}" is a ${st.isDirectory() ? 'directory (ask for it with zip=true)' : 'special file'}`);
    const fh = await open(real, 'r');
    try {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, st.size - offset)));
      const { bytesRead } = buf.length ? await fh.read(buf, 0, buf.length, offset) : { bytesRead: 0 };
      return { data: buf.subarray(0, bytesRead).toString('base64'), size: st.size, eof: offset + bytesRead >= st.size };
    } finally {
      await fh.close();
    }
  }

  /**
   * Copy a path of one area to `destPath` in another (made if missing), keeping modes, owners,
   * times and links as they are (cp -a: links are copied as links, never followed).
   */
  async copy(from: Area, userPath: string, to: Area, destPath: string): Promise<void> {
    const src = await resolveExisting(await this.rootOf(from), userPath);
    await this.create(to);
    const destRoot = this.dirOf(to);
    const parts = segmentsOf(destPath);
    const st = await stat(src);
    if (st.isDirectory()) {
      const dest = parts.length ? await ensureDirs(destRoot, parts) : destRoot;
      await run('cp', ['-a', '--', `${src}/.`, `${dest}/`]);
    } else {
      if (!parts.length) throw new StorageError('BAD_PATH', 'destination_path: a snapshot of a single file needs a destination_path naming the file');
      const target = await prepareWrite(destRoot, destPath);
      await run('cp', ['-a', '--', src, target]);
    }
  }

  /**
   * Put a staged upload at `userPath`. With a limit, the area's usage plus the file may not pass
   * it: the upload is refused and the area is left as it was.
   */
  async commitUpload(area: Area, userPath: string, staged: string, limitBytes: number | null): Promise<{ path: string; bytes: number }> {
    const root = await this.rootOf(area);
    const size = (await stat(staged)).size;
    if (limitBytes !== null) {
      const used = (await this.usage(area)).bytes;
      const target = await prepareWrite(root, userPath).catch(() => null);
      const replaced = target ? ((await lstat(target).catch(() => null))?.size ?? 0) : 0;
      if (used - replaced + size > limitBytes) {
        throw new StorageError('AREA_FULL', `the volume would hold ${used - replaced + size} bytes, past its size_limit of ${limitBytes} bytes; nothing was written`);
      }
    }
    const owner = numericOwner(this.defaultUser);
    const target = await prepareWrite(root, userPath, owner ? (d) => this.tryChown(d, owner) : undefined);
    // Same filesystem (the staging directory is under the data root): an atomic rename.
    await rename(staged, target);
    await chmod(target, 0o644);
    if (owner) await this.tryChown(target, owner);
    return { path: cleanPath(userPath), bytes: size };
  }

  private async tryChown(p: string, owner: { uid: number; gid: number }): Promise<boolean> {
    try {
      await chown(p, owner.uid, owner.gid);
      return true;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cannot chown (the agent is not root)');
      return false;
    }
  }

  /**
   * Host paths for a container's mounts. A pod's own data directory is made on first use; a
   * volume or snapshot must be here (the coordinator places the pod on its host).
   */
  async bindsFor(mounts: Mount[], podUser: string): Promise<Array<{ source: string; target: string; readOnly: boolean }>> {
    const out = [];
    for (const m of mounts) {
      if (m.ownedByPod) await this.create(m.area, podUser);
      const root = await this.rootOf(m.area);
      let source = root;
      if (segmentsOf(m.subPath).length) {
        source = await resolveExisting(root, m.subPath).catch(async (err) => {
          // A sub_path that does not exist yet is made (as an empty directory) in a writable mount.
          if (!(err instanceof StorageError) || err.code !== 'FILE_NOT_FOUND' || m.readOnly) throw err;
          return ensureDirs(root, segmentsOf(m.subPath));
        });
      }
      out.push({ source, target: m.target, readOnly: m.readOnly });
    }
    return out;
  }
}
