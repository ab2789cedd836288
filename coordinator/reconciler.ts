import type { CoordinatorConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { podKey } from '../shared/pod.js';
import type { Observed } from '../shared/pod.js';
import type { Assignment } from '../shared/protocol.js';
import { containerExists, isCurrent } from '../shared/status.js';
import type { AgentHub } from './agents/hub.js';
import type { ReconcileObserver } from './metrics.js';
import type { PodBackend } from './backend/backend.js';
import type { NodeLiveness } from './node-liveness.js';
import type { PodChange } from './store/changes.js';
import type { NodeStore } from './store/nodes.js';
import type { ObservedStored, PodRecord, PodStore } from './store/pods.js';
import { podMounts } from '../shared/mounts.js';
import { podDataArea, type Mount } from '../shared/storage.js';
import type { ShareStore } from './store/shares.js';
import type { StorageClient } from './storage.js';
import { containerSpec } from './view.js';

interface Sent {
  kind: 'apply' | 'remove';
  generation: number;
  at: number;
  attempts: number;
}

const MAX_START_ATTEMPTS = 5;
const DELETE_GRACE_MS = 30_000;
/**
 * A settled pod is looked at again by the periodic sweep after 60-90 s (sooner when its node
 * goes away or drains): a safety net only, since every change to it comes through the change stream.
 */
const SETTLED_RECHECK_MS = 60_000;
/**
 * The periodic sweep lists every pod from Redis this often (and on a full sweep: at start, when a
 * node comes, after a gap in the change stream); in between it goes through the pods it knows of.
 */
const LIST_EVERY_MS = 30_000;

/** Resend delay after `attempts` earlier sends of the same command: 2 s, 4 s, ... 30 s. */
export function backoffMs(attempts: number): number {
  return Math.min(30_000, 2_000 * 2 ** attempts);
}

/** Names of the networking entries that are served on a TCP port of their own. */
export function dedicatedEntries(rec: PodRecord): string[] {
  return Object.entries(rec.spec.networking).filter(([, n]) => n.dedicated_port).map(([name]) => name);
}

/**
 * Drives each pod from its observed state toward its desired state. Level-triggered:
 * it looks at the whole record every time (read once per pass), so a lost message, a
 * restarted agent or a restarted coordinator is repaired by the next pass. Commands are
 * idempotent and carry the pod's generation, so sending one twice does no harm.
 *
 * A pass is started by a change: made here (the API, a report from an agent linked here, the
 * reconciler itself), or by another coordinator, read from the change stream (onChanges). Only
 * the coordinator linked to a pod's node sends it commands; any may place a pod, the placement
 * script keeping that exact. The periodic sweep is a safety net.
 */
export class Reconciler {
  private readonly running = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  private readonly sent = new Map<string, Sent>();
  private readonly deletingSince = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;
  private fullSweepAgain = false;
  /** Pods whose last pass found nothing to do until `until` while their node (if any) stays connected and not draining. */
  private readonly settled = new Map<string, { nodeId: string | null; until: number }>();
  /** Pods that found no host with room: looked at again as soon as room is given back anywhere. */
  private readonly waitingForRoom = new Set<string>();
  /**
   * Every pod there is, as last listed from Redis and kept up to date by the change stream (each
   * pod made or deleted through any coordinator or the CLI is on it) and by kicks: what the
   * periodic sweep goes through between listings, so it does not read 10,000 keys a second.
   */
  private readonly known = new Set<string>();
  private listedAt = 0;

  constructor(
    private readonly deps: {
      config: CoordinatorConfig;
      log: Logger;
      pods: PodStore;
      nodes: NodeStore;
      hub: AgentHub;
      backend: PodBackend;
      /** Whether a node is reachable (linked to any coordinator), and since when it is not. */
      liveness: Pick<NodeLiveness, 'reachable' | 'reachableNow' | 'lastSeenNow' | 'draining' | 'refresh'>;
      storage: StorageClient;
      volumes: ShareStore<'volume'>;
      snapshots: ShareStore<'snapshot'>;
      metrics?: ReconcileObserver;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(false), this.deps.config.reconcileIntervalMs);
    void this.sweep();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Reconcile one pod soon; calls for a pod already in progress coalesce into one more pass.
   * `made`: the pod as a script here just stored it (a create), which its first pass takes
   * instead of reading it back; any later pass reads it.
   */
  kick(tenant: string, podId: string, made?: PodRecord): void {
    const key = podKey(tenant, podId);
    this.known.add(key);
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    let first = made;
    const run = (async () => {
      do {
        this.dirty.delete(key);
        const started = performance.now();
        const given = first;
        first = undefined;
        try {
          await this.reconcile(tenant, podId, given);
          this.deps.metrics?.reconciled((performance.now() - started) / 1000, true);
        } catch (err) {
          this.deps.metrics?.reconciled((performance.now() - started) / 1000, false);
          this.deps.log.error({ err, pod: key }, 'reconcile failed');
        }
      } while (this.dirty.has(key));
    })().finally(() => this.running.delete(key));
    this.running.set(key, run);
  }

  /**
   * Kick every pod (`full`), or every pod but the settled ones: those are looked at again
   * when their recheck time comes, or at once when their node is gone or draining. So the
   * periodic sweep costs little per running pod, and 10,000 pods do not cost 10,000 passes a second.
   * The pods are listed from Redis on a full sweep and every LIST_EVERY_MS; in between the
   * sweep goes through those it knows of (see `known`).
   */
  async sweep(full = true): Promise<void> {
    if (this.sweeping) {
      if (full) this.fullSweepAgain = true;
      return;
    }
    this.sweeping = true;
    try {
      const { liveness } = this.deps;
      // A full sweep follows a change of nodes (one connected, an admin drained one): see it at once.
      if (full) await liveness.refresh();
      const now = Date.now();
      let keys: Iterable<string>;
      if (full || now - this.listedAt >= LIST_EVERY_MS) {
        const listed = await this.deps.pods.allKeys();
        // Added to what is known, not in its place: a pod kicked while the list was read stays known.
        // One gone meanwhile is forgotten by its next pass, which finds no record.
        for (const key of listed) this.known.add(key);
        this.listedAt = now;
        keys = listed;
        if (this.settled.size > listed.length) {
          const live = new Set(listed);
          for (const key of this.settled.keys()) if (!live.has(key)) this.settled.delete(key);
        }
      } else {
        keys = [...this.known];
      }
      for (const key of keys) {
        const s = this.settled.get(key);
        if (!full && s && s.until > now && (s.nodeId === null || (liveness.reachable(s.nodeId) && !liveness.draining(s.nodeId)))) continue;
        const [tenant, podId] = key.split('/') as [string, string];
        this.kick(tenant, podId);
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'sweep failed');
    } finally {
      this.sweeping = false;
      if (this.fullSweepAgain) {
        this.fullSweepAgain = false;
        void this.sweep(true);
      }
    }
  }

  /** Nothing to do for this pod until `stopAt` (or the recheck time), unless it changes or its node does. */
  private settle(key: string, nodeId: string | null, stopAt: number): void {
    const recheck = Date.now() + SETTLED_RECHECK_MS * (1 + Math.random() / 2);
    this.settled.set(key, { nodeId, until: Number.isFinite(stopAt) ? Math.min(stopAt, recheck) : recheck });
  }

  /**
   * An agent linked here reported on a pod (`stored`: the pod as it stands with the report). A
   * report that shows the pod as it should be (its current instance creating or running on the
   * node it is placed on, wanted ON, nothing noted, not due to stop) settles it: a pass would read
   * the pod only to find nothing to do. Any other report, or one that comes while a pass is under
   * way (it may have read the pod before the report), starts a pass.
   */
  onReport(tenant: string, podId: string, observed: Observed, stored: ObservedStored): void {
    const key = podKey(tenant, podId);
    const { desired, placement } = stored;
    const stopAt = desired.time_to_stop_ts ? Date.parse(desired.time_to_stop_ts) : NaN;
    const asWanted =
      !this.running.has(key) &&
      !desired.deleting &&
      desired.status_requested === 'ON' &&
      !stored.hasNote &&
      isCurrent(desired, observed) &&
      (observed.phase === 'running' || observed.phase === 'creating') &&
      placement?.nodeId === observed.nodeId &&
      !(stopAt <= Date.now());
    if (!asWanted) return this.kick(tenant, podId);
    this.waitingForRoom.delete(key);
    this.settle(key, observed.nodeId, stopAt);
  }

  /** Kick every pod: after a node connects, pods waiting for a host may now be placed. */
  onNodeUp(): void {
    void this.sweep();
  }

  /**
   * Changes read from the change stream. Changes made here were acted on when they were made;
   * of the others, a pass is started for each pod whose node (or whose last observed node) is
   * linked here: this coordinator is the one to tell that node. A pod's leaving a node gives
   * room back there, so pods waiting for room are looked at again, whoever made the change.
   */
  onChanges(changes: PodChange[]): void {
    const { hub, pods } = this.deps;
    let roomFreed = false;
    for (const c of changes) {
      if ((c.kind === 'unplaced' || c.kind === 'deleted') && c.node) roomFreed = true;
      const key = podKey(c.tenant, c.podId);
      if (c.kind === 'deleted') this.known.delete(key);
      else this.known.add(key);
      if (c.origin === pods.origin) continue;
      if (c.kind === 'deleted') {
        this.forget(key);
        continue;
      }
      if ((c.node && hub.isConnected(c.node)) || (c.observedNode && hub.isConnected(c.observedNode))) this.kick(c.tenant, c.podId);
    }
    if (roomFreed) {
      for (const key of this.waitingForRoom) {
        const [tenant, podId] = key.split('/') as [string, string];
        this.kick(tenant, podId);
      }
    }
  }

  private forget(key: string): void {
    this.known.delete(key);
    this.sent.delete(key);
    this.settled.delete(key);
    this.deletingSince.delete(key);
    this.waitingForRoom.delete(key);
  }

  /** The pods a node should run now: what it is told on (re)connect. */
  async assignmentsFor(nodeId: string): Promise<Assignment[]> {
    const out: Assignment[] = [];
    for (const key of await this.deps.pods.nodePodKeys(nodeId)) {
      const [tenant, podId] = key.split('/') as [string, string];
      const rec = await this.deps.pods.get(tenant, podId);
      if (rec && rec.placement?.nodeId === nodeId && wantsRunning(rec)) out.push(await this.assignmentOf(rec));
    }
    return out;
  }

  private async reconcile(tenant: string, podId: string, made?: PodRecord): Promise<void> {
    const { pods, hub, liveness, log, backend, config } = this.deps;
    const key = podKey(tenant, podId);
    this.settled.delete(key);
    this.waitingForRoom.delete(key);
    const rec = made ?? (await pods.get(tenant, podId));
    if (!rec) {
      this.forget(key);
      return;
    }
    const { desired, placement, observed } = rec;

    const stopAt = desired.time_to_stop_ts ? Date.parse(desired.time_to_stop_ts) : NaN;
    if (wantsRunning(rec) && stopAt <= Date.now()) {
      await pods.update(tenant, podId, (cur) =>
        cur.desired.generation === desired.generation && cur.desired.status_requested !== 'OFF'
          ? { desired: { ...cur.desired, status_requested: 'OFF', time_to_stop_ts: null } }
          : null,
      );
      await pods.action(tenant, podId, 'time_to_stop passed; pod turned OFF', 'time_to_stop');
      this.kick(tenant, podId);
      return;
    }

    if (!wantsRunning(rec)) {
      await backend.remove(rec);
      if (containerExists(observed)) {
        if (hub.isConnected(observed.nodeId)) {
          await this.dispatch(key, 'remove', observed.generation, () =>
            hub.remove(observed.nodeId, { tenant, podId, uid: observed.uid, generation: observed.generation }),
          );
          if (!desired.deleting || !this.graceOver(key)) return;
        } else if (await liveness.reachableNow(observed.nodeId)) {
          // Linked to another coordinator: that one removes it, and then (if deleting) the record.
          return this.settle(key, observed.nodeId, NaN);
        } else if (!desired.deleting) {
          return; // the node will be told on reconnect; its sync set no longer holds this pod
        }
      }
      if (desired.deleting) {
        // Its data directory goes with it (now, or when its host is back).
        const home = rec.home ?? placement?.nodeId ?? observed?.nodeId;
        if (rec.spec.data_dir && home) await this.deps.storage.deleteArea(home, podDataArea(tenant, podId, desired.uid));
        await pods.delete(tenant, podId, placement);
        this.forget(key);
        log.info({ pod: key }, 'pod deleted');
        return;
      }
      // The container is gone: its room on the node is given back in the same step.
      if (placement) await pods.unplace(tenant, podId, placement, rec.raw.placement);
      // Only now, with the container and its route gone, may another pod get the port.
      if (Object.keys(rec.ports).length) await pods.releasePorts(tenant, podId);
      this.sent.delete(key);
      this.settle(key, null, NaN);
      return;
    }

    // An instance left on a host the pod has moved off: remove it there.
    if (observed && placement && observed.nodeId !== placement.nodeId && containerExists(observed) && hub.isConnected(observed.nodeId)) {
      const old = observed;
      await this.dispatch(`${key}@${old.nodeId}`, 'remove', old.generation, () =>
        hub.remove(old.nodeId, { tenant, podId, uid: old.uid, generation: old.generation }),
      );
    }

    const pin = await this.pinOf(rec);
    if ('reason' in pin) {
      if (rec.note !== pin.reason) await pods.setNote(tenant, podId, pin.reason);
      return;
    }
    if (placement && pin.node === placement.nodeId && !liveness.reachable(placement.nodeId)) {
      // Its data is on that host: it waits there, and is never started elsewhere on empty data.
      const why = `host ${placement.nodeId}, which holds this pod's data, is unreachable; the pod waits for it`;
      if (rec.note !== why) await pods.setNote(tenant, podId, why);
      return;
    }
    if (placement && pin.node !== placement.nodeId && (await this.shouldMove(placement.nodeId))) {
      const why = liveness.reachable(placement.nodeId) ? `node ${placement.nodeId} is draining` : `node ${placement.nodeId} has been unreachable for over ${config.lostAfterS} s`;
      const moved = await pods.update(tenant, podId, (cur) =>
        cur.raw.placement === rec.raw.placement && cur.desired.generation === desired.generation
          ? { desired: { ...cur.desired, generation: cur.desired.generation + 1 } }
          : null,
      );
      if (moved && moved.desired.generation === desired.generation + 1) {
        await pods.unplace(tenant, podId, placement, rec.raw.placement);
        await pods.action(tenant, podId, `${why}; starting instance ${desired.generation + 1} elsewhere`, 'moved', { generation: desired.generation + 1 });
        if (hub.isConnected(placement.nodeId) && observed && containerExists(observed)) {
          await hub.remove(placement.nodeId, { tenant, podId, uid: observed.uid, generation: observed.generation }).catch(() => undefined);
        }
      }
      return this.kick(tenant, podId);
    }

    if ((await backend.ensure(rec)) === 'changed') return this.kick(tenant, podId);
    let nodeId = placement?.nodeId;
    let justPlaced = false;
    if (!nodeId) {
      const chosen = await backend.place(rec, pin.node ?? undefined);
      if ('changed' in chosen) return this.kick(tenant, podId);
      this.deps.metrics?.placed('reason' in chosen ? 'no_room' : 'placed');
      if ('reason' in chosen) {
        // Stays REQUESTED, saying why; placed when room is given back or a node with room connects.
        this.waitingForRoom.add(key);
        if (rec.note !== chosen.reason) await pods.setNote(tenant, podId, chosen.reason);
        return;
      }
      if (rec.note) await pods.setNote(tenant, podId, null);
      if (rec.spec.data_dir && !rec.home && !config.sharedStorage) await pods.setHome(tenant, podId, chosen.nodeId);
      // Its "scheduled" event was written with the placement.
      nodeId = chosen.nodeId;
      justPlaced = true;
    } else if (rec.note && liveness.reachable(nodeId)) {
      await pods.setNote(tenant, podId, null);
    }
    // The coordinator linked to the node tells it (it reads this change from the stream).
    if (!hub.isConnected(nodeId)) return liveness.reachable(nodeId) ? this.settle(key, nodeId, stopAt) : undefined;

    if (isCurrent(desired, observed)) {
      if (desired.status_requested === 'RESTART' && (observed.phase === 'running' || observed.phase === 'exited')) {
        // The restart is done: its new instance runs (or ran).
        await pods.update(tenant, podId, (cur) =>
          cur.desired.generation === desired.generation && cur.desired.status_requested === 'RESTART' ? { desired: { ...cur.desired, status_requested: 'ON' } } : null,
        );
      }
      if (observed.phase === 'running' || observed.phase === 'creating' || observed.phase === 'exited') return this.settle(key, nodeId, stopAt);
      if (observed.phase === 'failed' && (!backend.retriesFailedStarts || (this.sent.get(key)?.attempts ?? 0) >= MAX_START_ATTEMPTS - 1)) return;
    }
    // What was read at the start is sent: a change since then starts another pass, which sends anew.
    const target = nodeId;
    const first = this.sent.get(key)?.generation !== desired.generation;
    const sentNow = await this.dispatch(key, 'apply', desired.generation, async () => hub.apply(target, await this.assignmentOf(rec)));
    // (Right after its placement, the "scheduled" event says as much.)
    if (sentNow && first && !justPlaced) await pods.action(tenant, podId, `asked node ${target} to start instance ${desired.generation}`);
  }

  /** The command for a pod's current instance: placeholders filled, dedicated ports given. */
  async assignmentOf(rec: PodRecord): Promise<Assignment> {
    const { pods, config } = this.deps;
    const { tenant, pod_id: podId } = rec.spec;
    const wanted = dedicatedEntries(rec);
    const ports = wanted.every((n) => rec.ports[n]) ? rec.ports : await pods.allocatePorts(tenant, podId, wanted, config.tcpPortRange);
    return {
      tenant,
      podId,
      uid: rec.desired.uid,
      generation: rec.desired.generation,
      spec: containerSpec(rec.spec, config.baseDomain, await pods.secrets(tenant, podId, rec.desired.uid), ports, this.mountsOf(rec)),
    };
  }

  /** The pod's storage: its own data directory, then its volumes and snapshots. */
  private mountsOf(rec: PodRecord): Mount[] {
    const { tenant, pod_id: podId } = rec.spec;
    const out: Mount[] = [];
    if (rec.spec.data_dir) out.push({ area: podDataArea(tenant, podId, rec.desired.uid), subPath: '', target: rec.spec.data_dir, readOnly: false, ownedByPod: true });
    for (const m of podMounts(rec.spec.volume_mounts)) {
      out.push({ area: { kind: m.kind, tenant, id: m.sourceId }, subPath: m.subPath, target: m.mountPath, readOnly: m.readOnly, ownedByPod: false });
    }
    return out;
  }

  /**
   * The host a pod must run on because its data is there (null: any host), or why it cannot
   * run anywhere now. With shared storage every host sees the same data, so nothing is pinned.
   */
  private async pinOf(rec: PodRecord): Promise<{ node: string | null } | { reason: string }> {
    if (this.deps.config.sharedStorage) return { node: null };
    let node: string | null = rec.spec.data_dir ? rec.home : null;
    let holder = node ? "the pod's data directory" : '';
    for (const m of podMounts(rec.spec.volume_mounts)) {
      const store = m.kind === 'volume' ? this.deps.volumes : this.deps.snapshots;
      const share = await store.get(rec.spec.tenant, m.sourceId);
      if (!share) return { reason: `${m.kind} ${m.sourceId}, which it mounts, does not exist` };
      if (share.status !== 'AVAILABLE' || !share.node) return { reason: `${m.kind} ${m.sourceId}, which it mounts, is not available yet` };
      if (node && share.node !== node) return { reason: `its storage is on different hosts (${holder} on ${node}, ${m.kind} ${m.sourceId} on ${share.node})` };
      node = share.node;
      holder = `${m.kind} ${m.sourceId}`;
    }
    return { node };
  }

  /**
   * A pod leaves its node when the node drains, or has sent no heartbeat for lost_after. The
   * heartbeat is read from Redis, not from this coordinator's links, so a node connected to
   * another coordinator on the same Redis is not taken for lost.
   */
  private async shouldMove(nodeId: string): Promise<boolean> {
    const { liveness, config } = this.deps;
    if (liveness.draining(nodeId)) return true;
    if (liveness.reachable(nodeId)) return false;
    return Date.now() - (await liveness.lastSeenNow(nodeId)) > config.lostAfterS * 1000;
  }

  private graceOver(key: string): boolean {
    const since = this.deletingSince.get(key) ?? Date.now();
    this.deletingSince.set(key, since);
    return Date.now() - since > DELETE_GRACE_MS;
  }

  /** Send a command unless the same one was sent recently; resends back off. Returns whether it was sent. */
  private async dispatch(key: string, kind: Sent['kind'], generation: number, send: () => Promise<void>): Promise<boolean> {
    const prev = this.sent.get(key);
    const same = prev && prev.kind === kind && prev.generation === generation;
    if (same && Date.now() - prev.at < backoffMs(prev.attempts)) return false;
    this.sent.set(key, { kind, generation, at: Date.now(), attempts: same ? prev.attempts + 1 : 0 });
    this.deps.metrics?.dispatched(kind, Boolean(same));
    try {
      await send();
    } catch (err) {
      this.deps.log.warn({ pod: key, kind, err: (err as Error).message }, 'dispatch failed; will retry');
    }
    return true;
  }
}

function wantsRunning(rec: PodRecord): boolean {
  return !rec.desired.deleting && rec.desired.status_requested !== 'OFF';
}
