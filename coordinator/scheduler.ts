import type { FullResources } from '../shared/pod.js';
import type { Capacity } from '../shared/protocol.js';
import type { PodStore } from './store/pods.js';

export interface NodeView {
  nodeId: string;
  capacity: Capacity;
}

export interface Usage {
  cpuMilli: number;
  memoryMb: number;
  pods: number;
}

type Requests = Pick<FullResources, 'cpu_request' | 'mem_request'>;

const NONE: Usage = Object.freeze({ cpuMilli: 0, memoryMb: 0, pods: 0 });

/**
 * Chooses a host for a pod: among connected nodes whose free capacity fits the
 * pod's requests, the one with the most free CPU (so pods spread), then fewest pods.
 * `usage` is a map, or a function giving a node's usage (nothing used when absent).
 */
export function chooseNode(nodes: NodeView[], usage: Map<string, Usage> | ((nodeId: string) => Usage | undefined), req: Requests): string | null {
  const of = typeof usage === 'function' ? usage : (id: string) => usage.get(id);
  let best: { nodeId: string; freeCpu: number; pods: number } | null = null;
  for (const n of nodes) {
    const u = of(n.nodeId) ?? NONE;
    const freeCpu = n.capacity.cpuMilli - u.cpuMilli;
    const freeMem = n.capacity.memoryMb - u.memoryMb;
    if (freeCpu < req.cpu_request || freeMem < req.mem_request) continue;
    if (!best || freeCpu > best.freeCpu || (freeCpu === best.freeCpu && u.pods < best.pods)) best = { nodeId: n.nodeId, freeCpu, pods: u.pods };
  }
  return best?.nodeId ?? null;
}

export interface SchedulerOptions {
  /** A pick starts a background re-read of the nodes' pod sets when the last one is older than this. */
  refreshMs?: number;
  /** With no room, a pick waits for a fresh re-read (and tries again) when the last one is older than this. */
  noRoomRefreshMs?: number;
  /** A pod's requests are read again from its spec after about this long (they change with PUT). */
  resourcesTtlMs?: number;
  /** A reservation whose placement never showed up in Redis (the pod went away first) is dropped after this. */
  reservationTtlMs?: number;
}

/** Requests this coordinator has given to a node that Redis's node set may not show yet. */
interface Reservation {
  /** "tenant/podId" when the caller said which pod it places. */
  pod: string | null;
  nodeId: string;
  cpu: number;
  mem: number;
  /** Order of creation, compared with the order a snapshot was taken in. */
  seq: number;
  at: number;
}

interface Snapshot {
  /** Reservations made before this value were made before the snapshot's reads were sent. */
  seq: number;
  at: number;
  /** Pod keys in each node's set (the placements Redis holds). */
  members: Map<string, Set<string>>;
  /** What those pods request, per node. */
  usage: Map<string, Usage>;
}

/** What every pick in one turn of the event loop shares: the open nodes, and whether any connected node was closed. */
interface Gate {
  open: NodeView[];
  anyClosed: boolean;
  /** Whether every open node is in `knownIn` (worked out once per snapshot, not once per pick). */
  knownIn: Snapshot | null;
  allKnown: boolean;
}

interface GateWaiter {
  resolve: (g: Gate) => void;
  reject: (e: unknown) => void;
}

const empty = (): Usage => ({ cpuMilli: 0, memoryMb: 0, pods: 0 });
const add = (u: Usage, cpu: number, mem: number) => {
  u.cpuMilli += cpu;
  u.memoryMb += mem;
  u.pods += 1;
};

/**
 * Places pods without reading every placed pod on every pick. It keeps, per node, what
 * Redis's placements request (a snapshot of the nodes' pod sets, re-read in the background
 * every `refreshMs` while picks happen) plus what this coordinator has handed out since
 * (reservations). A pick is synchronous between reading the usage and reserving, so
 * concurrent picks in one coordinator never overcommit a node. A reservation is dropped
 * once a snapshot taken after it shows its pod placed (on that node, or anywhere for a
 * keyed one), or when its TTL passes (the pod went away before it was placed). Placements
 * the reconciler clears (moves, stops, deletes) leave the usage at the next re-read, which
 * errs on the side of a full node; a pick that finds no room waits for a fresh re-read first.
 */
export class Scheduler {
  private readonly opts: Required<SchedulerOptions>;
  private seq = 0;
  private snap: Snapshot | null = null;
  private refreshing: Promise<Snapshot> | null = null;
  private refreshingNodes = new Set<string>();
  /** Requests of placed pods by "tenant/podId", with when they were learnt and when to read them again. */
  private readonly requests = new Map<string, { cpu: number; mem: number; since: number; until: number }>();
  /** The pod set each node had when it was last read. */
  private readonly lastRead = new Map<string, Set<string>>();
  private readonly reservations = new Map<string, Reservation[]>();
  /** Per node of the snapshot: what its placements request plus this coordinator's reservations on it. */
  private totals = new Map<string, Usage>();
  private gateBatch: GateWaiter[] | null = null;

  constructor(
    private readonly pods: PodStore,
    private readonly nodes: () => NodeView[],
    /** Nodes that take no new pods (cordoned or draining). */
    private readonly closed: () => Promise<Set<string>> = async () => new Set(),
    opts: SchedulerOptions = {},
  ) {
    this.opts = { refreshMs: 2_000, noRoomRefreshMs: 500, resourcesTtlMs: 60_000, reservationTtlMs: 30_000, ...opts };
  }

  /** What the pods placed on a node request in all, read from Redis now (for the nodes API). */
  async usage(nodeId: string): Promise<Usage> {
    const u = empty();
    const recs = await Promise.all(
      (await this.pods.nodePodKeys(nodeId)).map((key) => {
        const [tenant, podId] = key.split('/') as [string, string];
        return this.pods.get(tenant, podId);
      }),
    );
    for (const rec of recs) if (rec) add(u, rec.spec.resources.cpu_request, rec.spec.resources.mem_request);
    return u;
  }

  /**
   * A node for these requests, or why there is none (said in the pod's status while it waits).
   * `pod` ("tenant/podId") lets the reservation be matched to its placement exactly.
   */
  async pick(req: Requests, pod?: string, only?: string): Promise<{ nodeId: string } | { reason: string }> {
    const gate = await this.gate();
    let open = gate.open;
    if (only !== undefined) {
      // The pod's data lives on one host: that host or none.
      open = open.filter((n) => n.nodeId === only);
      if (!open.length) return { reason: `host ${only}, which holds this pod's data, is not connected or not taking pods` };
    }
    if (!open.length) return { reason: gate.anyClosed ? 'no host is taking pods: every connected host is cordoned or draining' : 'no host is connected' };

    // A node this scheduler has not read yet (just connected) is read before it is used.
    for (let i = 0; i < 3 && !this.allKnown(gate); i++) await this.refresh(open.map((n) => n.nodeId));
    if (this.snap && Date.now() - this.snap.at > this.opts.refreshMs) void this.refresh([]).catch(() => undefined);

    for (let attempt = 0; ; attempt++) {
      const snap = this.snap;
      const totals = this.totals;
      if (!this.allKnown(gate)) open = open.filter((n) => totals.has(n.nodeId));
      // From here to the reservation nothing awaits: no other pick can slip in between.
      const nodeId = chooseNode(open, totals, req);
      if (nodeId) {
        this.reserve({ pod: pod ?? null, nodeId, cpu: req.cpu_request, mem: req.mem_request, seq: this.seq++, at: Date.now() });
        return { nodeId };
      }
      // No room by what we know: space freed by a stop or delete shows at the next re-read.
      if (attempt > 0 || !snap || Date.now() - snap.at < this.opts.noRoomRefreshMs) break;
      await this.refresh([]);
    }
    return { reason: `no host has room for ${req.cpu_request}m CPU and ${req.mem_request} MiB of memory` };
  }

  private allKnown(gate: Gate): boolean {
    if (gate.knownIn !== this.snap) {
      gate.knownIn = this.snap;
      gate.allKnown = gate.open.every((n) => this.totals.has(n.nodeId));
    }
    return gate.allKnown;
  }

  private reserve(r: Reservation): void {
    const list = this.reservations.get(r.nodeId) ?? [];
    list.push(r);
    this.reservations.set(r.nodeId, list);
    add(this.totals.get(r.nodeId)!, r.cpu, r.mem);
    // We know what this pod requests: no need to read it when its placement shows up.
    if (r.pod) this.learn(r.pod, r.cpu, r.mem);
  }

  private learn(key: string, cpu: number, mem: number): void {
    const now = Date.now();
    // Spread the re-reads so they do not all come due in the same second.
    this.requests.set(key, { cpu, mem, since: now, until: now + this.opts.resourcesTtlMs * (1 + Math.random() / 2) });
  }

  /**
   * The connected nodes that take pods, for every pick that asks within one turn of the event
   * loop: the closed set is read once for all of them, by a read sent after all of them asked
   * (so a cordon acknowledged before a pick began is always seen by it), and the connected
   * nodes are listed when that read returns.
   */
  private gate(): Promise<Gate> {
    return new Promise((resolve, reject) => {
      if (!this.gateBatch) {
        const batch: GateWaiter[] = [];
        this.gateBatch = batch;
        setImmediate(() => {
          this.gateBatch = null;
          this.closed().then(
            (closed) => {
              const open = this.nodes().filter((n) => !closed.has(n.nodeId));
              const gate: Gate = { open, anyClosed: closed.size > 0, knownIn: null, allKnown: false };
              for (const w of batch) w.resolve(gate);
            },
            (e) => batch.forEach((w) => w.reject(e)),
          );
        });
      }
      this.gateBatch.push({ resolve, reject });
    });
  }

  /** Re-read the pod sets of the connected nodes (and of `need`); one re-read at a time. */
  private async refresh(need: string[]): Promise<Snapshot> {
    while (this.refreshing) {
      const running = this.refreshing;
      if (need.every((id) => this.refreshingNodes.has(id))) return running;
      await running.catch(() => undefined);
      if (need.every((id) => this.snap?.members.has(id))) return this.snap!;
    }
    const nodeIds = new Set([...this.nodes().map((n) => n.nodeId), ...need]);
    this.refreshingNodes = nodeIds;
    const run = this.read(nodeIds);
    this.refreshing = run;
    try {
      return await run;
    } finally {
      this.refreshing = null;
      this.refreshingNodes = new Set();
    }
  }

  private async read(nodeIds: Set<string>): Promise<Snapshot> {
    // Every set read is sent in this turn, after `seq` is taken: a reservation made later has
    // its placement written after these reads on the same connection.
    const seq = this.seq;
    const at = Date.now();
    const ids = [...nodeIds];
    const sets = await Promise.all(ids.map((id) => this.pods.nodePodKeys(id)));
    const now = Date.now();
    const toRead = new Set<string>();
    for (const keys of sets) for (const key of keys) if ((this.requests.get(key)?.until ?? 0) < now) toRead.add(key);
    await this.readRequests([...toRead]);

    const members = new Map<string, Set<string>>();
    const usage = new Map<string, Usage>();
    const seen = new Set<string>();
    ids.forEach((id, i) => {
      const set = new Set(sets[i]);
      const u = empty();
      for (const key of set) {
        seen.add(key);
        const r = this.requests.get(key);
        if (r) add(u, r.cpu, r.mem);
      }
      members.set(id, set);
      usage.set(id, u);
    });
    const snap: Snapshot = { seq, at, members, usage };
    this.settleReservations(snap, seen);
    for (const [id, set] of members) this.lastRead.set(id, set);
    for (const id of this.lastRead.keys()) if (!members.has(id) && !this.reservations.has(id)) this.lastRead.delete(id);
    // Forget the requests of pods placed nowhere any more (kept a while for a placement on its way).
    for (const [key, r] of this.requests) if (!seen.has(key) && now - r.since > this.opts.reservationTtlMs) this.requests.delete(key);
    const totals = new Map<string, Usage>();
    for (const [id, u] of usage) totals.set(id, { ...u });
    for (const [id, list] of this.reservations) {
      const t = totals.get(id);
      if (t) for (const r of list) add(t, r.cpu, r.mem);
    }
    this.snap = snap;
    this.totals = totals;
    return snap;
  }

  /** Read what these pods request, a bounded number at a time. */
  private async readRequests(keys: string[]): Promise<void> {
    const CHUNK = 256;
    for (let i = 0; i < keys.length; i += CHUNK) {
      const part = keys.slice(i, i + CHUNK);
      const recs = await Promise.all(
        part.map((key) => {
          const [tenant, podId] = key.split('/') as [string, string];
          // A failed read keeps what we knew (undefined); a pod that is gone (null) is forgotten.
          return this.pods.get(tenant, podId).catch(() => undefined);
        }),
      );
      recs.forEach((rec, j) => {
        if (rec) this.learn(part[j]!, rec.spec.resources.cpu_request, rec.spec.resources.mem_request);
        else if (rec === null) this.requests.delete(part[j]!);
      });
    }
  }

  /** Drop the reservations a new snapshot shows placed, and the ones too old to still be coming. */
  private settleReservations(snap: Snapshot, placed: Set<string>): void {
    const now = Date.now();
    for (const [nodeId, list] of this.reservations) {
      const set = snap.members.get(nodeId);
      // Placements new since the node was last read, by what they request: each accounts for one unkeyed reservation.
      const fresh = new Map<string, number>();
      if (set) {
        const before = this.lastRead.get(nodeId);
        const keyed = new Set(list.map((r) => r.pod));
        for (const key of set) {
          if (before?.has(key) || keyed.has(key)) continue;
          const req = this.requests.get(key);
          if (!req) continue;
          const k = `${req.cpu}/${req.mem}`;
          fresh.set(k, (fresh.get(k) ?? 0) + 1);
        }
      }
      const keep = list.filter((r) => {
        if (now - r.at > this.opts.reservationTtlMs) return false;
        if (r.seq >= snap.seq) return true;
        if (r.pod) return !placed.has(r.pod);
        const k = `${r.cpu}/${r.mem}`;
        const n = fresh.get(k) ?? 0;
        if (n > 0) {
          fresh.set(k, n - 1);
          return false;
        }
        return true;
      });
      if (keep.length) this.reservations.set(nodeId, keep);
      else this.reservations.delete(nodeId);
    }
  }
}
