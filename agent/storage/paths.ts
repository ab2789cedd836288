import { constants } from 'node:fs';
import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../../shared/storage.js';

// Every path a user names inside an area goes through here. A user path is relative to the
// area's root; it may not be absolute, hold `..` or NUL, or pass through a symbolic link that
// leads out of the area. Reads resolve links and check where they land; writes refuse any
// link on the way, so nothing is ever created outside the area.

/** The segments of a user path ('' or '/' is the root); throws BAD_PATH for what can never be inside. */
export function segmentsOf(userPath: string): string[] {
  if (userPath.includes('\0')) throw new StorageError('BAD_PATH', 'path: must not contain NUL');
  if (userPath.startsWith('/') && userPath.replace(/^\/+/, '') !== '') {
    throw new StorageError('BAD_PATH', `path: "${userPath}" must be relative to the volume's root, not absolute`);
  }
  const parts = userPath.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new StorageError('BAD_PATH', `path: "${userPath}" must not contain ".."`);
  return parts;
}

/** The display form of a user path: segments joined by '/', no leading slash. */
export function cleanPath(userPath: string): string {
  return segmentsOf(userPath).join('/');
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root + path.sep);
}

/**
 * The real path of something that exists inside `root`, following links only while they stay
 * inside. FILE_NOT_FOUND when it does not exist, BAD_PATH when it leads out.
 */
export async function resolveExisting(root: string, userPath: string): Promise<string> {
  const realRoot = await realpath(root);
  const joined = path.join(realRoot, ...segmentsOf(userPath));
  let real: string;
  try {
    real = await realpath(joined);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      // A dangling link that points out is still a link out; say not found either way.
      throw new StorageError('FILE_NOT_FOUND', `path: "${cleanPath(userPath)}" does not exist`);
    }
    throw err;
  }
  if (!inside(realRoot, real)) throw new StorageError('BAD_PATH', `path: "${cleanPath(userPath)}" leads outside the volume through a symbolic link`);
  return real;
}

/**
 * Make the directories `parts` below `root` as needed (each new one handed to `owner`); none of
 * them may be a symbolic link or a file. Returns the deepest one.
 */
export async function ensureDirs(root: string, parts: string[], owner?: (dir: string) => Promise<unknown>): Promise<string> {
  let at = await realpath(root);
  for (const part of parts) {
    at = path.join(at, part);
    const st = await lstat(at).catch(() => null);
    if (!st) {
      await mkdir(at, { mode: 0o755 });
      await owner?.(at);
    } else if (st.isSymbolicLink()) {
      throw new StorageError('BAD_PATH', `path: "${parts.join('/')}" goes through a symbolic link`);
    } else if (!st.isDirectory()) {
      throw new StorageError('BAD_PATH', `path: "${parts.join('/')}" goes through a file`);
    }
  }
  return at;
}

/**
 * Where a new file at `userPath` goes: its parent directories are made as needed, and none of
 * them, nor the target, may be a symbolic link. Returns the target path.
 */
export async function prepareWrite(root: string, userPath: string, owner?: (dir: string) => Promise<unknown>): Promise<string> {
  const parts = segmentsOf(userPath);
  if (parts.length === 0) throw new StorageError('BAD_PATH', 'path: a file name is required');
  const target = path.join(await ensureDirs(root, parts.slice(0, -1), owner), parts[parts.length - 1]!);
  const st = await lstat(target).catch(() => null);
  if (st?.isSymbolicLink()) throw new StorageError('BAD_PATH', `path: "${parts.join('/')}" is a symbolic link`);
  if (st?.isDirectory()) throw new StorageError('BAD_PATH', `path: "${parts.join('/')}" is a directory`);
  return target;
}

/** open(2) flags for writing a file that must not be a link (checked above; O_NOFOLLOW closes the race). */
export const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/** "rwxr-xr-x" from a mode. */
export function permissionString(mode: number): string {
  const bits = 'rwxrwxrwx';
  return [...bits].map((c, i) => (mode & (1 << (8 - i)) ? c : '-')).join('');
}
