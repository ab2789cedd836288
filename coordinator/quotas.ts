import type { Quota, QuotaConfig } from '../shared/config.js';
import { PodsError } from '../shared/errors.js';
import type { Identity } from './api/auth.js';
import type { PodRecord, PodStore } from './store/pods.js';
import type { ShareStore } from './store/shares.js';

// Quotas, per user and per tenant, from config (PODS_QUOTAS, JSON):
//   {"user": {...}, "tenant": {...}, "users": {"TENANT/USER": {...}}, "tenants": {"TENANT": {...}}}
// each {...} naming any of pods, running_pods, cpu_milli, memory_mb, volumes, volume_mb. A
// specific entry replaces the default for that user or tenant, limit by limit. Running pods,
// CPU and memory count the pods asked to be ON (their requests); volume_mb sums size_limit.
// Site admins are not counted against quotas. A request past a limit is a 403 naming it.

export type Usage = Required<Quota>;
const ZERO: Usage = { pods: 0, running_pods: 0, cpu_milli: 0, memory_mb: 0, volumes: 0, volume_mb: 0 };

const LABELS: Record<keyof Usage, string> = {
  pods: 'pods',
  running_pods: 'running pods',
  cpu_milli: 'millicores of CPU requested by running pods',
  memory_mb: 'MB of memory requested by running pods',
  volumes: 'volumes',
  volume_mb: 'MB of volume size limits',
};

const on = (r: PodRecord) => r.desired.status_requested !== 'OFF' && !r.desired.deleting;

/** What one pod counts for. */
export function podUsage(r: Pick<PodRecord, 'spec' | 'desired'>): Usage {
  const running = on(r as PodRecord);
  return {
    ...ZERO,
    pods: r.desired.deleting ? 0 : 1,
    running_pods: running ? 1 : 0,
    cpu_milli: running ? r.spec.resources.cpu_request : 0,
    memory_mb: running ? r.spec.resources.mem_request : 0,
  };
}

function add(a: Usage, b: Partial<Usage>): Usage {
  const out = { ...a };
  for (const k of Object.keys(ZERO) as Array<keyof Usage>) out[k] += b[k] ?? 0;
  return out;
}

/** The first limit `after` passes that `before` did not, as a message; null when none. */
export function overQuota(quota: Quota, before: Usage, after: Usage, who: string): string | null {
  for (const k of Object.keys(ZERO) as Array<keyof Usage>) {
    const max = quota[k];
    if (max !== undefined && after[k] > max && after[k] > before[k]) {
      return `quota: ${who} may have at most ${max} ${LABELS[k]} (quota "${k}"); this would make ${after[k]}`;
    }
  }
  return null;
}

export class Quotas {
  constructor(
    private readonly config: QuotaConfig,
    private readonly deps: { pods: PodStore; volumes: ShareStore<'volume'> },
  ) {}

  private quotaOf(id: Identity): { user: Quota; tenant: Quota } {
    return {
      user: { ...this.config.user, ...this.config.users[`${id.tenant}/${id.username}`] },
      tenant: { ...this.config.tenant, ...this.config.tenants[id.tenant] },
    };
  }

  /** What the user and the tenant use now (every pod and volume of the tenant is read once). */
  async usage(tenant: string, username: string): Promise<{ user: Usage; tenant: Usage }> {
    let user = ZERO;
    let all = ZERO;
    for (const podId of await this.deps.pods.listIds(tenant)) {
      const rec = await this.deps.pods.get(tenant, podId);
      if (!rec) continue;
      const u = podUsage(rec);
      all = add(all, u);
      if (rec.spec.owner === username) user = add(user, u);
    }
    for (const volumeId of await this.deps.volumes.ids(tenant)) {
      const rec = await this.deps.volumes.get(tenant, volumeId);
      if (!rec) continue;
      const u = { volumes: 1, volume_mb: rec.size_limit };
      all = add(all, u);
      if (rec.owner === username) user = add(user, u);
    }
    return { user, tenant: all };
  }

  /** Refuse (403) what would take the owner or the tenant past a quota: `change` is what the request adds. */
  async check(id: Identity, owner: string, change: Partial<Usage>): Promise<void> {
    if (id.site) return;
    const q = this.quotaOf({ ...id, username: owner });
    const now = await this.usage(id.tenant, owner);
    const problem =
      overQuota(q.user, now.user, add(now.user, change), `user ${owner}`) ?? overQuota(q.tenant, now.tenant, add(now.tenant, change), `tenant ${id.tenant}`);
    if (problem) throw new PodsError('FORBIDDEN', problem);
  }
}
