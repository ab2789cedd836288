import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, pack } from 'tar-stream';
import { StorageError, type FileEntry, type FileList } from '../../shared/storage.js';
import { permissionString } from './paths.js';

/** What this module needs of the container engine: Docker's archive API. */
export interface ArchiveApi {
  /** Extract a tar stream into directory `dir` of the container. */
  putArchive(containerId: string, dir: string, tar: Readable): Promise<void>;
  /** A tar stream of `path` in the container (a file, or a directory and everything below it). */
  getArchive(containerId: string, path: string): Promise<Readable>;
}

const MAX_LIST_ENTRIES = 10_000;

/** An absolute, normalized path inside a container; `..` is refused rather than resolved. */
export function containerPath(p: string): string {
  if (p.includes('\0')) throw new StorageError('BAD_PATH', 'path: must not contain NUL');
  if (!p.startsWith('/')) throw new StorageError('BAD_PATH', `path: "${p}" must be an absolute path inside the pod`);
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.includes('..')) throw new StorageError('BAD_PATH', `path: "${p}" must not contain ".."`);
  return '/' + parts.join('/');
}

/** Docker answers 404 for a path that does not exist in the container. */
function mapDockerError(err: unknown, what: string): never {
  if (err instanceof StorageError) throw err;
  const status = (err as { statusCode?: number }).statusCode;
  if (status === 404) throw new StorageError('FILE_NOT_FOUND', `${what} does not exist in the pod`);
  if (status === 400 || status === 403) throw new StorageError('BAD_PATH', `${what}: ${(err as Error).message}`);
  throw new StorageError('EXEC_FAILED', `${what}: ${(err as Error).message}`);
}

/**
 * Files inside a running pod, through Docker's archive API: no shell or tool in the image is
 * needed, and no user text reaches a command line.
 */
export class ContainerFiles {
  constructor(private readonly api: ArchiveApi) {}

  /** Write a staged file to `dest` (its directory must exist), owned by the pod's user. */
  async put(containerId: string, dest: string, staged: string, owner: { uid: number; gid: number } | null): Promise<{ path: string; bytes: number }> {
    const target = containerPath(dest);
    if (target === '/') throw new StorageError('BAD_PATH', 'dest_path: a file name is required');
    const size = (await stat(staged)).size;
    const tar = pack();
    const entry = tar.entry({ name: path.posix.basename(target), size, mode: 0o644, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtime: new Date() });
    const feeding = pipeline(createReadStream(staged), entry).then(() => tar.finalize());
    try {
      await Promise.all([this.api.putArchive(containerId, path.posix.dirname(target), tar as unknown as Readable), feeding]);
    } catch (err) {
      tar.destroy();
      mapDockerError(err, `the directory ${path.posix.dirname(target)}`);
    }
    return { path: target, bytes: size };
  }

  /** The entries of a directory in the pod (or the one entry of a file). */
  async list(containerId: string, p: string): Promise<FileList> {
    const target = containerPath(p);
    const stream = await this.api.getArchive(containerId, target).catch((err) => mapDockerError(err, target));
    const entries: FileEntry[] = [];
    let truncated = false;
    let rootName: string | null = null;
    const ex = extract();
    ex.on('entry', (h, body, next) => {
      const name = h.name.replace(/\/$/, '');
      if (rootName === null) rootName = name;
      const rel = name === rootName ? '' : name.slice(rootName.length + 1);
      const depth = rel === '' ? 0 : rel.split('/').length;
      // A directory shows its children; a file shows itself.
      if ((depth === 1 || (depth === 0 && h.type !== 'directory')) && entries.length < MAX_LIST_ENTRIES) {
        entries.push({
          path: path.posix.join(target === '/' ? '/' : path.posix.dirname(target), name),
          name: path.posix.basename(name),
          type: h.type === 'directory' ? 'dir' : h.type === 'file' ? 'file' : h.type === 'symlink' ? 'symlink' : 'other',
          size: h.size ?? 0,
          lastModified: (h.mtime ?? new Date(0)).toISOString(),
          nativePermissions: permissionString(h.mode ?? 0),
        });
      } else if (depth === 1) truncated = true;
      body.on('end', next);
      body.resume();
    });
    await pipeline(stream, ex).catch((err) => mapDockerError(err, target));
    return { entries, truncated };
  }

  /** Copy one file out of the pod into `stagedPath`; a directory is refused. Returns its size. */
  async fetch(containerId: string, p: string, stagedPath: string): Promise<number> {
    const target = containerPath(p);
    const stream = await this.api.getArchive(containerId, target).catch((err) => mapDockerError(err, target));
    let size = -1;
    let kind = '';
    const ex = extract();
    ex.on('entry', (h, body, next) => {
      if (kind === '') {
        kind = h.type ?? 'other';
        if (kind === 'file') {
          size = h.size ?? 0;
          pipeline(body, createWriteStream(stagedPath, { mode: 0o600 })).then(() => next(), (e) => next(e));
          return;
        }
      }
      body.on('end', next);
      body.resume();
    });
    await pipeline(stream, ex).catch((err) => mapDockerError(err, target));
    if (kind !== 'file') throw new StorageError('NOT_A_FILE', `path: "${target}" is ${kind === 'directory' ? 'a directory; list it instead' : 'not a regular file'}`);
    return size;
  }
}
