import { hostname } from 'node:os';
import { z } from 'zod';
import { NodeId } from './protocol.js';
import { isCidr } from './pod.js';

// One schema per process, parsed explicitly by loadXConfig(env) and passed down.
// Nothing here reads process.env at import time.

const port = z.coerce.number().int().min(0).max(65535);
const csv = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

export const StaticToken = z.object({
  token: z.string().min(16),
  tenant: z.string().regex(/^[a-z][a-z0-9-]*$/),
  username: z.string().min(1),
  /** Tenant admin of `tenant`. */
  admin: z.boolean().default(false),
  /** Site admin (implies tenant admin of `tenant`). */
  site_admin: z.boolean().default(false),
});
export type StaticToken = z.infer<typeof StaticToken>;

// Quotas per user and per tenant (PODS_QUOTAS); coordinator/quotas.ts counts and enforces them.
const quotaLimit = z.number().int().min(0);
export const Quota = z.strictObject({
  pods: quotaLimit.optional(),
  running_pods: quotaLimit.optional(),
  cpu_milli: quotaLimit.optional(),
  memory_mb: quotaLimit.optional(),
  volumes: quotaLimit.optional(),
  volume_mb: quotaLimit.optional(),
});
export type Quota = z.infer<typeof Quota>;

export const QuotaConfig = z.strictObject({
  user: Quota.default({ pods: 500, running_pods: 200 }),
  tenant: Quota.default({}),
  users: z.record(z.string().regex(/^[a-z][a-z0-9-]*\/[^/]+$/, 'users are keyed "tenant/username"'), Quota).default({}),
  tenants: z.record(z.string(), Quota).default({}),
});
export type QuotaConfig = z.infer<typeof QuotaConfig>;


export const CoordinatorConfig = z
  .object({
    listenHost: z.string().default('127.0.0.1'),
    listenPort: port.default(8000),
    /** PEM files: when both are set the API and the agents' endpoint are served over TLS (https://, wss://). */
    tlsCertFile: z.string().min(1).optional(),
    tlsKeyFile: z.string().min(1).optional(),
    redisUrl: z.string().url().default('redis://127.0.0.1:6379'),
    redisPrefix: z.string().regex(/^[A-Za-z0-9:_-]*$/).default('pods:'),
    baseDomain: z.string().regex(/^[a-z0-9.-]+$/).default('localhost'),
    tenant: z.string().regex(/^[a-z][a-z0-9-]*$/).default('dev'),
    /** The primary tenant's base URL as clients use it (tapipy matches it character for character). */
    publicUrl: z.string().regex(/^https?:\/\/[^/]+$/, 'PODS_PUBLIC_URL must be scheme://host[:port] with no path').optional(),
    siteId: z.string().regex(/^[a-z][a-z0-9-]*$/).default('pods'),
    tokenTtlS: z.coerce.number().int().min(60).max(30 * 24 * 3600).default(14_400),
    adminUser: z.string().min(1).default('admin'),
    adminToken: z.string().min(16, 'PODS_ADMIN_TOKEN must be at least 16 characters'),
    extraTokens: z.array(StaticToken).default([]),
    /** NODE_ID=TOKEN entries: each token admits one node, under that id only (tokens issued through the API are bound the same way). */
    nodeTokens: csv
      .pipe(z.array(z.string().regex(/^[^=]+=.+$/, 'PODS_NODE_TOKENS entries are NODE_ID=TOKEN: each node token is bound to one node id')))
      .transform((xs) => xs.map((x) => ({ nodeId: x.slice(0, x.indexOf('=')), token: x.slice(x.indexOf('=') + 1) })))
      .pipe(z.array(z.object({ nodeId: NodeId, token: z.string().min(16, 'each PODS_NODE_TOKENS token must be at least 16 characters') })))
      .default([]),
    /** The most capacity a node may claim, unless a site admin sets its own limits for it. */
    nodeMaxCpuMilli: z.coerce.number().int().min(1).default(256_000),
    nodeMaxMemoryMb: z.coerce.number().int().min(1).default(1_048_576),
    /**
     * How far the scheduler may promise a node's CPU and memory beyond what it has (1: not at
     * all; 2: pods may request twice its capacity), for hosts whose pods mostly idle.
     */
    nodeOvercommitCpu: z.coerce.number().min(1).max(16).default(1),
    nodeOvercommitMemory: z.coerce.number().min(1).max(16).default(1),
    /** Where hosts' Caddy endpoints may be (CIDRs): an agent announcing another address is refused. */
    nodeNetworks: csv
      .pipe(z.array(z.string().regex(/^[0-9a-f.:]+\/\d{1,3}$/i, 'PODS_NODE_NETWORKS entries are CIDRs such as 10.0.0.0/8')))
      .default(['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '::1/128', 'fc00::/7']),
    minTimeToStopS: z.coerce.number().int().min(1).default(300),
    /** The port users reach the shared TLS listener on (443 behind an edge; shown in TCP URLs when not 443). */
    publicTlsPort: z.coerce.number().int().min(1).max(65535).default(443),
    /** Dedicated TCP ports for protocols without SNI, as "first-last". */
    tcpPortRange: z
      .string()
      .regex(/^\d{1,5}-\d{1,5}$/, 'PODS_TCP_PORT_RANGE must be first-last, e.g. 20000-20999')
      .transform((s) => s.split('-').map(Number) as [number, number])
      .refine(([a, b]) => a >= 1024 && a <= b && b <= 65535, 'PODS_TCP_PORT_RANGE must lie within 1024-65535, first <= last')
      .default([20000, 20999]),
    reconcileIntervalMs: z.coerce.number().int().min(50).default(1000),
    /** How long a node may be unreachable before its pods are started elsewhere. */
    lostAfterS: z.coerce.number().int().min(1).default(60),
    agentPingMs: z.coerce.number().int().min(100).default(10_000),
    maxBodyBytes: z.coerce.number().int().min(1024).default(1_048_576),
    logMaxBytes: z.coerce.number().int().min(1024).default(10 * 1024 * 1024),
    version: z.string().default('1.0.0'),
    /** The edge Caddy's admin API; unset: no edge (each host's Caddy is reached directly). */
    /** Every host mounts the same filesystem at its PODS_DATA_ROOT (e.g. NFS): data is not tied to one host. */
    sharedStorage: z.enum(['0', '1', 'true', 'false']).default('0').transform((v) => v === '1' || v === 'true'),
    /** The largest file one upload may carry. */
    maxUploadBytes: z.coerce.number().int().min(1024).default(512 * 1024 * 1024),
    edgeAdminUrl: z.string().url().optional(),
    edgeHttpListen: z.string().default('127.0.0.1:80'),
    edgeTlsListen: z.string().default('127.0.0.1:443'),
    /** The address the edge serves dedicated TCP ports on (not one a host's Caddy uses). */
    edgeTcpHost: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/).default('127.0.0.1'),
    /** The built-in templates' directory; unset: templates/ of the installed project. */
    templatesDir: z.string().min(1).optional(),
    /** A site's own tags for built-in templates (e.g. templates/local/ on a site without registry access); they become `latest`. */
    templatesLocalDir: z.string().min(1).optional(),
    /** The template (id or id:tag) ensure_jupyter_pod makes users' Jupyter pods from. */
    jupyterTemplate: z.string().regex(/^[a-z][a-z0-9_-]{0,63}(:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$/, 'PODS_JUPYTER_TEMPLATE must be a template id or id:tag').default('jupyter'),
    /** Password logins: failures of one user from one address, of one user from anywhere, attempts from one address, per window. */
    loginMaxFailuresPerUserAddress: z.coerce.number().int().min(1).default(10),
    loginMaxFailuresPerUser: z.coerce.number().int().min(1).default(100),
    loginMaxAttemptsPerAddress: z.coerce.number().int().min(1).default(60),
    loginWindowS: z.coerce.number().int().min(1).default(900),
    /** Password hashes at once per coordinator (each takes 128 MiB and a core for a fraction of a second). */
    loginConcurrentHashes: z.coerce.number().int().min(1).default(2),
    /**
     * When a host may pull a pod's image it does not have: `pinned` (default) when the allow-list
     * pins its tag or digest, or a site admin's template names it; `any` always; `never`.
     */
    imagePull: z.enum(['pinned', 'any', 'never']).default('pinned'),
    quotas: QuotaConfig.default({ user: { pods: 500, running_pods: 200 }, tenant: {}, users: {}, tenants: {} }),
    /** Where pods run: `agents` (our scheduler places them, each host's agent runs them) or `swarm` (a Docker Swarm places and runs them). */
    backend: z.enum(['agents', 'swarm']).default('agents'),
    /** With PODS_BACKEND=swarm: the Docker API socket of a Swarm manager. */
    swarmDockerSocket: z.string().default('/var/run/docker.sock'),
    /**
     * With PODS_BACKEND=swarm: `local` runs a service from the image ID the manager's engine has for
     * its name (no registry is asked; every node must have loaded the same image), `registry` by its
     * name (each node pulls it, as Swarm does by default).
     */
    swarmImages: z.enum(['local', 'registry']).default('registry'),
    /** With PODS_BACKEND=swarm: the user and pids limit of pods' containers, as the agents' PODS_CONTAINER_USER and PODS_PIDS_LIMIT. */
    swarmContainerUser: z.string().default('1000:1000'),
    swarmPidsLimit: z.coerce.number().int().min(16).default(512),
    /** A Bearer token that may read GET /metrics (Prometheus), besides a site admin's. */
    metricsToken: z.string().min(16, 'PODS_METRICS_TOKEN must be at least 16 characters').optional(),
  })
  .superRefine((c, ctx) => {
    const nodeTokens = c.nodeTokens.map((t) => t.token);
    if (new Set(nodeTokens).size !== nodeTokens.length) ctx.addIssue({ code: 'custom', path: ['nodeTokens'], message: 'PODS_NODE_TOKENS must give each node its own token' });
    const nodeIds = c.nodeTokens.map((t) => t.nodeId);
    if (new Set(nodeIds).size !== nodeIds.length) ctx.addIssue({ code: 'custom', path: ['nodeTokens'], message: 'PODS_NODE_TOKENS names a node id twice' });
    if (!c.tlsCertFile !== !c.tlsKeyFile) {
      ctx.addIssue({ code: 'custom', path: ['tlsCertFile'], message: 'PODS_TLS_CERT_FILE and PODS_TLS_KEY_FILE go together: set both to serve TLS, or neither' });
    }
    if (c.extraTokens.some((t) => t.token === c.adminToken)) {
      ctx.addIssue({ code: 'custom', path: ['extraTokens'], message: 'PODS_EXTRA_TOKENS must not reuse PODS_ADMIN_TOKEN' });
    }
  });
export type CoordinatorConfig = z.infer<typeof CoordinatorConfig>;

export const AgentConfig = z.object({
  coordinatorUrl: z.string().regex(/^wss?:\/\//, 'PODS_COORDINATOR_URL must start with ws:// or wss://'),
  nodeToken: z.string().min(16, 'PODS_NODE_TOKEN must be at least 16 characters'),
  nodeId: NodeId,
  dockerSocket: z.string().default('/var/run/docker.sock'),
  /** `agents`: this agent makes its pods' containers; `swarm`: Docker Swarm makes them, the agent takes charge of those on its engine. */
  backend: z.enum(['agents', 'swarm']).default('agents'),
  caddyAdminUrl: z.string().url().default('http://127.0.0.1:2019'),
  caddyHttpListen: z.string().default('127.0.0.1:8080'),
  /** The shared TLS listener where TCP pods are routed by SNI. */
  caddyTlsListen: z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:]+\]):\d{1,5}$/i, 'PODS_CADDY_TLS_LISTEN must be IP:PORT, e.g. 127.0.0.1:8443').default('127.0.0.1:8443'),
  /** The address dedicated TCP ports listen on: a specific one, never a wildcard. */
  tcpListenHost: z
    .string()
    .regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'PODS_TCP_LISTEN_HOST must be an IPv4 address')
    .refine((h) => h !== '0.0.0.0', 'PODS_TCP_LISTEN_HOST must be a specific address, not 0.0.0.0')
    .default('127.0.0.1'),
  publishHost: z.string().default('127.0.0.1'),
  containerUser: z.string().default('1000:1000'),
  /** "bridge" (Docker's default; isolate pods with dockerd --icc=false) or a network the agent creates without inter-container traffic. */
  dockerNetwork: z.string().default('bridge'),
  logRingBytes: z.coerce.number().int().min(1024).default(10 * 1024 * 1024),
  /** require: no pod starts until the agent's firewall rules keep pods apart; best-effort: warn and run; off: leave the firewall alone. */
  podIsolation: z.enum(['require', 'best-effort', 'off']).default('require'),
  /** CIDRs pods may never send to (the cloud metadata service by default; the coordinator's address is added). */
  blockedEgress: csv
    .pipe(z.array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'PODS_BLOCKED_EGRESS entries are IPv4 CIDRs such as 169.254.169.254/32')))
    .default(['169.254.169.254/32', '100.100.100.200/32']),
  /** The average rate at which one pod's output is shipped to the coordinator; more is dropped with a notice. */
  logRateBytes: z.coerce.number().int().min(1024).default(256 * 1024),
  heartbeatMs: z.coerce.number().int().min(100).default(5_000),
  probeIntervalMs: z.coerce.number().int().min(50).default(2_000),
  caddyCheckMs: z.coerce.number().int().min(100).default(2_000),
  pidsLimit: z.coerce.number().int().min(16).default(512),
  /** Where pods' data directories, volumes and snapshots live on this host (or on a shared filesystem mounted here). */
  dataRoot: z.string().startsWith('/', 'PODS_DATA_ROOT must be an absolute path').default('/var/lib/pods/data'),
  /** The largest file one upload may stage on this host. */
  maxUploadBytes: z.coerce.number().int().min(1024).default(1024 * 1024 * 1024),
  /**
   * The addresses the edge Caddy connects to this host from. The edge checks a pod's
   * ip_allow_list against the real client; this host's Caddy admits these as well.
   */
  edgeSourceNetworks: csv
    .pipe(z.array(z.string().refine(isCidr, 'PODS_EDGE_SOURCE_NETWORKS entries are IP addresses or CIDRs such as 10.0.0.1/32')))
    .default([]),
  /** Where GET /metrics (Prometheus) is served, as HOST:PORT (e.g. 127.0.0.1:9105); unset: not served. */
  metricsListen: z
    .string()
    .regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:]+\]|localhost):\d{1,5}$/i, 'PODS_METRICS_LISTEN must be IP:PORT, e.g. 127.0.0.1:9105')
    .optional(),
  /** How often each running pod's usage is sampled from Docker's stats (an hour of samples is kept). */
  metricsSampleMs: z.coerce.number().int().min(500).max(600_000).default(10_000),
});
export type AgentConfig = z.infer<typeof AgentConfig>;

type Env = Record<string, string | undefined>;

function parseJson(name: string, raw: string | undefined): unknown {
  if (raw === undefined || raw === '') return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    throw new Error(`${name} is not valid JSON`);
  }
}

function explain(what: string, error: z.ZodError): Error {
  const lines = error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
  return new Error(`invalid ${what} configuration:\n${lines.join('\n')}`);
}

const defined = <T extends object>(o: T) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as Partial<T>;

export function loadCoordinatorConfig(env: Env): CoordinatorConfig {
  const raw = defined({
    listenHost: env.PODS_LISTEN_HOST,
    listenPort: env.PODS_LISTEN_PORT,
    tlsCertFile: env.PODS_TLS_CERT_FILE,
    tlsKeyFile: env.PODS_TLS_KEY_FILE,
    redisUrl: env.PODS_REDIS_URL,
    redisPrefix: env.PODS_REDIS_PREFIX,
    baseDomain: env.PODS_BASE_DOMAIN,
    tenant: env.PODS_TENANT,
    publicUrl: env.PODS_PUBLIC_URL,
    siteId: env.PODS_SITE_ID,
    tokenTtlS: env.PODS_TOKEN_TTL_S,
    adminUser: env.PODS_ADMIN_USER,
    adminToken: env.PODS_ADMIN_TOKEN,
    extraTokens: parseJson('PODS_EXTRA_TOKENS', env.PODS_EXTRA_TOKENS),
    nodeTokens: env.PODS_NODE_TOKENS,
    nodeMaxCpuMilli: env.PODS_NODE_MAX_CPU_MILLI,
    nodeMaxMemoryMb: env.PODS_NODE_MAX_MEMORY_MB,
    nodeOvercommitCpu: env.PODS_NODE_OVERCOMMIT_CPU,
    nodeOvercommitMemory: env.PODS_NODE_OVERCOMMIT_MEMORY,
    nodeNetworks: env.PODS_NODE_NETWORKS,
    minTimeToStopS: env.PODS_MIN_TIME_TO_STOP_S,
    tcpPortRange: env.PODS_TCP_PORT_RANGE,
    publicTlsPort: env.PODS_PUBLIC_TLS_PORT,
    reconcileIntervalMs: env.PODS_RECONCILE_INTERVAL_MS,
    lostAfterS: env.PODS_LOST_AFTER_S,
    agentPingMs: env.PODS_AGENT_PING_MS,
    maxBodyBytes: env.PODS_MAX_BODY_BYTES,
    logMaxBytes: env.PODS_LOG_MAX_BYTES,
    sharedStorage: env.PODS_SHARED_STORAGE,
    maxUploadBytes: env.PODS_MAX_UPLOAD_BYTES,
    edgeAdminUrl: env.PODS_EDGE_ADMIN_URL,
    edgeHttpListen: env.PODS_EDGE_HTTP_LISTEN,
    edgeTlsListen: env.PODS_EDGE_TLS_LISTEN,
    edgeTcpHost: env.PODS_EDGE_TCP_HOST,
    templatesDir: env.PODS_TEMPLATES_DIR,
    templatesLocalDir: env.PODS_TEMPLATES_LOCAL_DIR,
    jupyterTemplate: env.PODS_JUPYTER_TEMPLATE,
    loginMaxFailuresPerUserAddress: env.PODS_LOGIN_MAX_FAILURES_PER_USER_ADDRESS,
    loginMaxFailuresPerUser: env.PODS_LOGIN_MAX_FAILURES_PER_USER,
    loginMaxAttemptsPerAddress: env.PODS_LOGIN_MAX_ATTEMPTS_PER_ADDRESS,
    loginWindowS: env.PODS_LOGIN_WINDOW_S,
    loginConcurrentHashes: env.PODS_LOGIN_CONCURRENT_HASHES,
    quotas: parseJson('PODS_QUOTAS', env.PODS_QUOTAS),
    imagePull: env.PODS_IMAGE_PULL,
    metricsToken: env.PODS_METRICS_TOKEN,
    backend: env.PODS_BACKEND,
    swarmDockerSocket: env.PODS_SWARM_DOCKER_SOCKET,
    swarmImages: env.PODS_SWARM_IMAGES,
    swarmContainerUser: env.PODS_CONTAINER_USER,
    swarmPidsLimit: env.PODS_PIDS_LIMIT,
  });
  const parsed = CoordinatorConfig.safeParse(raw);
  if (!parsed.success) throw explain('coordinator', parsed.error);
  return parsed.data;
}

export function loadAgentConfig(env: Env): AgentConfig {
  const raw = defined({
    coordinatorUrl: env.PODS_COORDINATOR_URL,
    nodeToken: env.PODS_NODE_TOKEN,
    nodeId: env.PODS_NODE_ID ?? hostname().toLowerCase(),
    dockerSocket: env.PODS_DOCKER_SOCKET,
    backend: env.PODS_BACKEND,
    caddyAdminUrl: env.PODS_CADDY_ADMIN_URL,
    caddyHttpListen: env.PODS_CADDY_HTTP_LISTEN,
    caddyTlsListen: env.PODS_CADDY_TLS_LISTEN,
    tcpListenHost: env.PODS_TCP_LISTEN_HOST,
    publishHost: env.PODS_PUBLISH_HOST,
    containerUser: env.PODS_CONTAINER_USER,
    dockerNetwork: env.PODS_DOCKER_NETWORK,
    logRingBytes: env.PODS_LOG_RING_BYTES,
    logRateBytes: env.PODS_LOG_RATE_BYTES,
    podIsolation: env.PODS_POD_ISOLATION,
    blockedEgress: env.PODS_BLOCKED_EGRESS,
    heartbeatMs: env.PODS_HEARTBEAT_MS,
    probeIntervalMs: env.PODS_PROBE_INTERVAL_MS,
    caddyCheckMs: env.PODS_CADDY_CHECK_MS,
    pidsLimit: env.PODS_PIDS_LIMIT,
    edgeSourceNetworks: env.PODS_EDGE_SOURCE_NETWORKS,
    dataRoot: env.PODS_DATA_ROOT,
    maxUploadBytes: env.PODS_MAX_UPLOAD_BYTES,
    metricsListen: env.PODS_METRICS_LISTEN,
    metricsSampleMs: env.PODS_METRICS_SAMPLE_MS,
  });
  const parsed = AgentConfig.safeParse(raw);
  if (!parsed.success) throw explain('agent', parsed.error);
  return parsed.data;
}
