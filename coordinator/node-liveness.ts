import type { Capacity } from '../shared/protocol.js';
import type { NodeAdmin, NodeRecord, NodeStore } from './store/nodes.js';

/** What a node's record says: its last heartbeat (ms), whether its link closed, the capacity the scheduler may use. */
interface Seen {
  heartbeatMs: number;
  disconnected: boolean;
  capacity: Capacity;
}

/** A node that may be given pods, with what the scheduler may use of it. */
export interface ReachableNode {
  nodeId: string;
  capacity: Capacity;
}

/** The nodes this coordinator holds live links to, each with its capacity as capped at the last hello or heartbeat. */
export interface Links {
  isConnected(nodeId: string): boolean;
  connected(): ReachableNode[];
}

/** A node whose last heartbeat is older than this is unreachable (agents beat every 5 s by default). */
export const HEARTBEAT_STALE_MS = 15_000;

/** Node records read this long after a link here closed say so (the hub marks them when the link closes). */
const LINK_CLOSE_RECORDED_MS = 1_000;

/**
 * The one meaning of "node reachable", for the API, the reconciler and the scheduler alike: the
 * node has a live link to some coordinator, as its heartbeat in Redis says (written by whichever
 * coordinator holds the link; its link closing marks it disconnected at once). A node linked to
 * this coordinator is reachable without asking. The records are read again every `refreshMs`, so
 * answers are synchronous and cost no Redis call.
 */
export class NodeLiveness {
  private records = new Map<string, Seen>();
  private admins = new Map<string, NodeAdmin>();
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();
  /** The nodes linked here when last looked at. */
  private linked = new Set<string>();
  /** Nodes whose link here closed, and when that was seen (until the records say so: see reachableNodes). */
  private readonly left = new Map<string, number>();

  constructor(
    private readonly nodes: Pick<NodeStore, 'list' | 'admins' | 'get' | 'watchLinks'>,
    /** This coordinator's own links. */
    private readonly links: Links,
    private readonly opts: { refreshMs?: number; staleMs?: number } = {},
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.opts.refreshMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Read the nodes' heartbeats and what admins want of them (call after changing the latter, to see it at once). */
  async refresh(): Promise<void> {
    const started = Date.now();
    this.lookAtLinks(started);
    const [list, admins] = await Promise.all([this.nodes.list(), this.nodes.admins()]);
    this.records = new Map(list.map((n) => [n.nodeId, seen(n)]));
    this.admins = admins;
    for (const [nodeId, at] of this.left) if (at <= started - LINK_CLOSE_RECORDED_MS) this.left.delete(nodeId);
  }

  /** Whether a site admin is draining the node (as of the last refresh). */
  draining(nodeId: string): boolean {
    return this.admins.get(nodeId)?.draining ?? false;
  }

  reachable(nodeId: string): boolean {
    return this.links.isConnected(nodeId) || this.beating(this.records.get(nodeId), Date.now());
  }

  /**
   * Every reachable node with the capacity the scheduler may use of it: a node linked here with
   * its link's; one linked to another coordinator with what that coordinator stored in its record,
   * capped by the same limits (AgentHub.capped) at its hello and every heartbeat. A node whose
   * link here has just closed is left out until records read well after that say whether it is
   * back elsewhere: the records read before still call it beating, and a pod placed there would
   * wait for it (the hub marks the record disconnected at once, so this is at most two refreshes).
   */
  reachableNodes(): ReachableNode[] {
    const now = Date.now();
    const out = this.lookAtLinks(now);
    for (const [nodeId, rec] of this.records) {
      if (!this.linked.has(nodeId) && !this.left.has(nodeId) && this.beating(rec, now)) out.push({ nodeId, capacity: rec.capacity });
    }
    return out;
  }

  /** This coordinator's links now, noting those that closed since the last look. */
  private lookAtLinks(now: number): ReachableNode[] {
    const out = this.links.connected();
    const linked = new Set(out.map((n) => n.nodeId));
    for (const nodeId of this.linked) if (!linked.has(nodeId) && !this.left.has(nodeId)) this.left.set(nodeId, now);
    for (const nodeId of linked) this.left.delete(nodeId);
    this.linked = linked;
    return out;
  }

  private beating(rec: Seen | undefined, now: number): boolean {
    return !!rec && !rec.disconnected && now - rec.heartbeatMs < (this.opts.staleMs ?? HEARTBEAT_STALE_MS);
  }

  /**
   * Like reachable, but a node the records call unreachable is read again first (it may have
   * connected since the last refresh): for what cannot be undone, such as deleting a pod's record.
   */
  async reachableNow(nodeId: string): Promise<boolean> {
    if (!this.reachable(nodeId)) await this.reread(nodeId);
    return this.reachable(nodeId);
  }

  /** lastSeen, with a node the records call unreachable read again first (before moving its pods). */
  async lastSeenNow(nodeId: string): Promise<number> {
    if (!this.reachable(nodeId)) await this.reread(nodeId);
    return this.lastSeen(nodeId);
  }

  /**
   * Follow the links opened and closed on every coordinator (NodeStore.watchLinks): a node's
   * record is read again the moment its link changes anywhere, not at the next refresh.
   */
  async watch(): Promise<() => Promise<void>> {
    return this.nodes.watchLinks((nodeId) => void this.reread(nodeId).catch(() => undefined));
  }

  private async reread(nodeId: string): Promise<void> {
    const rec = await this.nodes.get(nodeId);
    if (rec) this.records.set(nodeId, seen(rec));
    else this.records.delete(nodeId);
  }

  /**
   * When the node was last known to be reachable: now when it is, else its last heartbeat, but
   * never before this coordinator started (so a restarted coordinator does not call every node
   * lost before the agents have had time to reconnect).
   */
  lastSeen(nodeId: string): number {
    if (this.reachable(nodeId)) return Date.now();
    const rec = this.records.get(nodeId);
    return Math.max(this.startedAt, rec?.heartbeatMs ?? 0);
  }
}

function seen(rec: NodeRecord): Seen {
  return { heartbeatMs: Date.parse(rec.lastHeartbeat), disconnected: !!rec.disconnectedAt, capacity: rec.capacity };
}
