import Docker from 'dockerode';
import type { Assignment } from '../../shared/protocol.js';
import { DockerRuntime, type RuntimeOptions } from './docker.js';
import { RuntimeError, type EngineStart, type PodContainer } from './runtime.js';

/** How long an agent waits for Swarm to start the task the coordinator saw placed here. */
const TASK_WAIT_MS = 120_000;
const TASK_POLL_MS = 200;

/** Swarm labels every task container with the id of the node it runs on. */
const SWARM_NODE_LABEL = 'com.docker.swarm.node.id';

/**
 * The agent's runtime on a Docker Swarm node (PODS_BACKEND=swarm). Swarm makes, restarts and
 * removes the pods' containers (one service per pod, see coordinator/backend/swarm/); the
 * agent takes charge of the task containers on its own engine as it does of its own: routes,
 * logs, health checks, exec and files. So it never creates or removes one:
 * `createAndStart` waits for the task's container, `remove` lets go of it.
 */
export class SwarmTaskRuntime extends DockerRuntime {
  /** `swarmNodeId`: this engine's node id in the Swarm (docker info: Swarm.NodeID). */
  constructor(opts: Omit<RuntimeOptions, 'owner'>, swarmNodeId: string) {
    super({ ...opts, owner: { label: SWARM_NODE_LABEL, value: swarmNodeId } });
  }

  /** This engine's Swarm node id; throws while the engine is in no Swarm. */
  static async nodeIdOf(socketPath: string): Promise<string> {
    const info = await new Docker({ socketPath }).info();
    const id = info.Swarm?.NodeID as string | undefined;
    if (!id || info.Swarm?.LocalNodeState !== 'active') throw new Error(`the Docker engine at ${socketPath} is not an active Swarm node (PODS_BACKEND=swarm)`);
    return id;
  }

  /** The task's container of this instance, once Swarm has made it here. */
  override async createAndStart(a: Assignment): Promise<PodContainer> {
    const deadline = Date.now() + TASK_WAIT_MS;
    for (;;) {
      const mine = await this.list({ tenant: a.tenant, podId: a.podId });
      // Running with its address on the bridge (routes need it), or ended already.
      const c = mine.find((x) => x.uid === a.uid && x.generation === a.generation && ((x.state === 'running' && x.address) || x.state === 'exited'));
      if (c) return c;
      if (Date.now() > deadline) throw new RuntimeError('START_FAILED', `Swarm started no container for instance ${a.generation} on this node within ${TASK_WAIT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, TASK_POLL_MS));
    }
  }

  /**
   * A task container Swarm has not finished starting (not running yet, or running with no
   * address on its bridge yet) counts as created: the supervisor then calls `start`, which waits
   * for it, instead of taking it as running with nothing to route to.
   */
  override async inspect(id: string): Promise<PodContainer | null> {
    const c = await super.inspect(id);
    return c && c.state === 'running' && !c.address ? { ...c, state: 'created' } : c;
  }

  /** Swarm starts its tasks' containers: wait until this one runs with an address, or has ended. */
  override async start(id: string): Promise<PodContainer> {
    const deadline = Date.now() + TASK_WAIT_MS;
    for (;;) {
      const c = await this.inspect(id);
      if (!c) throw new RuntimeError('START_FAILED', `container ${id.slice(0, 12)} is gone`);
      if (c.state === 'running' || c.state === 'exited') return c;
      if (Date.now() > deadline) throw new RuntimeError('START_FAILED', `Swarm did not start container ${id.slice(0, 12)} within ${TASK_WAIT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, TASK_POLL_MS));
    }
  }

  /** Swarm stops and removes its tasks' containers (when the coordinator scales or removes the service). */
  override async remove(): Promise<void> {}

  /** Swarm replaces the tasks its engine stopped by itself: the agent never starts one again. */
  override async engineStart(): Promise<EngineStart | null> {
    return null;
  }

  /** A task publishes no ports (no routing mesh): the host's Caddy reaches the container on its bridge. */
  protected override reach(info: Docker.ContainerInspectInfo, portNames: Record<string, number>): Pick<PodContainer, 'hostPorts' | 'address'> {
    const nets = Object.values(info.NetworkSettings.Networks ?? {});
    const address = nets.find((n) => n.IPAddress)?.IPAddress;
    if (!address || info.State.Status !== 'running') return { hostPorts: {} };
    return { hostPorts: { ...portNames }, address };
  }
}
