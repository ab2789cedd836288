import type { FullResources } from '../shared/pod.js';
import type { Capacity } from '../shared/protocol.js';
import type { NodeUsage, PodStore } from './store/pods.js';

export interface NodeView {
  nodeId: string;
  capacity: Capacity;
}

export type Usage = NodeUsage;

type Requests = Pick<FullResources, 'cpu_request' | 'mem_request'>;

/** How far a node's CPU and memory may be promised beyond what it has (1: not at all). */
export interface Overcommit {
  cpu: number;
  memory: number;
}

const NONE: Usage = Object.freeze({ cpuMilli: 0, memoryMb: 0, pods: 0 });

/** What may be claimed on a node: its capacity times the overcommit factors, whole units. */
export function claimable(capacity: Capacity, overcommit: Overcommit): Capacity {
  return { cpuMilli: Math.floor(capacity.cpuMilli * overcommit.cpu), memoryMb: Math.floor(capacity.memoryMb * overcommit.memory) };
}

/**
 * Chooses a host for a pod: among the given nodes whose free capacity fits the
 * pod's requests, the one with the most free CPU (so pods spread), then fewest pods.
 * `usage` is a map, or a function giving a node's usage (nothing used when absent).
 */
export function chooseNode(nodes: NodeView[], usage: Map<string, Usage> | ((nodeId: string) => Usage | undefined), req: Requests): string | null {
  const of = typeof usage === 'function' ? usage : (id: string) => usage.get(id);
  // The best so far in three variables, not an object a node: this runs for every placement over every node.
  let best: string | null = null;
  let bestFreeCpu = 0;
  let bestPods = 0;
  for (const n of nodes) {
    const u = of(n.nodeId) ?? NONE;
    const freeCpu = n.capacity.cpuMilli - u.cpuMilli;
    const freeMem = n.capacity.memoryMb - u.memoryMb;
    if (freeCpu < req.cpu_request || freeMem < req.mem_request) continue;
    if (best === null || freeCpu > bestFreeCpu || (freeCpu === bestFreeCpu && u.pods < bestPods)) {
      best = n.nodeId;
      bestFreeCpu = freeCpu;
      bestPods = u.pods;
    }
  }
  return best;
}

export interface SchedulerOptions {
  /** Overcommit factors for every node (default 1: never promise more than a node has). */
  overcommit?: Overcommit;
  /** The usage hints are read again from Redis when older than this (and always before saying there is no room). */
  refreshMs?: number;
  /**
   * Whether this coordinator holds the node's link (default: every node): `pick` chooses only
   * among those, since what it picks for (a volume's directory) is made over this coordinator's links.
   */
  linkedHere?: (nodeId: string) => boolean;
}

/** What every pick in one turn of the event loop shares: the open nodes, capacity with the overcommit applied. */
interface Gate {
  open: NodeView[];
  anyClosed: boolean;
}

interface GateWaiter {
  resolve: (g: Gate) => void;
  reject: (e: unknown) => void;
}

export type PickResult = { nodeId: string } | { reason: string };

const plus = (a: Usage, b: Usage, sign = 1): Usage => ({ cpuMilli: a.cpuMilli + sign * b.cpuMilli, memoryMb: a.memoryMb + sign * b.memoryMb, pods: a.pods + sign * b.pods });

/**
 * Places pods. A placement is one Redis script (PLACE_POD) that checks the pod's requests
 * against the node's usage, claims them and records the placement in the same step, and a
 * pod's claim is given back in the same step that takes it off its node or deletes it. So
 * the usage is exact across any number of coordinators, and room is free again the moment
 * a removal is recorded: nothing is reserved in memory, nothing waits to expire.
 *
 * To choose a node without reading every node per pick, the scheduler keeps hints: each
 * node's usage as Redis last told it (a re-read every `refreshMs`, and the result of every
 * placement), plus the placements this coordinator has in flight, so that picks made at once
 * spread. A hint only steers the choice: a stale one costs a retry or a less even spread, never
 * an overcommitted node (Redis re-checks the fit) nor a pod kept waiting (no room is only
 * concluded from a fresh read).
 *
 * The candidates are every reachable node (NodeLiveness), whichever coordinator holds its link:
 * the coordinator linked to the chosen node learns of the placement from the change stream and
 * tells the node. Any coordinator's reconciler may be the first to pass a new pod (its sweep
 * kicks every unsettled pod), so choosing among its own hosts only would put such a pod where
 * that coordinator happens to have links, however full or empty the others are. Leaving new
 * pods to the coordinator they were created through would not help: it too must see every
 * host, or its pods pile onto its own, and a pod whose creator stops must be placed by another.
 */
export class Scheduler {
  private readonly overcommit: Overcommit;
  private readonly refreshMs: number;
  private readonly linkedHere: (nodeId: string) => boolean;
  private gateBatch: GateWaiter[] | null = null;
  /** Each node's usage as last read from Redis or returned by a placement there. */
  private readonly known = new Map<string, Usage>();
  /** What this coordinator's placements in flight request, per node. */
  private readonly inflight = new Map<string, Usage>();
  private readAt = 0;
  private reading: { since: number; done: Promise<void> } | null = null;

  constructor(
    private readonly pods: PodStore,
    /** The reachable nodes, each with the capacity it reported, capped by its limits. */
    private readonly nodes: () => NodeView[],
    /** Nodes that take no new pods (cordoned or draining). */
    private readonly closed: () => Promise<Set<string>> = async () => new Set(),
    opts: SchedulerOptions = {},
  ) {
    this.overcommit = opts.overcommit ?? { cpu: 1, memory: 1 };
    this.refreshMs = opts.refreshMs ?? 1_000;
    this.linkedHere = opts.linkedHere ?? (() => true);
  }

  /** What the pods placed on a node claim in all, read from Redis now (for the nodes API). */
  async usage(nodeId: string): Promise<Usage> {
    return this.pods.nodeUsage(nodeId);
  }

  /**
   * A node linked here with room for these requests by the usage Redis holds now, claiming
   * nothing (for what is not a pod: a volume's directory). `only`: that node or none.
   */
  async pick(req: Requests, only?: string): Promise<PickResult> {
    const asked = Date.now();
    const gate = await this.gate();
    const open = this.candidates({ ...gate, open: gate.open.filter((n) => this.linkedHere(n.nodeId)) }, only);
    if ('reason' in open) return open;
    await this.refresh(open, asked);
    const nodeId = chooseNode(open, (id) => this.hint(id), req);
    return nodeId ? { nodeId } : { reason: noRoom(req) };
  }

  /**
   * Place a pod: choose a node by the hints, then claim its requests there atomically; when
   * the node turns out full, choose again by its true usage, and before concluding there is
   * no room, by a fresh read of every node. Returns the node, or why there is none (said in
   * the pod's status while it waits), or `changed` when the pod was placed or stopped or
   * deleted meanwhile. `only`: the pod's data lives on that node, so that node or none.
   */
  async place(tenant: string, podId: string, req: Requests, only?: string): Promise<PickResult | { changed: true }> {
    const asked = Date.now();
    const open = this.candidates(await this.gate(), only);
    if ('reason' in open) return open;
    const want: Usage = { cpuMilli: req.cpu_request, memoryMb: req.mem_request, pods: 1 };
    let fresh = false;
    if (open.some((n) => !this.known.has(n.nodeId)) || Date.now() - this.readAt > this.refreshMs) await this.refresh(open, 0);
    for (let attempt = 0; attempt <= open.length + 2; attempt++) {
      // From choosing to counting the placement in flight nothing awaits: picks made at once spread.
      const nodeId = chooseNode(open, (id) => this.hint(id), req);
      if (!nodeId) {
        if (fresh) break;
        await this.refresh(open, asked);
        fresh = true;
        continue;
      }
      const node = open.find((n) => n.nodeId === nodeId)!;
      this.inflight.set(nodeId, plus(this.inflight.get(nodeId) ?? NONE, want));
      let r;
      try {
        r = await this.pods.place(tenant, podId, { nodeId, at: new Date().toISOString() }, node.capacity);
      } finally {
        this.inflight.set(nodeId, plus(this.inflight.get(nodeId)!, want, -1));
      }
      this.known.set(nodeId, r.usage);
      if (r.result === 'placed') return { nodeId };
      if (r.result !== 'no-room') return { changed: true };
    }
    return { reason: noRoom(req) };
  }

  private hint(nodeId: string): Usage {
    const known = this.known.get(nodeId) ?? NONE;
    const flying = this.inflight.get(nodeId);
    return flying ? plus(known, flying) : known;
  }

  private candidates(gate: Gate, only: string | undefined): NodeView[] | { reason: string } {
    let open = gate.open;
    if (only !== undefined) {
      open = open.filter((n) => n.nodeId === only);
      if (!open.length) return { reason: `host ${only}, which holds this pod's data, is not connected or not taking pods` };
    }
    if (!open.length) return { reason: gate.anyClosed ? 'no host is taking pods: every connected host is cordoned or draining' : 'no host is connected' };
    return open;
  }

  /**
   * Read the usage of these nodes (and every reachable one) from Redis, by reads sent at or
   * after `since` (0: any read in progress will do); one read at a time.
   */
  private async refresh(open: NodeView[], since: number): Promise<void> {
    for (;;) {
      const running = this.reading;
      if (!running) break;
      await running.done.catch(() => undefined);
      if (running.since >= since && open.every((n) => this.known.has(n.nodeId))) return;
    }
    const ids = [...new Set([...this.nodes().map((n) => n.nodeId), ...open.map((n) => n.nodeId)])];
    const started = Date.now();
    const done = (async () => {
      // Each node's hint is set as its reply comes, so a placement's newer result is not overwritten by an older read.
      await Promise.all(
        ids.map(async (id) => {
          const u = (await this.pods.readNodeUsage(id)) ?? (await this.pods.nodeUsage(id));
          this.known.set(id, u);
        }),
      );
      this.readAt = started;
      const live = new Set(ids);
      for (const id of this.known.keys()) if (!live.has(id) && !this.inflight.get(id)?.pods) this.known.delete(id);
    })();
    this.reading = { since: started, done };
    try {
      await done;
    } finally {
      if (this.reading?.done === done) this.reading = null;
    }
  }

  /**
   * The reachable nodes that take pods, for every pick that asks within one turn of the event
   * loop: the closed set is read once for all of them, by a read sent after all of them asked
   * (so a cordon acknowledged before a pick began is always seen by it).
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
              const open = this.nodes()
                .filter((n) => !closed.has(n.nodeId))
                .map((n) => ({ nodeId: n.nodeId, capacity: claimable(n.capacity, this.overcommit) }));
              const gate: Gate = { open, anyClosed: closed.size > 0 };
              for (const w of batch) w.resolve(gate);
            },
            (e) => batch.forEach((w) => w.reject(e)),
          );
        });
      }
      this.gateBatch.push({ resolve, reject });
    });
  }
}

function noRoom(req: Requests): string {
  return `no host has room for ${req.cpu_request}m CPU and ${req.mem_request} MiB of memory`;
}
