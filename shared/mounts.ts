import { z } from 'zod';

// `volume_mounts` on pods and template tags, in both shapes Tapis has used:
//   1.9:   keyed by volume name:  {"data": {"type": "tapisvolume", "mount_path": "/data", "sub_path": ""}}
//   newer: keyed by mount path:   {"/data": {"type": "tapisvolume", "source_id": "data", "sub_path": "", "read_only": false}}
// A key that starts with "/" is a mount path. Both are stored as the user sent them (so a
// client reads back what it wrote) and turned into one list of mounts here.

const shareId = z
  .string()
  .min(3, 'must be 3 to 64 characters')
  .max(64, 'must be 3 to 64 characters')
  .regex(/^[a-z][a-z0-9]+$/, 'must start with a lowercase letter and hold only lowercase letters and digits');

/** Ids of volumes and snapshots, as Tapis allows them (like pod ids). */
export const ShareId = shareId;

const MountType = z.enum(['tapisvolume', 'tapissnapshot'], 'type must be "tapisvolume" or "tapissnapshot" (pvc and ephemeral mounts are not offered on this site)');

const subPath = z.string().max(1024).default('');

/** An absolute path inside a container, other than / and without "..": mount paths, data_dir. */
export function containerDir(what: string) {
  return z
    .string()
    .max(1024)
    .regex(/^\/[^\0]*$/, `${what} must be an absolute path`)
    .refine((p) => !p.split('/').includes('..'), `${what} must not contain ".."`)
    .refine((p) => p.replace(/\/+$/, '') !== '', `${what} cannot be /`);
}

const mountPath = containerDir('a mount path');

const ByName = z.strictObject({
  type: MountType.default('tapisvolume'),
  mount_path: mountPath.default('/tapis_volume_mount'),
  sub_path: subPath,
  read_only: z.boolean().optional(),
});

const ByPath = z.strictObject({
  type: MountType.default('tapisvolume'),
  source_id: shareId,
  sub_path: subPath,
  read_only: z.boolean().default(false),
});

export const MAX_VOLUME_MOUNTS = 8;

/** The user's `volume_mounts`, validated entry by entry in whichever shape each key says. */
export const VolumeMounts = z
  .record(z.string().max(1024), z.unknown())
  .superRefine((v, ctx) => {
    if (Object.keys(v).length > MAX_VOLUME_MOUNTS) ctx.addIssue({ code: 'custom', message: `at most ${MAX_VOLUME_MOUNTS} volume_mounts` });
    for (const [key, value] of Object.entries(v)) {
      const byPath = key.startsWith('/');
      const keyCheck = byPath ? mountPath.safeParse(key) : shareId.safeParse(key);
      if (!keyCheck.success) ctx.addIssue({ code: 'custom', path: [key], message: keyCheck.error.issues[0]!.message });
      const parsed = (byPath ? ByPath : ByName).safeParse(value);
      if (!parsed.success) for (const i of parsed.error.issues) ctx.addIssue({ code: 'custom', path: [key, ...i.path.map(String)], message: i.message });
    }
  });
export type VolumeMounts = z.infer<typeof VolumeMounts>;

export interface PodMount {
  kind: 'volume' | 'snapshot';
  sourceId: string;
  subPath: string;
  mountPath: string;
  readOnly: boolean;
}

/** The mounts of a pod, one list whatever the shape; a snapshot is always read-only. */
export function podMounts(v: Record<string, unknown>): PodMount[] {
  const out: PodMount[] = [];
  for (const [key, value] of Object.entries(v)) {
    if (key.startsWith('/')) {
      const m = ByPath.parse(value);
      out.push({ kind: m.type === 'tapissnapshot' ? 'snapshot' : 'volume', sourceId: m.source_id, subPath: m.sub_path, mountPath: key, readOnly: m.read_only || m.type === 'tapissnapshot' });
    } else {
      const m = ByName.parse(value);
      out.push({ kind: m.type === 'tapissnapshot' ? 'snapshot' : 'volume', sourceId: key, subPath: m.sub_path, mountPath: m.mount_path, readOnly: (m.read_only ?? false) || m.type === 'tapissnapshot' });
    }
  }
  return out;
}

/** Cross-entry rules: two mounts (or a mount and the data directory) may not share a path. */
export function checkMountPaths(mounts: PodMount[], dataDir: string | undefined): string | null {
  const seen = new Set<string>(dataDir ? [dataDir.replace(/\/+$/, '')] : []);
  for (const m of mounts) {
    const p = m.mountPath.replace(/\/+$/, '');
    if (seen.has(p)) return `volume_mounts: ${m.mountPath} is mounted twice${dataDir && p === dataDir.replace(/\/+$/, '') ? ' (it is the pod\'s data_dir)' : ''}`;
    seen.add(p);
    if (m.subPath.split('/').includes('..') || m.subPath.startsWith('/') && m.subPath.replace(/^\/+/, '') !== '' ) {
      return `volume_mounts.${m.sourceId}.sub_path: "${m.subPath}" must be a path inside the volume (relative, without "..")`;
    }
  }
  return null;
}
