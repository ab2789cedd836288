import type { CoordinatorConfig } from '../shared/config.js';
import { LoginLimits } from './api/login-limits.js';
import { loadSigningKeys, type SigningKeys } from './identity/keys.js';
import { ImageStore } from './store/images.js';
import { Keys } from './store/keys.js';
import { NodeStore } from './store/nodes.js';
import { PodStore } from './store/pods.js';
import { ShareStore } from './store/shares.js';
import type { Redis } from './store/redis.js';
import { TemplateStore } from './store/templates.js';
import { TenantStore } from './store/tenants.js';
import { UserStore } from './store/users.js';

export interface Stores {
  pods: PodStore;
  images: ImageStore;
  nodes: NodeStore;
  tenants: TenantStore;
  users: UserStore;
  templates: TemplateStore;
  volumes: ShareStore<'volume'>;
  snapshots: ShareStore<'snapshot'>;
  keys: SigningKeys;
  /** Password-login limits, counted in Redis across coordinators. */
  logins: LoginLimits;
}

/** The primary tenant's base URL: PODS_PUBLIC_URL, else where the API listens. */
export function primaryBaseUrl(config: CoordinatorConfig): string {
  return config.publicUrl ?? `${config.tlsCertFile ? 'https' : 'http'}://${config.listenHost}:${config.listenPort}`;
}

/**
 * Every store over one Redis connection and key prefix. `origin`: the coordinator run that
 * makes the pod changes (named on the change stream; none for the CLI).
 */
export async function openStores(redis: Redis, config: CoordinatorConfig, opts: { origin?: string } = {}): Promise<Stores> {
  const prefix = config.redisPrefix;
  return {
    pods: new PodStore(redis, prefix, { origin: opts.origin ?? '' }),
    images: new ImageStore(redis, prefix),
    nodes: new NodeStore(redis, prefix),
    tenants: new TenantStore(redis, prefix, { tenant_id: config.tenant, base_url: primaryBaseUrl(config), description: 'primary tenant', created_by: config.adminUser }),
    users: new UserStore(redis, prefix),
    templates: new TemplateStore(redis, prefix),
    volumes: new ShareStore(redis, prefix, 'volume'),
    snapshots: new ShareStore(redis, prefix, 'snapshot'),
    keys: await loadSigningKeys(redis, new Keys(prefix).signingKey()),
    logins: new LoginLimits(redis, prefix, {
      maxFailuresPerUserAddress: config.loginMaxFailuresPerUserAddress,
      maxFailuresPerUser: config.loginMaxFailuresPerUser,
      maxAttemptsPerAddress: config.loginMaxAttemptsPerAddress,
      windowS: config.loginWindowS,
      concurrentHashes: config.loginConcurrentHashes,
      queuedHashes: 64,
    }),
  };
}
