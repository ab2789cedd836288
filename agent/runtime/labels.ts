// Labels on every container the agent makes: they are how it finds its own
// containers again after a restart, and how it tells pods, instances and nodes apart.
export const L = {
  managed: 'pods.managed',
  node: 'pods.node',
  tenant: 'pods.tenant',
  podId: 'pods.pod_id',
  uid: 'pods.uid',
  generation: 'pods.generation',
} as const;

export function containerName(tenant: string, podId: string, uid: string, generation: number): string {
  return `pods-${tenant}-${podId}-${uid}-g${generation}`;
}
