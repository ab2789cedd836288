import { isIP } from 'node:net';
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

// Who may reach a networking entry (the reference spec's fields; see README "Pod access").
// Only what a user sets is stored and shown; an unset field means the spec's default.
const cidr = z.string().max(64).refine(isCidr, 'must be an IP address or a CIDR such as 192.168.1.0/24');
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const headerName = z.string().regex(HEADER_NAME, 'must be an HTTP header name');
// A header value is sent as is: no control characters (CR/LF would split headers) and no Caddy placeholders.
const headerValue = z.string().max(1024).regex(/^[\x20-\x7e]*$/, 'must be printable ASCII').refine((v) => !/[{}]/.test(v), 'must not contain { or }');
const ORIGIN = /^https?:\/\/[a-z0-9.-]{1,253}(:\d{1,5})?$/i;
/** Permission holders of the pod, by the least level they hold (as Tapis names them). */
export const AUTH_HOLDERS = { AUTHORIZED_READS: 'READ', AUTHORIZED_USERS: 'USER', AUTHORIZED_ADMINS: 'ADMIN' } as const;

export const NetworkAccess = z.strictObject({
  ip_allow_list: z.array(cidr).max(64, 'at most 64 entries').optional(),
  tapis_auth: z.boolean().optional(),
  tapis_auth_response_headers: z
    .record(headerName, headerValue)
    .refine((h) => Object.keys(h).length <= 16, 'at most 16 headers')
    .optional(),
  tapis_auth_allowed_users: z
    .array(
      z.string().refine(
        (u) => u === '*' || Object.hasOwn(AUTH_HOLDERS, u) || /^[A-Za-z_][A-Za-z0-9_.@-]{0,63}$/.test(u),
        'entries are usernames, "*", AUTHORIZED_READS, AUTHORIZED_USERS or AUTHORIZED_ADMINS (patterns are not supported)',
      ),
    )
    .max(256, 'at most 256 entries')
    .optional(),
  tapis_auth_return_path: z
    .string()
    .max(1024)
    .regex(/^\/(?![\/\\])[\x21-\x7e]*$/, 'must be a path on the pod starting with one "/" (no spaces)')
    .optional(),
  cors_allow_origins: z
    .array(z.string().refine((o) => o === '*' || ORIGIN.test(o), 'entries are origins such as https://example.org (scheme, host, optional port) or "*"'))
    .max(64, 'at most 64 entries')
    .optional(),
  cors_allow_methods: z.array(z.string().regex(/^(\*|[A-Za-z]{1,32})$/, 'entries are HTTP methods such as GET, or "*"')).max(32).optional(),
  cors_allow_headers: z.array(z.string().refine((h) => h === '*' || HEADER_NAME.test(h), 'entries are HTTP header names, or "*"')).max(64).optional(),
  cors_allow_credentials: z.boolean().optional(),
  cors_max_age: z.number().int().min(0, 'must be 0 to 86400 seconds').max(86400, 'must be 0 to 86400 seconds').optional(),
  tapis_ui_uri: z.string().max(2048).regex(/^[\x20-\x7e]*$/, 'must be printable ASCII').optional(),
  tapis_ui_uri_redirect: z.boolean().optional(),
  tapis_ui_uri_description: z.string().max(1024).regex(/^[\x20-\x7e]*$/, 'must be printable ASCII').optional(),
});
export type NetworkAccess = z.infer<typeof NetworkAccess>;
export const ACCESS_FIELDS = Object.keys(NetworkAccess.shape) as Array<keyof NetworkAccess>;

export const Networking = z
  .strictObject({
    protocol: Protocol.default('http'),
    port: z.number().int().min(1, 'must be between 1 and 65535').max(65535, 'must be between 1 and 65535').default(5000),
    url: z.string().optional(), // set by the server; ignored on input
    /** Our extension: serve this TCP entry on a port of its own (for protocols that cannot send TLS SNI). */
    dedicated_port: z.boolean().optional(),
    ...NetworkAccess.shape,
  })
  .superRefine((n, ctx) => {
    // Logins, cookies and CORS are HTTP; a TCP entry would silently ignore them.
    if (n.protocol === 'http') return;
    for (const f of ACCESS_FIELDS) {
      if (f === 'ip_allow_list' || !(f.startsWith('tapis_auth') || f.startsWith('cors_'))) continue;
      if (n[f] !== undefined && n[f] !== false) ctx.addIssue({ code: 'custom', path: [f], message: `applies only to protocol "http", not "${n.protocol}"` });
    }
  });
export type Networking = z.infer<typeof Networking>;

/** The access fields a networking entry sets (the ones stored and shown). */
export function accessOf(n: Partial<NetworkAccess>): NetworkAccess {
  const out: Record<string, unknown> = {};
  for (const f of ACCESS_FIELDS) if (n[f] !== undefined) out[f] = n[f];
  return out as NetworkAccess;
}

/** An IPv4 or IPv6 address, or one with a /prefix that fits its family. */
export function isCidr(value: string): boolean {
  const [ip = '', prefix, ...rest] = value.split('/');
  const family = isIP(ip);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

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

// Health checks in Tapis' newer shape: each check is an HTTP GET of a path on one of the pod's
// networking ports, a TCP connect to one, or a command run in the container, with timings.
const checkPort = z.number().int().min(1).max(65535);
export const HealthCheck = z
  .strictObject({
    http: z.strictObject({ path: z.string().max(1024).regex(/^\/[\x21-\x7e]*$/, 'must be a path such as /healthz').default('/'), port: checkPort }).optional(),
    tcp: z.strictObject({ port: checkPort }).optional(),
    exec: z.strictObject({ command: z.array(z.string().max(4096)).min(1).max(64) }).optional(),
    initial_delay_seconds: z.number().int().min(0).max(3600).default(0),
    period_seconds: z.number().int().min(1).max(3600).default(10),
    timeout_seconds: z.number().int().min(1).max(600).default(2),
    failure_threshold: z.number().int().min(1).max(100).default(3),
  })
  .refine((c) => [c.http, c.tcp, c.exec].filter(Boolean).length === 1, 'give exactly one of http, tcp or exec');
export type HealthCheck = z.infer<typeof HealthCheck>;
/**
 * startup: must pass (within failure_threshold tries) before the others start; readiness: the pod
 * is RUNNING and routed only once it passes; liveness: failing failure_threshold times in a row
 * restarts the container, with a growing pause between restarts.
 */
export const HealthChecks = z.strictObject({ startup: HealthCheck.optional(), readiness: HealthCheck.optional(), liveness: HealthCheck.optional() });
export type HealthChecks = z.infer<typeof HealthChecks>;

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
  healthchecks: HealthChecks.optional(),
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
  healthchecks: HealthChecks.optional(),
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
  networking: z.record(z.string(), z.object({ protocol: Protocol, port: z.number().int(), dedicated_port: z.boolean().optional(), ...NetworkAccess.partial().shape })),
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
  healthchecks: HealthChecks.optional(),
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
  /** The kernel killed the container for passing its memory limit. */
  oomKilled: z.boolean().optional(),
  /** How many times the host restarted this instance's container for failing its liveness check. */
  restarts: z.number().int().min(0).optional(),
  message: z.string().max(2000).optional(),
  health: Health.default('unknown'),
  hostPorts: z.record(z.string(), z.number().int()).default({}),
  at: z.string(),
  /**
   * The order of this report among its agent's reports: it only grows, within an agent's run and
   * from one run to the next. Of two reports of one instance, the coordinator keeps the later
   * even when it stores them out of order. (None from agents older than it.)
   */
  seq: z.number().int().nonnegative().optional(),
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
