import type { NodeAdmin, NodeRecord, NodeStore } from './store/nodes.js';

/** A node whose last heartbeat is older than this is unreachable (agents beat every 5 s by default). */
export const HEARTBEAT_STALE_MS = 15_000;

/**
 * The one meaning of "node reachable", for the API and the reconciler alike: the node has a live
 * link to some coordinator, as its heartbeat in Redis says (written by whichever coordinator
 * holds the link; its link closing marks it disconnected at once). A node linked to this
 * coordinator is reachable without asking. The records are read again every `refreshMs`, so
 * answers are synchronous and cost no Redis call.
 */
export class NodeLiveness {
  private records = new Map<string, Pick<NodeRecord, 'lastHeartbeat' | 'disconnectedAt'>>();
  private admins = new Map<string, NodeAdmin>();
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();

  constructor(
    private readonly nodes: Pick<NodeStore, 'list' | 'admins' | 'get'>,
    /** Whether this coordinator holds a live link to the node. */
    private readonly linkedHere: (nodeId: string) => boolean,
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
    const [list, admins] = await Promise.all([this.nodes.list(), this.nodes.admins()]);
    this.records = new Map(list.map((n) => [n.nodeId, { lastHeartbeat: n.lastHeartbeat, disconnectedAt: n.disconnectedAt }]));
    this.admins = admins;
  }

  /** Whether a site admin is draining the node (as of the last refresh). */
  draining(nodeId: string): boolean {
    return this.admins.get(nodeId)?.draining ?? false;
  }

  reachable(nodeId: string): boolean {
    if (this.linkedHere(nodeId)) return true;
    const rec = this.records.get(nodeId);
    return !!rec && !rec.disconnectedAt && Date.now() - Date.parse(rec.lastHeartbeat) < (this.opts.staleMs ?? HEARTBEAT_STALE_MS);
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

  private async reread(nodeId: string): Promise<void> {
    const rec = await this.nodes.get(nodeId);
    if (rec) this.records.set(nodeId, { lastHeartbeat: rec.lastHeartbeat, disconnectedAt: rec.disconnectedAt });
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
    return Math.max(this.startedAt, rec ? Date.parse(rec.lastHeartbeat) : 0);
  }
}
