import { forbidden, notFound } from '../../shared/errors.js';
import type { PermLevel, PodRecord, PodStore } from '../store/pods.js';
import type { Identity } from './auth.js';

const RANK: Record<PermLevel, number> = { READ: 1, USER: 2, ADMIN: 3 };

export function levelOf(identity: Identity, perms: Record<string, PermLevel>): PermLevel | null {
  if (identity.admin) return 'ADMIN';
  return perms[identity.username] ?? null;
}

export function hasLevel(have: PermLevel | null, need: PermLevel): boolean {
  return have !== null && RANK[have] >= RANK[need];
}

/** The caller's level on an object, or a 403 naming what was needed. */
export function requireLevel(identity: Identity, perms: Record<string, PermLevel>, need: PermLevel, what: string): PermLevel {
  return requireHeld(levelOf(identity, perms), need, what);
}

function requireHeld(level: PermLevel | null, need: PermLevel, what: string): PermLevel {
  if (!hasLevel(level, need)) throw forbidden(`you need ${need} permission on ${what} for this; you have ${level ?? 'none'}`);
  return level!;
}

/**
 * Load a pod of the caller's tenant and check the caller's level on it. Pods of other
 * tenants are invisible (404), and so are deleted ones whose teardown goes on (as in Tapis);
 * a pod the caller has too little access to is a 403.
 */
export async function loadPodFor(store: PodStore, identity: Identity, podId: string, need: PermLevel): Promise<PodRecord> {
  // Both reads in one round trip to Redis (issued together, they go out in one write).
  const [rec, level] = await Promise.all([
    store.get(identity.tenant, podId),
    identity.admin ? ('ADMIN' as const) : store.permission(identity.tenant, podId, identity.username),
  ]);
  if (!rec || rec.desired.deleting) throw notFound(`pod "${podId}" was not found`);
  requireHeld(level, need, `pod "${podId}"`);
  return rec;
}
