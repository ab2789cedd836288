import { z } from 'zod';
import { Health, Observed, Phase, Protocol, HealthChecks } from './pod.js';
import {
  AreaCopy, AreaCreate, AreaDelete, AreaList, AreaMove, AreaRead, AreaUsage, FileChunk, FileList, Mount, UploadAbort, UploadChunk,
  UploadToArea, UsageReply, WirePath, Written,
} from './storage.js';

// The wire protocol between coordinator and agents. Every frame is an envelope
// {v, type, id, payload}; a reply carries the id of the frame it answers in `re`.
// CATALOG maps each type to its payload schema and the type of its reply. A frame marked
// `notice` (an agent's reports and output) is not answered when it is handled, only when it
// is bad or its handler fails (an error frame); a receiver that does not know the mark
// answers it as any other, and the sender ignores that answer.

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 1024 * 1024;
export const AGENT_WS_PATH = '/v3/agents/connect';

export const Envelope = z.object({
  v: z.literal(PROTOCOL_VERSION),
  type: z.string().min(1).max(64),
  id: z.string().min(1).max(64),
  re: z.string().max(64).optional(),
  notice: z.literal(true).optional(),
  payload: z.unknown(),
});
export type Envelope = z.infer<typeof Envelope>;

/**
 * Who may reach one networking entry, as the host's Caddy enforces it. `ipAllow`: CIDRs (the
 * agent adds its edge's addresses); `cors`: the preflight answer and the response headers;
 * `auth`: every request is first checked at the coordinator's `path` (tapis_auth), and on a
 * yes the coordinator's `headers` (tapis_auth_response_headers) are passed on to the pod.
 */
export const RouteAccess = z.object({
  ipAllow: z.array(z.string()).optional(),
  cors: z
    .object({ origins: z.array(z.string()), methods: z.array(z.string()), headers: z.array(z.string()), credentials: z.boolean(), maxAge: z.number().int().min(0) })
    .optional(),
  auth: z.object({ path: z.string().regex(/^\/v3\/pods\/[a-z][a-z0-9-]*\/auth$/), headers: z.array(z.string()) }).optional(),
});
export type RouteAccess = z.infer<typeof RouteAccess>;

/** What an agent needs to run one pod instance; computed by the coordinator. */
export const ContainerSpec = z.object({
  image: z.string().min(1),
  /** false: the image runs only if the host already has it (its tag was not pinned on the allow-list). */
  pull: z.boolean().default(true),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()),
  ports: z.array(
    z.object({
      name: z.string(),
      port: z.number().int(),
      protocol: Protocol,
      host: z.string(),
      /** For TCP entries served on a port of their own: that port on the host's Caddy. */
      dedicatedPort: z.number().int().min(1).max(65535).optional(),
      /** Who may reach the entry through the host's Caddy (its networking entry's access fields). */
      access: RouteAccess.optional(),
    }),
  ),
  /** Run as this user instead of the host's default (templates); never root. */
  user: z.string().optional(),
  /** Commands run in the container once it is ready. */
  init: z.array(z.array(z.string())).optional(),
  /** A command that exits 0 once the service is ready; default is a TCP connect to the first port. */
  readiness: z.object({ exec: z.array(z.string()) }).optional(),
  /** The pod's own health checks (startup, readiness, liveness). */
  healthchecks: HealthChecks.optional(),
  /** Storage that outlives the container: the pod's data directory, volumes, snapshots. */
  mounts: z.array(Mount).default([]),
  cpuLimitMilli: z.number().int().min(1),
  memLimitMb: z.number().int().min(1),
  cpuRequestMilli: z.number().int().min(1),
  memRequestMb: z.number().int().min(1),
});
export type ContainerSpec = z.infer<typeof ContainerSpec>;

export const Assignment = z.object({
  tenant: z.string(),
  podId: z.string(),
  uid: z.string(),
  generation: z.number().int().min(1),
  spec: ContainerSpec,
  /** The key of the last piece of this instance's output the coordinator holds (sync only): nothing up to it is sent again. */
  logSince: z.string().max(64).optional(),
});
export type Assignment = z.infer<typeof Assignment>;

export const PodRef = z.object({ tenant: z.string(), podId: z.string(), uid: z.string(), generation: z.number().int().min(1) });
export type PodRef = z.infer<typeof PodRef>;

export const Capacity = z.object({ cpuMilli: z.number().int().min(0), memoryMb: z.number().int().min(0) });
export type Capacity = z.infer<typeof Capacity>;

// ---- agent -> coordinator
/** A node id: a host name's shape, so it can appear in labels, keys and paths as it is. */
export const NodeId = z.string().regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, 'node ids are 1-63 lowercase letters, digits, dots and dashes, starting with a letter or digit');

export const Hello = z.object({
  nodeId: NodeId,
  agentVersion: z.string(),
  dockerVersion: z.string(),
  capacity: Capacity,
  /** Where this host's Caddy serves pods, for the edge to route to. */
  endpoints: z.object({ http: z.string(), tls: z.string(), tcpHost: z.string() }).optional(),
  /** Every container on the host that carries this node's labels. */
  containers: z.array(PodRef.extend({ phase: Phase, observed: Observed })),
});
export type Hello = z.infer<typeof Hello>;

export const Heartbeat = z.object({ running: z.number().int().min(0) });
export type Heartbeat = z.infer<typeof Heartbeat>;

export const PodStatusReport = z.object({ observed: Observed, tenant: z.string(), podId: z.string() });
export type PodStatusReport = z.infer<typeof PodStatusReport>;

/** A piece's key: the timestamp of its last line and its number among the pieces of that line ("...Z#0000"). */
export const LogKey = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z#\d{4}$/);

export const PodLogs = PodRef.extend({
  /** true: the chunk starts the instance's log afresh (the first output of a new run). */
  reset: z.boolean(),
  chunk: z.string().max(MAX_FRAME_BYTES / 2),
  /** Keys only grow: the coordinator stores a piece only if its key is newer than the last it stored. */
  key: LogKey.optional(),
});
export type PodLogs = z.infer<typeof PodLogs>;

export const PodHealth = PodRef.extend({ health: Health });
export type PodHealth = z.infer<typeof PodHealth>;

// ---- coordinator -> agent
/** The full set of pods this node should run; anything else labelled for the node is removed. */
export const Sync = z.object({ assignments: z.array(Assignment) });
export type Sync = z.infer<typeof Sync>;

export const Apply = z.object({ assignment: Assignment });
export type Apply = z.infer<typeof Apply>;

export const Remove = PodRef;
export type Remove = z.infer<typeof Remove>;

/** Run commands one after another in the pod's running container (never through a shell unless the argv says so). */
export const PodExec = PodRef.extend({
  commands: z.array(z.array(z.string().max(65_536)).min(1).max(1024)).min(1).max(64),
  commandTimeoutS: z.number().int().min(1).max(3600),
  totalTimeoutS: z.number().int().min(1).max(3600),
  failOnNonSuccess: z.boolean(),
});
export type PodExec = z.infer<typeof PodExec>;

export const ExecResult = z.object({
  results: z.array(
    z.object({
      exitCode: z.number().int(),
      stdout: z.string(),
      stderr: z.string(),
      timedOut: z.boolean(),
      durationMs: z.number().int().min(0),
      startedAt: z.string(),
    }),
  ),
});
export type ExecResult = z.infer<typeof ExecResult>;

/** Files inside a running pod (Docker's archive API on the agent). */
export const PodUpload = PodRef.extend({ transferId: UploadChunk.shape.transferId, path: WirePath });
export const PodList = PodRef.extend({ path: WirePath });
export const PodFetch = PodRef.extend({ path: WirePath });
export const Staged = z.object({ transferId: UploadChunk.shape.transferId, size: z.number().int().min(0) });
export const TransferRead = z.object({ transferId: UploadChunk.shape.transferId, offset: z.number().int().min(0), length: AreaRead.shape.length });

/** Usage of a pod as its host sampled it from Docker's stats (GET /v3/pods/{id}/metrics). */
export const PodMetrics = PodRef;
export type PodMetrics = z.infer<typeof PodMetrics>;

export const UsageSample = z.object({
  /** When it was taken (ISO 8601). */
  at: z.string(),
  /** CPU in cores (1 = one core busy) since the sample before; null for the first of a container. */
  cpuCores: z.number().min(0).nullable(),
  /** Memory in use, page cache left out (as `docker stats` shows it), and the container's limit. */
  memoryBytes: z.number().int().min(0),
  memoryLimitBytes: z.number().int().min(0),
  /** Bytes received and sent since the container started, over all its interfaces. */
  rxBytes: z.number().int().min(0),
  txBytes: z.number().int().min(0),
  /** Starts of the pod's container (a new instance or the same one restarted) this host has seen so far. */
  restarts: z.number().int().min(0),
});
export type UsageSample = z.infer<typeof UsageSample>;

export const PodUsage = z.object({
  intervalS: z.number().min(0),
  /** Oldest first, at most an hour of them; empty when the host has not sampled the pod yet. */
  samples: z.array(UsageSample),
});
export type PodUsage = z.infer<typeof PodUsage>;

// ---- replies
export const Ack = z.object({});
export type Ack = z.infer<typeof Ack>;

export const ErrorReply = z.object({ code: z.string(), message: z.string() });
export type ErrorReply = z.infer<typeof ErrorReply>;

export const CATALOG = {
  hello: { payload: Hello, reply: 'sync' },
  heartbeat: { payload: Heartbeat, reply: 'ack' },
  pod_status: { payload: PodStatusReport, reply: 'ack' },
  pod_logs: { payload: PodLogs, reply: 'ack' },
  apply: { payload: Apply, reply: 'ack' },
  remove: { payload: Remove, reply: 'ack' },
  sync: { payload: Sync, reply: null },
  area_create: { payload: AreaCreate, reply: 'ack' },
  area_delete: { payload: AreaDelete, reply: 'ack' },
  area_usage: { payload: AreaUsage, reply: 'usage' },
  area_list: { payload: AreaList, reply: 'file_list' },
  area_read: { payload: AreaRead, reply: 'file_chunk' },
  area_copy: { payload: AreaCopy, reply: 'ack' },
  area_move: { payload: AreaMove, reply: 'ack' },
  upload_chunk: { payload: UploadChunk, reply: 'ack' },
  upload_to_area: { payload: UploadToArea, reply: 'written' },
  upload_to_pod: { payload: PodUpload, reply: 'written' },
  upload_abort: { payload: UploadAbort, reply: 'ack' },
  pod_exec: { payload: PodExec, reply: 'exec_result' },
  pod_list: { payload: PodList, reply: 'file_list' },
  pod_fetch: { payload: PodFetch, reply: 'staged' },
  pod_metrics: { payload: PodMetrics, reply: 'pod_usage' },
  transfer_read: { payload: TransferRead, reply: 'file_chunk' },
  usage: { payload: UsageReply, reply: null },
  file_list: { payload: FileList, reply: null },
  file_chunk: { payload: FileChunk, reply: null },
  written: { payload: Written, reply: null },
  exec_result: { payload: ExecResult, reply: null },
  staged: { payload: Staged, reply: null },
  pod_usage: { payload: PodUsage, reply: null },
  ack: { payload: Ack, reply: null },
  error: { payload: ErrorReply, reply: null },
} as const;

export type MessageType = keyof typeof CATALOG;
export type PayloadOf<T extends MessageType> = z.infer<(typeof CATALOG)[T]['payload']>;

export type Frame<T extends MessageType = MessageType> = { v: 1; type: T; id: string; re?: string; notice?: true; payload: PayloadOf<T> };

export type DecodeResult =
  | { ok: true; frame: Frame }
  | { ok: false; code: 'PROTO_MALFORMED' | 'PROTO_UNKNOWN_TYPE' | 'PROTO_BAD_PAYLOAD' | 'PROTO_TOO_LARGE'; message: string; id?: string };

/** Parse one frame; never throws. Bad input is a value the caller answers with an error frame. */
export function decodeFrame(data: string | Buffer): DecodeResult {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > MAX_FRAME_BYTES) return { ok: false, code: 'PROTO_TOO_LARGE', message: `frame of ${size} bytes exceeds ${MAX_FRAME_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return { ok: false, code: 'PROTO_MALFORMED', message: 'frame is not valid JSON' };
  }
  const env = Envelope.safeParse(json);
  if (!env.success) {
    const id = typeof (json as { id?: unknown })?.id === 'string' ? ((json as { id: string }).id) : undefined;
    return { ok: false, code: 'PROTO_MALFORMED', message: `bad envelope: ${formatIssues(env.error)}`, id };
  }
  const { type, id } = env.data;
  if (!Object.hasOwn(CATALOG, type)) return { ok: false, code: 'PROTO_UNKNOWN_TYPE', message: `unknown message type "${type}"`, id };
  const schema = CATALOG[type as MessageType].payload;
  const payload = schema.safeParse(env.data.payload);
  if (!payload.success) return { ok: false, code: 'PROTO_BAD_PAYLOAD', message: `bad ${type} payload: ${formatIssues(payload.error)}`, id };
  return { ok: true, frame: { ...env.data, type: type as MessageType, payload: payload.data } as Frame };
}

let counter = 0;
export function newFrameId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${process.pid.toString(36)}-${Date.now().toString(36)}-${counter.toString(36)}`;
}

/** A frame's text: a reply to frame `re`, a notice, or a request (with `id` when the caller keeps it). */
export function encodeFrame<T extends MessageType>(type: T, payload: PayloadOf<T>, re?: string, opts: { id?: string; notice?: boolean } = {}): string {
  const frame: Frame<T> = { v: PROTOCOL_VERSION, type, id: opts.id ?? newFrameId(), payload, ...(re ? { re } : {}), ...(opts.notice ? { notice: true as const } : {}) };
  return JSON.stringify(frame);
}

export function formatIssues(error: z.ZodError): string {
  return error.issues.map(describeIssue).join('; ');
}

/** One issue as "field.path: what is wrong", so a user sees which field to fix. */
function describeIssue(i: z.core.$ZodIssue): string {
  const at = (extra: PropertyKey[] = []) => [...i.path, ...extra].map(String).join('.');
  if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${at([k])}: unknown field`).join('; ');
  if (i.code === 'invalid_key') {
    const inner = i.issues[0]?.message ?? i.message;
    return `${at()}: ${inner}`;
  }
  return i.path.length ? `${at()}: ${i.message}` : i.message;
}
