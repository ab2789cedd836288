import { z } from 'zod';

// Storage that outlives containers, as the coordinator and agents speak of it: an `Area` is
// one directory under the agent's data root (a pod's data directory, a volume or a
// snapshot), and file operations name a path relative to it. Paths are checked again on the
// agent (agent/storage/paths.ts): the wire shape is a first filter, not the guard.

export const AreaKind = z.enum(['pod', 'volume', 'snapshot']);
export type AreaKind = z.infer<typeof AreaKind>;

const areaId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,127}$/, 'area ids are lowercase letters, digits, _ and -');

export const Area = z.object({ kind: AreaKind, tenant: areaId, id: areaId });
export type Area = z.infer<typeof Area>;

/** The area holding a pod's data directory: one per pod creation (its uid), so a re-created pod starts empty. */
export function podDataArea(tenant: string, podId: string, uid: string): Area {
  return { kind: 'pod', tenant, id: `${podId}-${uid}` };
}

/** A path inside an area or a container, as sent on the wire. */
export const WirePath = z.string().max(4096);

/** One entry of a listing, in the shape Tapis answers (FileModel). */
export const FileEntry = z.object({
  path: z.string(),
  name: z.string(),
  type: z.enum(['file', 'dir', 'symlink', 'other']),
  size: z.number().int().min(0),
  lastModified: z.string(),
  nativePermissions: z.string(),
});
export type FileEntry = z.infer<typeof FileEntry>;

/** Where a pod's container gets storage: an area mounted at `target`. */
export const Mount = z.object({
  area: Area,
  /** Path inside the area to mount ('' for its root). */
  subPath: WirePath,
  target: z.string().regex(/^\/./, 'mount targets are absolute paths'),
  readOnly: z.boolean(),
  /** Make the area's root owned by the container's user when it is created (a pod's data directory). */
  ownedByPod: z.boolean().default(false),
});
export type Mount = z.infer<typeof Mount>;

/** Why a storage or file request failed, as a stable code the coordinator maps to an HTTP status. */
export const StorageErrorCode = z.enum([
  'BAD_PATH', // traversal, absolute, or a symlink out of the area: 400
  'FILE_NOT_FOUND', // 404
  'AREA_NOT_FOUND', // 404 (the volume's directory is not on this host)
  'AREA_FULL', // the write would pass the size limit: 413
  'NOT_A_FILE', // 400
  'TOO_LARGE', // a listing or transfer past the agent's bounds: 413
  'POD_NOT_RUNNING', // 409
  'EXEC_FAILED', // 500
]);
export type StorageErrorCode = z.infer<typeof StorageErrorCode>;

/** Thrown by agent handlers; the peer sends its code in the error frame. */
export class StorageError extends Error {
  constructor(readonly code: StorageErrorCode, message: string) {
    super(message);
    this.name = 'StorageError';
  }
}

/** Bytes per chunk of a file moved over the link (base64 keeps a frame under MAX_FRAME_BYTES). */
export const CHUNK_BYTES = 512 * 1024;

// ---- coordinator -> agent requests and their replies

export const AreaCreate = z.object({ area: Area });
export const AreaDelete = z.object({ area: Area });
export const AreaUsage = z.object({ area: Area });
export const UsageReply = z.object({ bytes: z.number().int().min(0), files: z.number().int().min(0) });
export type UsageReply = z.infer<typeof UsageReply>;

export const AreaList = z.object({ area: Area, path: WirePath, recursive: z.boolean().default(false) });
export const FileList = z.object({ entries: z.array(FileEntry), truncated: z.boolean() });
export type FileList = z.infer<typeof FileList>;

export const AreaRead = z.object({ area: Area, path: WirePath, offset: z.number().int().min(0), length: z.number().int().min(1).max(CHUNK_BYTES) });
export const FileChunk = z.object({ data: z.string(), size: z.number().int().min(0), eof: z.boolean() });
export type FileChunk = z.infer<typeof FileChunk>;

/** Copy a path of one area into another (a snapshot): the copy is made before the reply. */
export const AreaCopy = z.object({ from: Area, path: WirePath, to: Area, destPath: WirePath });
/** Move a whole area (a deleted pod's data kept as a volume). */
export const AreaMove = z.object({ from: Area, to: Area });

/** A piece of an upload, staged on the agent until it is committed. */
export const UploadChunk = z.object({
  transferId: z.string().regex(/^[a-z0-9-]{8,64}$/),
  offset: z.number().int().min(0),
  data: z.string().max(Math.ceil(CHUNK_BYTES / 3) * 4),
});
export const UploadToArea = z.object({ transferId: UploadChunk.shape.transferId, area: Area, path: WirePath, limitBytes: z.number().int().min(0).nullable() });
export const UploadAbort = z.object({ transferId: UploadChunk.shape.transferId });
export const Written = z.object({ path: z.string(), bytes: z.number().int().min(0) });
export type Written = z.infer<typeof Written>;
