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

/**
 * Chooses a host for a pod: among connected nodes whose free capacity fits the
 * pod's requests, the one with the most free CPU (so pods spread), then fewest pods.
 */
export function chooseNode(nodes: NodeView[], usage: Map<string, Usage>, req: Pick<FullResources, 'cpu_request' | 'mem_request'>): string | null {
  let best: { nodeId: string; freeCpu: number; pods: number } | null = null;
  for (const n of nodes) {
    const u = usage.get(n.nodeId) ?? { cpuMilli: 0, memoryMb: 0, pods: 0 };
    const freeCpu = n.capacity.cpuMilli - u.cpuMilli;
    const freeMem = n.capacity.memoryMb - u.memoryMb;
    if (freeCpu < req.cpu_request || freeMem < req.mem_request) continue;
    if (!best || freeCpu > best.freeCpu || (freeCpu === best.freeCpu && u.pods < best.pods)) best = { nodeId: n.nodeId, freeCpu, pods: u.pods };
  }
  return best?.nodeId ?? null;
}

export class Scheduler {
  constructor(
    private readonly pods: PodStore,
    private readonly nodes: () => NodeView[],
    /** Nodes that take no new pods (cordoned or draining). */
    private readonly closed: () => Promise<Set<string>> = async () => new Set(),
  ) {}

  /** What the pods placed on a node request in all. */
  async usage(nodeId: string): Promise<Usage> {
    const u: Usage = { cpuMilli: 0, memoryMb: 0, pods: 0 };
    for (const key of await this.pods.nodePodKeys(nodeId)) {
      const [tenant, podId] = key.split('/') as [string, string];
      const rec = await this.pods.get(tenant, podId);
      if (!rec) continue;
      u.cpuMilli += rec.spec.resources.cpu_request;
      u.memoryMb += rec.spec.resources.mem_request;
      u.pods += 1;
    }
    return u;
  }

  /** A node for these requests, or why there is none (said in the pod's status while it waits). */
  async pick(req: Pick<FullResources, 'cpu_request' | 'mem_request'>): Promise<{ nodeId: string } | { reason: string }> {
    const closed = await this.closed();
    const nodes = this.nodes().filter((n) => !closed.has(n.nodeId));
    if (!nodes.length) return { reason: closed.size ? 'no host is taking pods: every connected host is cordoned or draining' : 'no host is connected' };
    const usage = new Map<string, Usage>();
    for (const n of nodes) usage.set(n.nodeId, await this.usage(n.nodeId));
    const nodeId = chooseNode(nodes, usage, req);
    return nodeId ? { nodeId } : { reason: `no host has room for ${req.cpu_request}m CPU and ${req.mem_request} MiB of memory` };
  }
}
