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
  /** Overcommit factors for every node (default 1: never promise more than a node has). */
  overcommit?: Overcommit;
}

/**
 * What every pick in one turn of the event loop shares: the open nodes (capacity with the
 * overcommit applied) and their usage as read from Redis for that turn. The usage is only a
 * hint for choosing: each placement re-checks the fit atomically in Redis, and a pick that
 * finds its node full there takes that node's true usage and chooses again.
 */
interface View {
  open: NodeView[];
  anyClosed: boolean;
  usage: Map<string, Usage>;
}

interface ViewWaiter {
  resolve: (v: View) => void;
  reject: (e: unknown) => void;
}

export type PickResult = { nodeId: string } | { reason: string };

/**
 * Places pods. A placement is one Redis script (PLACE_POD) that checks the pod's requests
 * against the node's usage, claims them and records the placement in the same step, and a
 * pod's claim is given back in the same step that takes it off its node or deletes it. So
 * the usage is exact across any number of coordinators, and room is free again the moment
 * a removal is recorded: nothing is reserved in memory, nothing waits to expire.
 */
export class Scheduler {
  private readonly overcommit: Overcommit;
  private viewBatch: ViewWaiter[] | null = null;

  constructor(
    private readonly pods: PodStore,
    private readonly nodes: () => NodeView[],
    /** Nodes that take no new pods (cordoned or draining). */
    private readonly closed: () => Promise<Set<string>> = async () => new Set(),
    opts: SchedulerOptions = {},
  ) {
    this.overcommit = opts.overcommit ?? { cpu: 1, memory: 1 };
  }

  /** What the pods placed on a node claim in all, read from Redis now (for the nodes API). */
  async usage(nodeId: string): Promise<Usage> {
    return this.pods.nodeUsage(nodeId);
  }

  /**
   * A node with room for these requests by the usage Redis holds now, claiming nothing (for
   * what is not a pod: a volume's directory). `only`: that node or none.
   */
  async pick(req: Requests, only?: string): Promise<PickResult> {
    const view = await this.view();
    const open = this.candidates(view, only);
    if ('reason' in open) return open;
    const nodeId = chooseNode(open, view.usage, req);
    return nodeId ? { nodeId } : { reason: noRoom(req) };
  }

  /**
   * Place a pod: choose a node by this turn's usage, then claim its requests there atomically;
   * when another placement took the room first, choose again by the node's true usage. Returns
   * the node, or why there is none (said in the pod's status while it waits). `only`: the
   * pod's data lives on that node, so that node or none.
   */
  async place(tenant: string, podId: string, req: Requests, only?: string): Promise<PickResult | { changed: true }> {
    const view = await this.view();
    const open = this.candidates(view, only);
    if ('reason' in open) return open;
    for (let attempt = 0; attempt <= open.length + 2; attempt++) {
      // From choosing to counting the tentative claim nothing awaits: picks of this turn spread.
      const nodeId = chooseNode(open, view.usage, req);
      if (!nodeId) break;
      const node = open.find((n) => n.nodeId === nodeId)!;
      const seen = view.usage.get(nodeId) ?? { ...NONE };
      view.usage.set(nodeId, { cpuMilli: seen.cpuMilli + req.cpu_request, memoryMb: seen.memoryMb + req.mem_request, pods: seen.pods + 1 });
      const r = await this.pods.place(tenant, podId, { nodeId, at: new Date().toISOString() }, node.capacity);
      if (r.result === 'placed') return { nodeId };
      if (r.result !== 'no-room') return { changed: true };
      view.usage.set(nodeId, r.usage);
    }
    return { reason: noRoom(req) };
  }

  private candidates(view: View, only: string | undefined): NodeView[] | { reason: string } {
    let open = view.open;
    if (only !== undefined) {
      open = open.filter((n) => n.nodeId === only);
      if (!open.length) return { reason: `host ${only}, which holds this pod's data, is not connected or not taking pods` };
    }
    if (!open.length) return { reason: view.anyClosed ? 'no host is taking pods: every connected host is cordoned or draining' : 'no host is connected' };
    return open;
  }

  /**
   * The open nodes and their usage, for every pick that asks within one turn of the event
   * loop: read once for all of them, by reads sent after all of them asked (so a cordon, or a
   * removal, acknowledged before a pick began is always seen by it).
   */
  private view(): Promise<View> {
    return new Promise((resolve, reject) => {
      if (!this.viewBatch) {
        const batch: ViewWaiter[] = [];
        this.viewBatch = batch;
        setImmediate(() => {
          this.viewBatch = null;
          this.readView().then(
            (v) => batch.forEach((w) => w.resolve(v)),
            (e) => batch.forEach((w) => w.reject(e)),
          );
        });
      }
      this.viewBatch.push({ resolve, reject });
    });
  }

  private async readView(): Promise<View> {
    const closed = await this.closed();
    const open = this.nodes()
      .filter((n) => !closed.has(n.nodeId))
      .map((n) => ({ nodeId: n.nodeId, capacity: claimable(n.capacity, this.overcommit) }));
    const read = await this.pods.nodeUsages(open.map((n) => n.nodeId));
    const usage = new Map<string, Usage>();
    for (const [nodeId, u] of read) usage.set(nodeId, u ?? (await this.pods.nodeUsage(nodeId)));
    return { open, anyClosed: closed.size > 0, usage };
  }
}

function noRoom(req: Requests): string {
  return `no host has room for ${req.cpu_request}m CPU and ${req.mem_request} MiB of memory`;
}
