import Docker from 'dockerode';
import type { CoordinatorConfig } from '../../../shared/config.js';
import type { Logger } from '../../../shared/log.js';
import { podKey, type Observed } from '../../../shared/pod.js';
import type { PickResult } from '../../scheduler.js';
import type { NodeStore } from '../../store/nodes.js';
import type { PodRecord, PodStore } from '../../store/pods.js';
import { containerSpec } from '../../view.js';
import type { PodBackend } from '../backend.js';
import { serviceName, serviceSpec, SL } from './service-spec.js';

/** Swarm places by its own reckoning: the room check of our placement script is not asked. */
const UNLIMITED = { cpuMilli: Number.MAX_SAFE_INTEGER, memoryMb: Number.MAX_SAFE_INTEGER };
/** Task states in which the task is on its node and its container is (being) made there. */
const ON_NODE = new Set(['assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);
/** Task states that end a task without a container of ours having run to its end. */
const FAILED = new Set(['failed', 'rejected']);

/** The fields of Docker's task and node objects read here. */
interface Task {
  ID: string;
  CreatedAt?: string;
  NodeID?: string;
  Spec?: { ContainerSpec?: { Labels?: Record<string, string> } };
  Status?: { State?: string; Err?: string; Message?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
}
interface SwarmNode {
  ID: string;
  Version?: { Index?: number };
  Spec?: { Labels?: Record<string, string>; Availability?: string; Role?: string };
  Description?: { Hostname?: string };
}

/** Our node id for a Swarm node: its `pods.node` label, else its host name (the agents' default node id). */
function ourNodeId(n: SwarmNode): string {
  return n.Spec?.Labels?.[SL.node] ?? n.Description?.Hostname?.toLowerCase() ?? n.ID;
}

/** Our node admin state as a Swarm node availability. */
const availabilityOf = (a: { cordoned: boolean; draining: boolean }) => (a.draining ? 'drain' : a.cordoned ? 'pause' : 'active');

/**
 * Pods on a Docker Swarm (PODS_BACKEND=swarm): each pod a one-replica service on the manager
 * at PODS_SWARM_DOCKER_SOCKET (see service-spec.ts). Swarm places its task; the pod is placed
 * on the node of its current task, where that node's agent takes charge of the container
 * (agent/runtime/swarm-task.ts) and reports it as for its own. What no agent can see comes from
 * the tasks: why a task waits ("no suitable node ..."), a task that failed before its container
 * ran, a task Swarm moved to another node by itself (the node was lost). Cordon and drain are
 * our node admin state, applied to the Swarm nodes' availability (pause, drain); the reconciler
 * moves a drained node's pods as with the agents (a new instance: Swarm replaces the task).
 */
export class SwarmBackend implements PodBackend {
  readonly name = 'swarm';
  readonly retriesFailedStarts = false;
  private readonly docker: Docker;
  private timer: NodeJS.Timeout | null = null;
  private watching = false;
  /** Per pod, what its current task looked like at the last watch: a change kicks the pod. */
  private readonly seen = new Map<string, string>();
  /** Swarm node id -> our node id, from the last watch. */
  private nodeIds = new Map<string, string>();
  /** The last availability sync (see syncAvailability). */
  private availability: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: { config: CoordinatorConfig; log: Logger; pods: PodStore; nodes: NodeStore; watchMs: number },
  ) {
    this.docker = new Docker({ socketPath: deps.config.swarmDockerSocket });
  }

  start(changed: (tenant: string, podId: string) => void): void {
    this.timer = setInterval(() => void this.watch(changed), this.deps.watchMs);
    void this.watch(changed);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async ensure(rec: PodRecord): Promise<'ok' | 'changed'> {
    const { tenant, pod_id: podId } = rec.spec;
    if (rec.spec.data_dir || Object.keys(rec.spec.volume_mounts).length) return 'ok'; // place() says why it cannot run
    const service = await this.service(tenant, podId);
    const labels = service?.Spec?.Labels ?? {};
    const replicas = service?.Spec?.Mode?.Replicated?.Replicas;
    if (!service || labels[SL.uid] !== rec.desired.uid || Number(labels[SL.generation]) !== rec.desired.generation || replicas !== 1) {
      const spec = serviceSpec({
        tenant, podId, uid: rec.desired.uid, generation: rec.desired.generation, replicas: 1,
        spec: containerSpec(rec.spec, this.deps.config.baseDomain, await this.deps.pods.secrets(tenant, podId), rec.ports),
        image: await this.imageRef(rec.spec.image),
        defaultUser: this.deps.config.swarmContainerUser,
        pidsLimit: this.deps.config.swarmPidsLimit,
      });
      // A pod moved off a node being drained gets its new task only once Swarm knows of the drain:
      // the watch sets it within a second, but an update before that could land on the same node.
      await this.syncAvailability();
      if (service) await this.docker.getService(service.ID).update({ version: service.Version?.Index, ...spec });
      else await this.docker.createService(spec as never);
      this.deps.log.info({ pod: podKey(tenant, podId), generation: rec.desired.generation }, service ? 'swarm service updated' : 'swarm service created');
    }
    // Placed on a node whose task is gone or elsewhere now: Swarm moved it (the watch says so too).
    if (rec.placement) {
      const task = await this.currentTask(rec);
      const state = task?.Status?.State ?? '';
      const on = task?.NodeID ? this.nodeIds.get(task.NodeID) : undefined;
      if (on && on !== rec.placement.nodeId && ON_NODE.has(state)) {
        await this.moved(rec, on);
        return 'changed';
      }
      if (task && on === rec.placement.nodeId && FAILED.has(state)) await this.taskFailed(rec, on, task);
    }
    return 'ok';
  }

  async place(rec: PodRecord): Promise<PickResult | { changed: true }> {
    const { tenant, pod_id: podId } = rec.spec;
    if (rec.spec.data_dir || Object.keys(rec.spec.volume_mounts).length) {
      return { reason: 'data_dir and volume_mounts are not supported with PODS_BACKEND=swarm' };
    }
    const task = await this.currentTask(rec);
    const state = task?.Status?.State ?? '';
    if (!task?.NodeID || !(ON_NODE.has(state) || FAILED.has(state))) {
      const why = task?.Status?.Err ?? (task?.Status?.Message && task.Status.Message !== 'created' ? task.Status.Message : 'waiting for it to be placed');
      return { reason: `Swarm: ${why}` };
    }
    await this.refreshNodes();
    const nodeId = this.nodeIds.get(task.NodeID);
    if (!nodeId) return { reason: `Swarm placed it on node ${task.NodeID}, which is not known here` };
    const r = await this.deps.pods.place(tenant, podId, { nodeId, at: new Date().toISOString() }, UNLIMITED);
    if (r.result !== 'placed') return { changed: true };
    if (FAILED.has(state)) await this.taskFailed(rec, nodeId, task);
    return { nodeId };
  }

  async remove(rec: PodRecord): Promise<void> {
    const { tenant, pod_id: podId } = rec.spec;
    const service = await this.service(tenant, podId);
    if (!service) return;
    if (rec.desired.deleting) {
      await this.docker.getService(service.ID).remove().catch((err) => {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      });
      this.seen.delete(podKey(tenant, podId));
      this.deps.log.info({ pod: podKey(tenant, podId) }, 'swarm service removed');
      return;
    }
    if (service.Spec?.Mode?.Replicated?.Replicas === 0) return;
    const spec = { ...service.Spec, Mode: { Replicated: { Replicas: 0 } } };
    await this.docker.getService(service.ID).update({ version: service.Version?.Index, ...spec });
    this.deps.log.info({ pod: podKey(tenant, podId) }, 'swarm service scaled to 0');
  }

  private async service(tenant: string, podId: string): Promise<Docker.Service | null> {
    try {
      return await this.docker.getService(serviceName(tenant, podId)).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  /** The newest task of the pod's current instance. */
  private async currentTask(rec: PodRecord): Promise<Task | null> {
    const tasks = (await this.docker.listTasks({ filters: { service: [serviceName(rec.spec.tenant, rec.spec.pod_id)] } })) as unknown as Task[];
    return newestOf(tasks.filter((t) => isInstance(t, rec.desired.uid, rec.desired.generation)));
  }

  /** PODS_SWARM_IMAGES=local: the image ID the manager has for the name, so no node asks a registry. */
  private async imageRef(image: string): Promise<string> {
    if (this.deps.config.swarmImages !== 'local') return image;
    try {
      return (await this.docker.getImage(image).inspect()).Id;
    } catch {
      return image; // not on the manager: the nodes look it up by name
    }
  }

  private async refreshNodes(): Promise<SwarmNode[]> {
    const list = (await this.docker.listNodes()) as SwarmNode[];
    this.nodeIds = new Map(list.map((n) => [n.ID, ourNodeId(n)]));
    return list;
  }

  /** Swarm runs the pod's instance on `to` now: the instance on its old node is gone. */
  private async moved(rec: PodRecord, to: string): Promise<void> {
    const { tenant, pod_id: podId } = rec.spec;
    const from = rec.placement!;
    if ((await this.deps.pods.unplace(tenant, podId, from, rec.raw.placement)) !== 'set') return;
    const gone: Observed = { nodeId: from.nodeId, uid: rec.desired.uid, generation: rec.desired.generation, phase: 'removed', health: 'unknown', hostPorts: {}, at: new Date().toISOString() };
    await this.deps.pods.setObserved(tenant, podId, gone);
    await this.deps.pods.action(tenant, podId, `Swarm moved instance ${rec.desired.generation} from node ${from.nodeId} to node ${to}`, 'moved', { generation: rec.desired.generation, node: to });
  }

  /** A task that failed before its container ran (no agent saw one): its reason is the pod's. */
  private async taskFailed(rec: PodRecord, nodeId: string, task: Task): Promise<void> {
    if (task.Status?.ContainerStatus?.ContainerID) return; // the agent reports how its container ended
    const message = `Swarm: ${task.Status?.Err ?? 'the task failed'}`;
    if (rec.observed?.generation === rec.desired.generation && rec.observed.phase === 'failed' && rec.observed.message === message) return;
    const { tenant, pod_id: podId } = rec.spec;
    const observed: Observed = {
      nodeId, uid: rec.desired.uid, generation: rec.desired.generation, phase: 'failed', message, health: 'unknown', hostPorts: {}, at: new Date().toISOString(),
      ...(task.Status?.ContainerStatus?.ExitCode ? { exitCode: task.Status.ContainerStatus.ExitCode } : {}),
    };
    if ((await this.deps.pods.setObserved(tenant, podId, observed)) !== 'stale') {
      await this.deps.pods.action(tenant, podId, `node ${nodeId}: instance ${rec.desired.generation} failed: ${message}`, 'failed', { generation: rec.desired.generation, node: nodeId });
    }
  }

  /**
   * Each Swarm node's availability set from our admin state (cordoned: pause, draining: drain).
   * One at a time (a node's update names its version), each reading the admin state afresh.
   */
  private syncAvailability(): Promise<void> {
    const next = this.availability.then(() => this.setAvailability());
    this.availability = next.catch(() => undefined);
    return next;
  }

  private async setAvailability(): Promise<void> {
    const [nodes, admins] = await Promise.all([this.refreshNodes(), this.deps.nodes.admins()]);
    for (const n of nodes) {
      const admin = admins.get(ourNodeId(n));
      const want = availabilityOf(admin ?? { cordoned: false, draining: false });
      const spec = n.Spec;
      if (spec?.Availability !== want && (admin || spec?.Availability !== 'active')) {
        await this.docker.getNode(n.ID).update({ version: n.Version?.Index, ...spec, Availability: want });
        this.deps.log.info({ node: ourNodeId(n), availability: want }, 'swarm node availability set');
      }
    }
  }

  /**
   * One look at the Swarm: node availability set from our admin state, and every pod whose
   * current task changed since the last look kicked (its reconcile reads the task again).
   */
  private async watch(changed: (tenant: string, podId: string) => void): Promise<void> {
    if (this.watching) return;
    this.watching = true;
    try {
      await this.syncAvailability();
      const tasks = (await this.docker.listTasks()) as unknown as Task[];
      const byPod = new Map<string, Task[]>();
      for (const t of tasks) {
        const labels = t.Spec?.ContainerSpec?.Labels ?? {};
        if (labels[SL.managed] !== '1') continue;
        const key = podKey(labels[SL.tenant] ?? '', labels[SL.podId] ?? '');
        byPod.set(key, [...(byPod.get(key) ?? []), t]);
      }
      for (const [key, list] of byPod) {
        const t = newestOf(list);
        const fingerprint = t ? `${t.ID}|${t.Status?.State}|${t.NodeID ?? ''}|${t.Status?.Err ?? ''}` : '';
        if (this.seen.get(key) === fingerprint) continue;
        this.seen.set(key, fingerprint);
        const [tenant, podId] = key.split('/') as [string, string];
        changed(tenant, podId);
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'swarm watch failed');
    } finally {
      this.watching = false;
    }
  }
}

function isInstance(t: Task, uid: string, generation: number): boolean {
  const labels = t.Spec?.ContainerSpec?.Labels ?? {};
  return labels[SL.uid] === uid && Number(labels[SL.generation]) === generation;
}

function newestOf(tasks: Task[]): Task | null {
  let best: Task | null = null;
  for (const t of tasks) if (!best || (t.CreatedAt ?? '') > (best.CreatedAt ?? '')) best = t;
  return best;
}
