// Every Redis key the coordinator uses is built here, under one prefix, so a
// test can use a random prefix and an operator can see the whole keyspace.

export class Keys {
  constructor(readonly prefix: string) {}
  /**
   * Stream of pod changes, bounded (XADD MAXLEN ~): one entry per state transition, appended by
   * the script that makes it (see recordChange in scripts.ts); coordinators follow it (ChangeFeed).
   */
  changes() { return `${this.prefix}changes`; }
  /** Integer: the number of the last entry appended to changes(), so a follower sees a gap. */
  changeSeq() { return `${this.prefix}changes:seq`; }
  /** String "entry id seq": how far one coordinator has followed changes(), to resume after a restart. */
  changeFeedPosition(consumer: string) { return `${this.prefix}changes:read:${consumer}`; }
  /** Hash: spec | desired | placement | observed (each a JSON string with one owner). */
  pod(tenant: string, podId: string) { return `${this.prefix}pod:${tenant}:${podId}`; }
  /** Set of pod ids in a tenant. */
  tenantPods(tenant: string) { return `${this.prefix}pods:${tenant}`; }
  /** Set of "tenant/podId" for every pod: what the reconciler walks. */
  allPods() { return `${this.prefix}pods:all`; }
  /** Hash user -> READ | USER | ADMIN. */
  perms(tenant: string, podId: string) { return `${this.prefix}perms:${tenant}:${podId}`; }
  /** List of chunks: the container output of the current run, trimmed to the newest N bytes. */
  logs(tenant: string, podId: string) { return `${this.prefix}logs:${tenant}:${podId}`; }
  /** List of the generations whose logs are kept (logRun), oldest first. */
  logRuns(tenant: string, podId: string) { return `${this.prefix}log-runs:${tenant}:${podId}`; }
  /** List of chunks: the output of one earlier instance of a pod. */
  logRun(tenant: string, podId: string, generation: number | string) { return `${this.logRunPrefix(tenant, podId)}${generation}`; }
  logRunPrefix(tenant: string, podId: string) { return `${this.prefix}log-run:${tenant}:${podId}:`; }
  /** Hash {bytes, trimmed}: the size of the logs list and whether older output was dropped. */
  logMeta(tenant: string, podId: string) { return `${this.prefix}log-meta:${tenant}:${podId}`; }
  /** List of timestamped lines of what the service did to the pod. */
  actions(tenant: string, podId: string) { return `${this.prefix}actions:${tenant}:${podId}`; }
  /** Set of "tenant/podId" placed on a node. */
  nodePods(nodeId: string) { return `${this.prefix}node:${nodeId}:pods`; }
  /** Hash {cpu_milli, memory_mb, pods}: what the claims of the pods placed on a node add up to (see PLACE_POD). */
  nodeUsage(nodeId: string) { return `${this.prefix}node:${nodeId}:usage`; }
  /** Hash nodeId -> JSON node record. */
  nodes() { return `${this.prefix}nodes`; }
  /** Hash tenant id -> JSON tenant record (tenants added by site admins; the primary one comes from config). */
  tenants() { return `${this.prefix}tenants`; }
  /** Pub/sub channel: the id of each tenant just added, so every coordinator looks for it at once. */
  tenantAdded() { return `${this.prefix}tenant-added`; }
  /** Hash username -> JSON user record (password hashed with scrypt). */
  users(tenant: string) { return `${this.prefix}users:${tenant}`; }
  /** String: the PEM private key that signs tokens; created once, shared by every coordinator. */
  signingKey() { return `${this.prefix}signing-key`; }
  /** Hash user -> secret JSON: the generated credentials of a pod. */
  credentials(tenant: string, podId: string) { return `${this.prefix}creds:${tenant}:${podId}`; }
  /** Hash template id -> JSON template record. */
  templates() { return `${this.prefix}templates`; }
  /** List of JSON tag versions of one template, oldest first. */
  templateTags(id: string) { return `${this.prefix}template-tags:${id}`; }
  /** Hash user (of the template's tenant) or TENANT -> READ | USER | ADMIN on one template. */
  templatePerms(id: string) { return `${this.prefix}template-perms:${id}`; }
  /** Hash port -> "tenant/podId/netName": dedicated TCP ports in use. */
  tcpPorts() { return `${this.prefix}tcp-ports`; }
  /** Hash nodeId -> JSON {cordoned, draining, max_cpu_milli, max_memory_mb}: what admins want of a node. */
  nodeAdmin() { return `${this.prefix}node-admin`; }
  /** Hash token id -> JSON {sha256 of the token, node id, when, who}: node tokens issued by admins. */
  nodeTokens() { return `${this.prefix}node-tokens`; }
  /** String with a TTL: which coordinator link speaks for a node now ("coordinator/run/link"). */
  nodeLink(nodeId: string) { return `${this.prefix}node:${nodeId}:link`; }
  /** Pub/sub channel: ids of node tokens just revoked, so every coordinator cuts their links at once. */
  nodeTokenRevoked() { return `${this.prefix}node-token-revoked`; }
  /** Pub/sub channel: a node id whose link opened or closed on some coordinator (its record says which). */
  nodeLinkChanged() { return `${this.prefix}node-link-changed`; }
  /** Hash image name (no tag) -> JSON image record. */
  images() { return `${this.prefix}images`; }
  /** Pub/sub channel: an image name whose allow-list entry was added or removed. */
  imagesChanged() { return `${this.prefix}images-changed`; }
  /** String: JSON record of one volume or snapshot. */
  share(kind: 'volume' | 'snapshot', tenant: string, id: string) { return `${this.prefix}${kind}:${tenant}:${id}`; }
  /** Set of the volume (or snapshot) ids of a tenant. */
  tenantShares(kind: 'volume' | 'snapshot', tenant: string) { return `${this.prefix}${kind}s:${tenant}`; }
  /** Set of "tenant/id" of every snapshot with a schedule (cron): what the snapshot scheduler walks. */
  scheduledSnapshots() { return `${this.prefix}snapshots:scheduled`; }
  /** Hash user -> READ | USER | ADMIN on a volume or snapshot. */
  sharePerms(kind: 'volume' | 'snapshot', tenant: string, id: string) { return `${this.prefix}${kind}-perms:${tenant}:${id}`; }
  /** Set of JSON areas (storage directories) a node is to delete when it can: data of deleted pods, volumes, snapshots. */
  nodeGarbage(nodeId: string) { return `${this.prefix}node:${nodeId}:garbage`; }
}
