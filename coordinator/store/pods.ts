import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { LastParsed } from '../../shared/last-parsed.js';
import { Desired, Observed, Placement, PodSpec, podKey } from '../../shared/pod.js';
import { BoundedMap } from '../../shared/bounded-map.js';
import { Keys } from './keys.js';
import { runScript, type Redis } from './redis.js';
import type { Placeholder } from '../../shared/template.js';
import { ALLOCATE_PORTS, APPEND_EVENT, APPEND_LOGS, CAS_FIELD, READ_LOGS, CREATE_POD, DELETE_POD, PLACE_POD, RECOUNT_USAGE, RELEASE_PORTS, SET_HOME, SET_NOTE, SET_OBSERVED, SET_PERMISSION, UNPLACE_POD } from './scripts.js';

export const PermLevel = z.enum(['READ', 'USER', 'ADMIN']);
export type PermLevel = z.infer<typeof PermLevel>;

export interface PodRecord {
  spec: PodSpec;
  desired: Desired;
  placement: Placement | null;
  observed: Observed | null;
  /** Dedicated TCP ports by networking entry, given by the coordinator while the pod is ON. */
  ports: Record<string, number>;
  /** Why the pod waits (e.g. no host has room), written by the scheduler. */
  note: string | null;
  /** The host that holds the pod's data directory, once it has run (it is started only there). */
  home: string | null;
  /** Raw field values, for compare-and-set (and for what is made of them, see PodViewCache). */
  raw: { spec: string; desired: string; placement: string; observed: string; ports: string };
}

/** What the pods placed on a node claim in all. */
export interface NodeUsage {
  cpuMilli: number;
  memoryMb: number;
  pods: number;
}

/** The outcome of a placement: `placed`, or why not, with the node's usage after the attempt. */
export type PlaceResult = { result: 'placed' | 'no-room' | 'changed' | 'gone'; usage: NodeUsage };

const ACTION_LOG_MAX = 500;
/** How many earlier instances' logs are kept besides the current one's. */
export const KEPT_RUNS = 5;

/** What happened to a pod, from the API, the reconciler and its host (GET /v3/pods/{id}/events). */
export const PodEventType = z.enum([
  'created', 'updated', 'delete_requested', 'start_requested', 'stop_requested', 'restart_requested',
  'scheduled', 'moved', 'time_to_stop', 'creating', 'started', 'restarted', 'exited', 'oom_killed', 'failed', 'removed', 'note',
]);
export type PodEventType = z.infer<typeof PodEventType>;
export const PodEvent = z.object({
  time: z.string(),
  type: PodEventType,
  message: z.string(),
  generation: z.number().int().optional(),
  node: z.string().optional(),
});
export type PodEvent = z.infer<typeof PodEvent>;

export type PodEventExtra = { generation?: number; node?: string };
/** An event to record, stamped when it is stored. */
export type PodEventInput = { type: PodEventType; message: string; extra?: PodEventExtra };

/** An event as stored in a pod's event list, stamped now. */
function eventJson(type: PodEventType, message: string, extra: PodEventExtra = {}): string {
  const event: PodEvent = { time: new Date().toISOString(), type, message, ...extra };
  return JSON.stringify(event);
}

/**
 * The events an agent's report makes, the one that applies chosen in the step that stores it by
 * what it replaces: `changed` when the phase or the instance changed (`changedRestarted` instead
 * when the container's restart count grew too), `restarted` when only the restart count grew.
 */
export interface ObservedEvents {
  changed?: PodEventInput;
  changedRestarted?: PodEventInput;
  restarted?: PodEventInput;
}

/** A report as stored: the pod's desired state and placement beside it. */
export interface ObservedStored {
  desired: Desired;
  placement: Placement | null;
  hasNote: boolean;
}

/** An entry of the action list: an event (JSON), or a line stored before events had types. */
function eventOf(raw: string): PodEvent {
  try {
    const p = PodEvent.safeParse(JSON.parse(raw));
    if (p.success) return p.data;
  } catch {
    // a plain line
  }
  const cut = raw.indexOf(': ');
  return { time: cut > 0 ? raw.slice(0, cut) : '', type: 'note', message: cut > 0 ? raw.slice(cut + 2) : raw };
}

/** Dedicated TCP ports by networking entry (built once: a zod schema is costly to make). */
const Ports = z.record(z.string(), z.number().int());

/** Parse a stored field; a corrupt value is an error that names the key, never a crash elsewhere. */
export function parseField<T>(schema: z.ZodType<T>, raw: string | undefined, key: string, field: string): T | null {
  if (raw === undefined || raw === '') return null;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error(`corrupt ${field} in ${key}: not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new Error(`corrupt ${field} in ${key}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** Freeze an object and everything in it: a value shared between readers must not change under them. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * The parsed value of one stored field of each pod, kept with the JSON it came from and frozen
 * because every reader shares it; past `max` pods, the one first parsed goes. A pod's fields
 * rarely change between reads, and parsing them with zod was a tenth of the CPU of a
 * GET /v3/pods/{id}. Kept by pod rather than by JSON: hashing a fresh string of a spec's length
 * on every read costs more than comparing it with the last one.
 */
class ParsedField<T> {
  private readonly values: LastParsed<T>;
  constructor(private readonly schema: z.ZodType<T>, private readonly field: string, max = 2000) {
    this.values = new LastParsed(max);
  }

  /** `key`: the pod's key in Redis. */
  parse(raw: string | undefined, key: string): T | null {
    if (raw === undefined || raw === '') return null;
    return this.values.get(key, raw, (r) => deepFreeze(parseField(this.schema, r, key, this.field)!));
  }
}

/** Random bytes read 4 KiB at a time (each used once): one system call serves many pods' secrets and uids. */
let randomPool = Buffer.alloc(0);
let randomAt = 0;
function random(n: number): Buffer {
  if (randomAt + n > randomPool.length) {
    randomPool = randomBytes(4096);
    randomAt = 0;
  }
  randomAt += n;
  return randomPool.subarray(randomAt - n, randomAt);
}

const SECRET_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
/** Random bytes below this map evenly onto the alphabet (byte % its length); the others are skipped. */
const SECRET_BYTE_LIMIT = 256 - (256 % SECRET_ALPHABET.length);

/** A generated password: 32 characters from a URL- and shell-safe alphabet, each equally likely. */
export function newSecret(): string {
  let out = '';
  while (out.length < 32) {
    for (const b of random(40)) if (b < SECRET_BYTE_LIMIT && out.length < 32) out += SECRET_ALPHABET[b % SECRET_ALPHABET.length];
  }
  return out;
}

export function newUid(): string {
  return random(4).toString('hex');
}

/** How many entries the change stream keeps (roughly): minutes of changes at thousands a second. */
export const CHANGES_KEPT = 100_000;

export interface PodStoreOptions {
  /** The coordinator making the changes, named on each change-stream entry ("" = none: the CLI). */
  origin?: string;
  /** Entries the change stream keeps (roughly); CHANGES_KEPT unless a test wants a gap. */
  changesKept?: number;
}

/**
 * Pod state in Redis. Each hash field has one owner; multi-key changes run as Lua scripts,
 * and each state change appends to the change stream in the same step (see scripts.ts).
 */
export class PodStore {
  readonly keys: Keys;
  readonly origin: string;
  private readonly changesKept: string;
  private readonly parsed = {
    spec: new ParsedField(PodSpec, 'spec'),
    desired: new ParsedField(Desired, 'desired'),
    placement: new ParsedField(Placement, 'placement'),
    observed: new ParsedField(Observed, 'observed'),
    ports: new ParsedField(Ports, 'ports'),
  };
  /** The credentials of the pods made here lately, by pod and uid, until their first command takes them. */
  private readonly madeHere = new BoundedMap<string, Record<Placeholder, string>>(10_000);
  constructor(private readonly redis: Redis, prefix: string, opts: PodStoreOptions = {}) {
    this.keys = new Keys(prefix);
    this.origin = opts.origin ?? '';
    this.changesKept = String(opts.changesKept ?? CHANGES_KEPT);
  }

  /** The change KEYS and ARGV a state-changing script takes after its own (see scripts.ts). */
  private change(tenant: string, podId: string): { keys: string[]; args: string[] } {
    return { keys: [this.keys.changes(), this.keys.changeSeq()], args: [podKey(tenant, podId), this.origin, this.changesKept] };
  }

  private eval(script: string, keys: string[], args: string[]): Promise<number> {
    return runScript(this.redis, script, { keys, arguments: args }) as Promise<number>;
  }

  /**
   * Create a pod with its owner as ADMIN and freshly generated credentials, and its "created"
   * event saying `line`. Returns the record as stored (nothing placed or observed yet), or null
   * when the id is taken.
   */
  async create(spec: PodSpec, desired: Desired, line = `pod created by ${spec.owner}`): Promise<PodRecord | null> {
    const k = this.keys;
    const { tenant, pod_id: id } = spec;
    const c = this.change(tenant, id);
    const raw = { spec: JSON.stringify(spec), desired: JSON.stringify(desired), placement: '', observed: '', ports: '' };
    const secrets = { pod_id: id, user_username: id, user_password: newSecret(), service_password: newSecret() };
    const created = await this.eval(
      CREATE_POD,
      [k.pod(tenant, id), k.tenantPods(tenant), k.allPods(), k.perms(tenant, id), k.credentials(tenant, id), k.actions(tenant, id), ...c.keys],
      [raw.spec, raw.desired, id, spec.owner, secrets.user_username, secrets.user_password, secrets.service_password, eventJson('created', line), String(ACTION_LOG_MAX), ...c.args],
    );
    if (created !== 1) return null;
    this.madeHere.set(`${podKey(tenant, id)}@${desired.uid}`, secrets);
    // Parsed as a read would parse it (defaults filled in), and so kept for the reads that follow.
    const key = k.pod(tenant, id);
    return { spec: this.parsed.spec.parse(raw.spec, key)!, desired: this.parsed.desired.parse(raw.desired, key)!, placement: null, observed: null, ports: {}, note: null, home: null, raw };
  }

  /**
   * Create a pod (see create); when its id is still held by a deleted pod's tombstone (gone for
   * users, its container still being removed), wait up to `waitMs` for that teardown to end.
   */
  async createAfterTombstone(spec: PodSpec, desired: Desired, waitMs: number, line?: string): Promise<PodRecord | 'taken' | 'tombstone'> {
    const until = Date.now() + waitMs;
    for (;;) {
      const made = await this.create(spec, desired, line);
      if (made) return made;
      const cur = await this.get(spec.tenant, spec.pod_id);
      if (cur && !cur.desired.deleting) return 'taken';
      if (cur && Date.now() >= until) return 'tombstone';
      if (cur) await new Promise((r) => setTimeout(r, 50));
    }
  }

  async credentials(tenant: string, podId: string): Promise<{ user_username: string; user_password: string } | null> {
    const h = await this.redis.hGetAll(this.keys.credentials(tenant, podId));
    return h.user_username && h.user_password ? { user_username: h.user_username, user_password: h.user_password } : null;
  }

  /**
   * Every placeholder value of a pod: its id and generated credentials (never logged). `uid`: the
   * pod's; the credentials of a pod made here are taken as made, once (its first command), not read.
   */
  async secrets(tenant: string, podId: string, uid?: string): Promise<Record<Placeholder, string>> {
    const made = uid === undefined ? undefined : `${podKey(tenant, podId)}@${uid}`;
    const kept = made && this.madeHere.get(made);
    if (kept) {
      this.madeHere.delete(made);
      return kept;
    }
    const h = await this.redis.hGetAll(this.keys.credentials(tenant, podId));
    return { pod_id: podId, user_username: h.user_username ?? podId, user_password: h.user_password ?? '', service_password: h.service_password ?? '' };
  }

  /** Dedicated TCP ports for these entries (kept if already given); throws PORTS_EXHAUSTED. */
  async allocatePorts(tenant: string, podId: string, names: string[], range: [number, number]): Promise<Record<string, number>> {
    const c = this.change(tenant, podId);
    const r = (await runScript(this.redis, ALLOCATE_PORTS, {
      keys: [this.keys.pod(tenant, podId), this.keys.tcpPorts(), ...c.keys],
      arguments: [String(range[0]), String(range[1]), ...c.args, ...names],
    })) as string;
    return JSON.parse(r) as Record<string, number>;
  }

  /** Say why the pod waits, or clear it; only on a pod that still exists. */
  async setNote(tenant: string, podId: string, note: string | null): Promise<void> {
    const key = this.keys.pod(tenant, podId);
    if (note === null) await this.redis.hDel(key, 'note');
    else await this.eval(SET_NOTE, [key], [note]);
  }

  /** Record where the pod's data directory lives, once (the first host it runs on keeps it). */
  async setHome(tenant: string, podId: string, nodeId: string): Promise<void> {
    await this.eval(SET_HOME, [this.keys.pod(tenant, podId)], [nodeId]);
  }

  async releasePorts(tenant: string, podId: string): Promise<void> {
    const c = this.change(tenant, podId);
    await this.eval(RELEASE_PORTS, [this.keys.pod(tenant, podId), this.keys.tcpPorts(), ...c.keys], c.args);
  }

  /** 'set' | 'last-admin' (would leave no ADMIN) | 'gone'. */
  async setPermission(tenant: string, podId: string, user: string, level: PermLevel | null): Promise<'set' | 'last-admin' | 'gone'> {
    const r = await this.eval(SET_PERMISSION, [this.keys.pod(tenant, podId), this.keys.perms(tenant, podId)], [user, level ?? '']);
    return r === 1 ? 'set' : r === 0 ? 'last-admin' : 'gone';
  }

  async get(tenant: string, podId: string): Promise<PodRecord | null> {
    const key = this.keys.pod(tenant, podId);
    const h = await this.redis.hGetAll(key);
    if (!h.spec || !h.desired) return null;
    return {
      spec: this.parsed.spec.parse(h.spec, key)!,
      desired: this.parsed.desired.parse(h.desired, key)!,
      placement: this.parsed.placement.parse(h.placement, key),
      observed: this.parsed.observed.parse(h.observed, key),
      ports: this.parsed.ports.parse(h.ports, key) ?? {},
      note: h.note ?? null,
      home: h.home ?? null,
      raw: { spec: h.spec, desired: h.desired, placement: h.placement ?? '', observed: h.observed ?? '', ports: h.ports ?? '' },
    };
  }

  async listIds(tenant: string): Promise<string[]> {
    return (await this.redis.sMembers(this.keys.tenantPods(tenant))).sort();
  }

  async allKeys(): Promise<string[]> {
    return this.redis.sMembers(this.keys.allPods());
  }

  async nodePodKeys(nodeId: string): Promise<string[]> {
    return this.redis.sMembers(this.keys.nodePods(nodeId));
  }

  /** Compare-and-set a field: 'set' | 'changed' | 'gone'. */
  async casField(tenant: string, podId: string, field: 'spec' | 'desired', expected: string, next: string): Promise<'set' | 'changed' | 'gone'> {
    const c = this.change(tenant, podId);
    const r = await this.eval(CAS_FIELD, [this.keys.pod(tenant, podId), ...c.keys], [field, expected, next, ...c.args]);
    return r === 1 ? 'set' : r === 0 ? 'changed' : 'gone';
  }

  /**
   * Read-modify-write of a pod with optimistic retries. `change` returns the new spec and/or
   * desired (or null for no change); it is re-run if another writer got there first.
   */
  async update(
    tenant: string,
    podId: string,
    change: (rec: PodRecord) => { spec?: PodSpec; desired?: Desired } | null,
  ): Promise<PodRecord | null> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const rec = await this.get(tenant, podId);
      if (!rec) return null;
      const next = change(rec);
      if (!next) return rec;
      let ok = true;
      // Spec and desired have the same owner (the API), so two CAS steps in order are enough:
      // a lost race on the second leaves a valid state and the loop retries both.
      if (next.spec) ok = (await this.casField(tenant, podId, 'spec', rec.raw.spec, JSON.stringify(next.spec))) === 'set';
      if (ok && next.desired) ok = (await this.casField(tenant, podId, 'desired', rec.raw.desired, JSON.stringify(next.desired))) === 'set';
      if (ok) return this.get(tenant, podId);
    }
    throw new Error(`pod ${tenant}/${podId} is changing too fast to update`);
  }

  /**
   * Place a pod on a node if what its spec requests fits in `capacity` beside the node's other
   * claims, in one atomic step (see PLACE_POD) with its "scheduled" event: exact across coordinators.
   */
  async place(tenant: string, podId: string, placement: Placement, capacity: { cpuMilli: number; memoryMb: number }): Promise<PlaceResult> {
    const k = this.keys;
    const { nodeId } = placement;
    const c = this.change(tenant, podId);
    const event = eventJson('scheduled', `scheduled on node ${nodeId}`, { node: nodeId });
    for (let attempt = 0; ; attempt++) {
      const [code, cpuMilli, memoryMb, pods] = (await runScript(this.redis, PLACE_POD, {
        keys: [k.pod(tenant, podId), k.nodePods(nodeId), k.nodeUsage(nodeId), k.actions(tenant, podId), ...c.keys],
        arguments: [JSON.stringify(placement), nodeId, String(capacity.cpuMilli), String(capacity.memoryMb), event, String(ACTION_LOG_MAX), ...c.args],
      })) as [number, number, number, number];
      const usage = { cpuMilli, memoryMb, pods };
      if (code === 3 && attempt < 5) {
        await this.recountUsage(nodeId);
        continue;
      }
      if (code === 3) throw new Error(`the usage of node ${nodeId} could not be counted`);
      return { result: code === 1 ? 'placed' : code === 2 ? 'no-room' : code === 0 ? 'changed' : 'gone', usage };
    }
  }

  /** What the pods placed on a node claim, counted from its pods once if it never was. */
  async nodeUsage(nodeId: string): Promise<NodeUsage> {
    const k = this.keys;
    let h = await this.redis.hGetAll(k.nodeUsage(nodeId));
    if (!Object.keys(h).length) {
      await this.recountUsage(nodeId);
      h = await this.redis.hGetAll(k.nodeUsage(nodeId));
    }
    return { cpuMilli: Number(h.cpu_milli ?? 0), memoryMb: Number(h.memory_mb ?? 0), pods: Number(h.pods ?? 0) };
  }

  /** What the pods placed on a node claim, as Redis holds it now (null: never counted; see nodeUsage). */
  async readNodeUsage(nodeId: string): Promise<NodeUsage | null> {
    const [cpu, mem, pods] = await this.redis.hmGet(this.keys.nodeUsage(nodeId), ['cpu_milli', 'memory_mb', 'pods']);
    return cpu == null ? null : { cpuMilli: Number(cpu), memoryMb: Number(mem ?? 0), pods: Number(pods ?? 0) };
  }

  /** Count a node's usage from the pods in its set, once (for placements made before usage was kept). */
  async recountUsage(nodeId: string): Promise<void> {
    const k = this.keys;
    for (let attempt = 0; attempt < 20; attempt++) {
      const members = await this.nodePodKeys(nodeId);
      const podKeys = members.map((m) => {
        const [tenant, podId] = m.split('/') as [string, string];
        return k.pod(tenant, podId);
      });
      const r = await this.eval(RECOUNT_USAGE, [k.nodeUsage(nodeId), k.nodePods(nodeId), ...podKeys], [nodeId, ...members]);
      if (r === 1) return;
    }
    throw new Error(`node ${nodeId}'s pods are changing too fast to count`);
  }

  /** Take a pod off its node, giving back its claim there: 'set' | 'changed' | 'gone'. */
  async unplace(tenant: string, podId: string, from: Placement, fromRaw: string): Promise<'set' | 'changed' | 'gone'> {
    const k = this.keys;
    const c = this.change(tenant, podId);
    const r = await this.eval(UNPLACE_POD, [k.pod(tenant, podId), k.nodePods(from.nodeId), k.nodeUsage(from.nodeId), ...c.keys], [fromRaw, ...c.args]);
    return r === 1 ? 'set' : r === 0 ? 'changed' : 'gone';
  }

  /**
   * Store an agent observation with the event it makes (see ObservedEvents): 'stale' when
   * ignored as stale or the pod is gone, else the pod as it stands with it, read in the same step.
   */
  async setObserved(tenant: string, podId: string, observed: Observed, events: ObservedEvents = {}): Promise<ObservedStored | 'stale'> {
    const key = this.keys.pod(tenant, podId);
    const c = this.change(tenant, podId);
    const json = (e: PodEventInput | undefined) => (e ? eventJson(e.type, e.message, e.extra) : '');
    const [code, desired, placement, hasNote] = (await runScript(this.redis, SET_OBSERVED, {
      keys: [key, this.keys.actions(tenant, podId), ...c.keys],
      arguments: [JSON.stringify(observed), json(events.changed), json(events.changedRestarted), json(events.restarted), String(ACTION_LOG_MAX), ...c.args],
    })) as [number, string?, string?, number?];
    if (code !== 1) return 'stale';
    return {
      desired: this.parsed.desired.parse(desired, key)!,
      placement: this.parsed.placement.parse(placement, key),
      hasNote: hasNote === 1,
    };
  }

  /**
   * Append output of the pod's current instance reported by `nodeId`: 'stored', 'duplicate'
   * (a piece with this key, or an older one, was stored before), or 'refused' (not that node's
   * to report, or another instance's).
   */
  async appendLogs(nodeId: string, ref: { tenant: string; podId: string; uid: string; generation: number }, piece: { chunk: string; reset: boolean; key?: string }, maxBytes: number): Promise<'stored' | 'duplicate' | 'refused'> {
    const k = this.keys;
    const r = await this.eval(
      APPEND_LOGS,
      [k.pod(ref.tenant, ref.podId), k.logs(ref.tenant, ref.podId), k.logMeta(ref.tenant, ref.podId), k.logRuns(ref.tenant, ref.podId)],
      [piece.chunk, piece.reset ? '1' : '0', String(maxBytes), ref.uid, String(ref.generation), nodeId, piece.key ?? '', k.logRunPrefix(ref.tenant, ref.podId), String(KEPT_RUNS)],
    );
    return r === -2 ? 'duplicate' : r >= 0 ? 'stored' : 'refused';
  }

  /** The instances (generations) whose output is kept besides the current run's, oldest first. */
  async logRuns(tenant: string, podId: string): Promise<number[]> {
    return (await this.redis.lRange(this.keys.logRuns(tenant, podId), 0, -1)).map(Number);
  }

  /** The output of an earlier instance, or null when it is not kept. */
  async runLogs(tenant: string, podId: string, generation: number): Promise<string | null> {
    if (!(await this.logRuns(tenant, podId)).includes(generation)) return null;
    return (await this.redis.lRange(this.keys.logRun(tenant, podId, generation), 0, -1)).join('');
  }

  /** The key of the newest piece of output stored for the pod's current run, if any. */
  async logKey(tenant: string, podId: string): Promise<string | undefined> {
    return (await this.redis.hGet(this.keys.logMeta(tenant, podId), 'last_key')) ?? undefined;
  }

  /**
   * The stored output of the instance `generation`, from a line boundary when older output was
   * dropped; empty until that instance prints (what is stored is the previous run's till then).
   */
  async getLogs(tenant: string, podId: string, generation: number): Promise<string> {
    const { chunks, trimmed, gen } = await this.logChunks(tenant, podId, 0);
    if (gen !== null && gen !== generation) return '';
    const text = chunks.join('');
    if (!trimmed) return text;
    const nl = text.indexOf('\n');
    return nl >= 0 ? text.slice(nl + 1) : text;
  }

  /**
   * The chunks numbered after `after` (all kept ones for 0), with the number of the last one and
   * of the first kept: a reader that is behind `first - 1` has missed output that was dropped.
   */
  async logChunks(tenant: string, podId: string, after: number): Promise<{ first: number; last: number; trimmed: boolean; gen: number | null; chunks: string[] }> {
    const r = (await this.eval(READ_LOGS, [this.keys.logs(tenant, podId), this.keys.logMeta(tenant, podId)], [String(after)])) as unknown as string[];
    return { first: Number(r[0]), last: Number(r[1]), trimmed: r[2] === '1', gen: r[3] ? Number(r[3]) : null, chunks: r.slice(4) };
  }

  /** Record what happened to a pod: an event of `type`, shown in its action log as "time: line". */
  async action(tenant: string, podId: string, line: string, type: PodEventType = 'note', extra: PodEventExtra = {}): Promise<void> {
    await this.eval(APPEND_EVENT, [this.keys.actions(tenant, podId)], [eventJson(type, line, extra), String(ACTION_LOG_MAX)]);
  }

  /** The pod's events, oldest first (the newest ACTION_LOG_MAX). */
  async events(tenant: string, podId: string): Promise<PodEvent[]> {
    return (await this.redis.lRange(this.keys.actions(tenant, podId), 0, -1)).map(eventOf);
  }

  async actions(tenant: string, podId: string): Promise<string[]> {
    return (await this.events(tenant, podId)).map((e) => `${e.time}: ${e.message}`);
  }

  async perms(tenant: string, podId: string): Promise<Record<string, PermLevel>> {
    const h = await this.redis.hGetAll(this.keys.perms(tenant, podId));
    return Object.fromEntries(Object.entries(h).filter(([, v]) => PermLevel.safeParse(v).success)) as Record<string, PermLevel>;
  }

  /** One user's level on a pod (null: none): what a permission check needs, without the whole list. */
  async permission(tenant: string, podId: string, username: string): Promise<PermLevel | null> {
    const p = PermLevel.safeParse(await this.redis.hGet(this.keys.perms(tenant, podId), username));
    return p.success ? p.data : null;
  }

  /** Delete a pod and all that is keyed by it, giving back its claim on the node it is placed on. */
  async delete(tenant: string, podId: string, placement: Placement | null): Promise<void> {
    const k = this.keys;
    const runs = await this.logRuns(tenant, podId);
    await this.redis.del([k.logRuns(tenant, podId), ...runs.map((g) => k.logRun(tenant, podId, g))]);
    for (let attempt = 0; attempt < 20; attempt++) {
      const nodeId = placement?.nodeId ?? '';
      const c = this.change(tenant, podId);
      const r = await this.eval(
        DELETE_POD,
        [k.pod(tenant, podId), k.tenantPods(tenant), k.allPods(), k.perms(tenant, podId), k.logs(tenant, podId), k.actions(tenant, podId), nodeId ? k.nodePods(nodeId) : k.pod(tenant, podId), k.credentials(tenant, podId), k.tcpPorts(), k.logMeta(tenant, podId), nodeId ? k.nodeUsage(nodeId) : k.pod(tenant, podId), ...c.keys],
        [podId, nodeId, ...c.args],
      );
      if (r === 1) return;
      // Placed elsewhere than the caller saw: delete it from where it is now.
      const rec = await this.get(tenant, podId);
      if (!rec) return;
      placement = rec.placement;
    }
    throw new Error(`pod ${tenant}/${podId} is changing too fast to delete`);
  }
}
