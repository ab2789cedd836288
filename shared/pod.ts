import { z } from 'zod';
import { containerDir, VolumeMounts } from './mounts.js';

// The pod model: what users send (NewPod, UpdatePod), what the coordinator
// stores (PodSpec, Desired, Placement) and what agents report (Observed).

export const RESERVED_POD_IDS = new Set([
  'templates', 'images', 'volumes', 'snapshots', 'admin', 'jupyter', 'healthcheck', 'openapi', 'agents', 'nodes',
]);

export const Protocol = z.enum(['http', 'tcp', 'postgres', 'local_only']);
export type Protocol = z.infer<typeof Protocol>;

export const MAX_NETWORKING_ENTRIES = 3;

export const Networking = z.strictObject({
  protocol: Protocol.default('http'),
  port: z.number().int().min(1, 'must be between 1 and 65535').max(65535, 'must be between 1 and 65535').default(5000),
  url: z.string().optional(), // set by the server; ignored on input
  /** Our extension: serve this TCP entry on a port of its own (for protocols that cannot send TLS SNI). */
  dedicated_port: z.boolean().optional(),
});
export type Networking = z.infer<typeof Networking>;

export const Resources = z.strictObject({
  cpu_request: z.number().int().min(1).optional(),
  cpu_limit: z.number().int().min(1).optional(),
  mem_request: z.number().int().min(1).optional(),
  mem_limit: z.number().int().min(1).optional(),
  gpus: z.number().int().min(0).max(0, 'gpus are not available on this site').optional(),
});
export type Resources = z.infer<typeof Resources>;

export const RESOURCE_DEFAULTS = { cpu_request: 250, cpu_limit: 2000, mem_request: 256, mem_limit: 3072, gpus: 0 };
export type FullResources = typeof RESOURCE_DEFAULTS;

/** Site bounds for resources; requests must also stay <= their limits. */
export const RESOURCE_MAX = { cpu_request: 8000, cpu_limit: 8000, mem_request: 16384, mem_limit: 16384 };

const podId = z
  .string()
  .min(3, 'must be 3 to 64 characters')
  .max(64, 'must be 3 to 64 characters')
  .regex(/^[a-z][a-z0-9]+$/, 'must start with a lowercase letter and hold only lowercase letters and digits')
  .refine((id) => !RESERVED_POD_IDS.has(id), 'is a reserved word');

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const environment = z
  .record(z.string().regex(envName, 'environment variable names must match [A-Za-z_][A-Za-z0-9_]*'), z.string().max(32_768))
  .refine((e) => Object.keys(e).length <= 100, 'at most 100 environment variables');

const description = z
  .string()
  .max(255, 'description must be at most 255 characters')
  .regex(/^[\x20-\x7e]*$/, 'description must be printable ASCII');

const networkingMap = z
  .record(z.string().regex(/^[a-z][a-z0-9]{0,15}$/, 'networking names must be 1-16 lowercase letters or digits, starting with a letter'), Networking)
  .refine((n) => Object.keys(n).length >= 1, 'networking needs at least one entry')
  .refine((n) => Object.keys(n).length <= MAX_NETWORKING_ENTRIES, `networking allows at most ${MAX_NETWORKING_ENTRIES} entries`);

const imageRef = z
  .string()
  .max(255)
  .regex(/^$|^[a-z0-9][a-z0-9._\/-]*(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$/, 'image must be a Docker image reference such as name:tag');

const strings = z.array(z.string().max(4096)).max(64);
const dataDir = containerDir('data_dir');
const timeToStop = z.number().int();

/** Fields a user may set on create (tapipy sends only these). */
export const NewPod = z.strictObject({
  pod_id: podId,
  image: imageRef.default(''),
  template: z.string().max(128).default(''),
  pod_template: z.string().max(128).optional(), // older name of `template`
  description: description.default(''),
  command: strings.optional(),
  arguments: strings.optional(),
  environment_variables: environment.default({}),
  status_requested: z.enum(['ON', 'OFF']).default('ON'),
  volume_mounts: VolumeMounts.default({}),
  /** Our extension: a directory kept across restarts (a template's data_dir, for a pod of your own image). */
  data_dir: dataDir.optional(),
  /** Our extension: when the pod is deleted, keep its data directory as a volume named like the pod. */
  keep_data: z.boolean().optional(),
  time_to_stop_default: timeToStop.default(43200),
  time_to_stop_instance: timeToStop.nullable().optional(),
  networking: networkingMap.default({ default: { protocol: 'http', port: 5000 } }),
  resources: Resources.default({}),
  compute_queue: z.literal('default', 'compute_queue must be "default"').default('default'),
});
export type NewPod = z.infer<typeof NewPod>;

/** Fields a user may change with PUT; they take effect on the next (re)start. */
export const UpdatePod = z.strictObject({
  description: description.optional(),
  command: strings.optional(),
  arguments: strings.optional(),
  environment_variables: environment.optional(),
  status_requested: z.enum(['ON', 'OFF', 'RESTART']).optional(),
  volume_mounts: VolumeMounts.optional(),
  keep_data: z.boolean().optional(),
  time_to_stop_default: timeToStop.optional(),
  time_to_stop_instance: timeToStop.nullable().optional(),
  networking: networkingMap.optional(),
  resources: Resources.optional(),
  compute_queue: NewPod.shape.compute_queue.optional(),
  image: imageRef.optional(),
  template: z.string().max(128).optional(),
});
export type UpdatePod = z.infer<typeof UpdatePod>;

/** Resources with every default filled in, as stored and shown. */
export const StoredResources = z.object({
  cpu_request: z.number().int(),
  cpu_limit: z.number().int(),
  mem_request: z.number().int(),
  mem_limit: z.number().int(),
  gpus: z.number().int(),
});

/** The stored user spec, owned by the API. */
export const PodSpec = z.object({
  pod_id: z.string(),
  tenant: z.string(),
  owner: z.string(),
  image: z.string(),
  template: z.string(),
  description: z.string(),
  command: z.array(z.string()).optional(),
  arguments: z.array(z.string()).optional(),
  environment_variables: z.record(z.string(), z.string()),
  volume_mounts: z.record(z.string(), z.unknown()),
  time_to_stop_default: z.number().int(),
  time_to_stop_instance: z.number().int().nullable().optional(),
  networking: z.record(z.string(), z.object({ protocol: Protocol, port: z.number().int(), dedicated_port: z.boolean().optional() })),
  resources: StoredResources,
  compute_queue: z.string(),
  creation_ts: z.string(),
  update_ts: z.string(),
  // From the template, when there is one.
  user: z.string().optional(),
  init: z.array(z.array(z.string())).optional(),
  readiness: z.object({ exec: z.array(z.string()) }).optional(),
  data_dir: z.string().optional(),
  keep_data: z.boolean().optional(),
  /** Whether a host may pull the image when it does not have it (false: only a copy already there runs). */
  image_pull: z.boolean().optional(),
  /** The tag version the pod was derived from ("id:tag@timestamp"), and the fields the user set. */
  template_version: z.string().optional(),
  user_fields: z.record(z.string(), z.unknown()).optional(),
});
export type PodSpec = z.infer<typeof PodSpec>;

export const StatusRequested = z.enum(['ON', 'OFF', 'RESTART']);
export type StatusRequested = z.infer<typeof StatusRequested>;

/** Desired state: written only by the coordinator. */
export const Desired = z.object({
  status_requested: StatusRequested,
  /** Random per pod creation: a re-created pod with the same id never adopts an old container. */
  uid: z.string(),
  /** Bumped for every new container instance; agents ignore commands older than what they run. */
  generation: z.number().int().min(1),
  deleting: z.boolean().default(false),
  start_instance_ts: z.string().nullable().default(null),
  time_to_stop_ts: z.string().nullable().default(null),
});
export type Desired = z.infer<typeof Desired>;

/** Which node runs the pod: written by the scheduler. */
export const Placement = z.object({ nodeId: z.string(), at: z.string() });
export type Placement = z.infer<typeof Placement>;

export const Phase = z.enum(['creating', 'running', 'exited', 'failed', 'removing', 'removed']);
export type Phase = z.infer<typeof Phase>;

export const Health = z.enum(['unknown', 'healthy', 'unhealthy']);
export type Health = z.infer<typeof Health>;

/** Observed state: written only from agent reports. */
export const Observed = z.object({
  nodeId: z.string(),
  uid: z.string(),
  generation: z.number().int().min(1),
  phase: Phase,
  containerId: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  exitCode: z.number().int().optional(),
  message: z.string().max(2000).optional(),
  health: Health.default('unknown'),
  hostPorts: z.record(z.string(), z.number().int()).default({}),
  at: z.string(),
});
export type Observed = z.infer<typeof Observed>;

export function podKey(tenant: string, podId: string): string {
  return `${tenant}/${podId}`;
}

export function podHost(podId: string, netName: string, tenant: string, baseDomain: string): string {
  const label = netName === 'default' ? podId : `${podId}-${netName}`;
  return `${label}.pods.${tenant}.${baseDomain}`;
}

export function withResourceDefaults(r: Resources | undefined): FullResources {
  return { ...RESOURCE_DEFAULTS, ...Object.fromEntries(Object.entries(r ?? {}).filter(([, v]) => v !== undefined)) };
}

/** Cross-field checks zod cannot express per field; returns `field: reason` or null. */
export function checkResources(r: FullResources): string | null {
  for (const [k, max] of Object.entries(RESOURCE_MAX) as [keyof typeof RESOURCE_MAX, number][]) {
    if (r[k] > max) return `resources.${k}: must be at most ${max} on this site`;
  }
  if (r.cpu_request > r.cpu_limit) return 'resources.cpu_request: must be less than or equal to resources.cpu_limit';
  if (r.mem_request > r.mem_limit) return 'resources.mem_request: must be less than or equal to resources.mem_limit';
  return null;
}

export function checkTimeToStop(field: string, value: number | null | undefined, minS: number): string | null {
  if (value === undefined || value === null || value === -1) return null;
  if (value < minS) return `${field}: must be -1 (unlimited) or at least ${minS} seconds`;
  return null;
}
