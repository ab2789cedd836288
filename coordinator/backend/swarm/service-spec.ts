import { createHash } from 'node:crypto';
import type { ContainerSpec } from '../../../shared/protocol.js';

/** Labels on each pod's service and on its tasks' containers (the agents find them by these, as by their own). */
export const SL = {
  managed: 'pods.managed',
  tenant: 'pods.tenant',
  podId: 'pods.pod_id',
  uid: 'pods.uid',
  generation: 'pods.generation',
  ports: 'pods.ports',
  /** On a Swarm node: the node id its agent connects with (PODS_NODE_ID). */
  node: 'pods.node',
} as const;

/** What a pod's service runs. */
export interface ServiceInstance {
  tenant: string;
  podId: string;
  uid: string;
  generation: number;
  spec: ContainerSpec;
  /** The image reference to run: a name, or the image ID the manager holds for it (PODS_SWARM_IMAGES=local). */
  image: string;
  /** The user when the pod's spec names none (the agents' PODS_CONTAINER_USER). */
  defaultUser: string;
  pidsLimit: number;
  /** One replica, or none while the pod is stopped. */
  replicas: 0 | 1;
  /** Only on this node (its data is there), as our node id. */
  only?: string;
}

/**
 * A pod's service name: fixed length and unique per tenant and pod (Docker names are at most 63
 * characters; a tenant and pod id may be longer). The labels say whose it is.
 */
export function serviceName(tenant: string, podId: string): string {
  return `pods-${createHash('sha256').update(`${tenant}/${podId}`).digest('hex').slice(0, 20)}`;
}

/**
 * The Swarm service of one pod instance: one replica, labelled with tenant, pod, uid and
 * generation; the generation is also ForceUpdate, so a new instance (a restart) always gets
 * a new task. Its container is made as the agents make theirs (agent/runtime/docker.ts):
 * the pod's user, every capability dropped, tini as PID 1, CPU and memory limits and
 * reservations, a pids limit and a bounded json-file log. RestartPolicy `none`: a container
 * that exits is COMPLETE (code 0) or ERROR, as with the agents; Swarm still starts a new task
 * when a node is lost or drained. Endpoint mode dnsrr and no published ports: there is no
 * routing mesh (no IPVS); the agent of the task's node routes to the container on its bridge.
 */
export function serviceSpec(i: ServiceInstance): Record<string, unknown> {
  const { spec } = i;
  const labels = { [SL.managed]: '1', [SL.tenant]: i.tenant, [SL.podId]: i.podId, [SL.uid]: i.uid, [SL.generation]: String(i.generation) };
  const ports = Object.fromEntries(spec.ports.map((p) => [p.name, p.port]));
  return {
    Name: serviceName(i.tenant, i.podId),
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: i.image,
        Labels: { ...labels, [SL.ports]: JSON.stringify(ports) },
        ...(spec.command ? { Command: spec.command } : {}),
        ...(spec.args ? { Args: spec.args } : {}),
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        User: spec.user ?? i.defaultUser,
        Init: true,
        CapabilityDrop: ['ALL'],
        StopGracePeriod: 5_000_000_000,
      },
      Resources: {
        Limits: { NanoCPUs: spec.cpuLimitMilli * 1_000_000, MemoryBytes: spec.memLimitMb * 1024 * 1024, Pids: i.pidsLimit },
        Reservations: { NanoCPUs: spec.cpuRequestMilli * 1_000_000, MemoryBytes: spec.memRequestMb * 1024 * 1024 },
      },
      RestartPolicy: { Condition: 'none' },
      Placement: i.only ? { Constraints: [`node.labels.${SL.node}==${i.only}`] } : {},
      LogDriver: { Name: 'json-file', Options: { 'max-size': '10m', 'max-file': '2' } },
      ForceUpdate: i.generation,
    },
    Mode: { Replicated: { Replicas: i.replicas } },
    UpdateConfig: { Parallelism: 1, Order: 'stop-first', FailureAction: 'continue' },
    EndpointSpec: { Mode: 'dnsrr' },
  };
}
