import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { Area } from '../../shared/storage.js';
import { Capacity } from '../../shared/protocol.js';
import { Keys } from './keys.js';
import { runScript, type Redis } from './redis.js';
import { NODE_LINK_LEASE, NODE_LINK_RELEASE } from './scripts.js';

export const NodeRecord = z.object({
  nodeId: z.string(),
  /** What the scheduler may use: the capacity the agent reported, capped by the node's limits. */
  capacity: Capacity,
  /** What the agent said it has. */
  reported: Capacity.optional(),
  dockerVersion: z.string(),
  agentVersion: z.string(),
  connectedAt: z.string(),
  lastHeartbeat: z.string(),
  running: z.number().int().default(0),
  endpoints: z.object({ http: z.string(), tls: z.string(), tcpHost: z.string() }).optional(),
  /** Set when the agent's link closed; cleared when it says hello again. */
  disconnectedAt: z.string().nullable().default(null),
});
export type NodeRecord = z.infer<typeof NodeRecord>;

export const NodeAdmin = z.object({
  cordoned: z.boolean().default(false),
  draining: z.boolean().default(false),
  /** A site admin's limits for this node; null: the site-wide ceiling. */
  max_cpu_milli: z.number().int().min(0).nullable().default(null),
  max_memory_mb: z.number().int().min(0).nullable().default(null),
});
export type NodeAdmin = z.infer<typeof NodeAdmin>;

export const NodeToken = z.object({ token_id: z.string(), sha256: z.string(), node_id: z.string().nullable(), created: z.string(), created_by: z.string() });
export type NodeToken = z.infer<typeof NodeToken>;

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class NodeStore {
  private readonly keys: Keys;
  constructor(private readonly redis: Redis, prefix: string) {
    this.keys = new Keys(prefix);
  }

  async put(rec: NodeRecord): Promise<void> {
    await this.redis.hSet(this.keys.nodes(), rec.nodeId, JSON.stringify(rec));
  }

  async get(nodeId: string): Promise<NodeRecord | null> {
    const raw = await this.redis.hGet(this.keys.nodes(), nodeId);
    if (!raw) return null;
    const parsed = NodeRecord.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  async admin(nodeId: string): Promise<NodeAdmin> {
    const raw = await this.redis.hGet(this.keys.nodeAdmin(), nodeId);
    return NodeAdmin.parse(raw ? JSON.parse(raw) : {});
  }

  async admins(): Promise<Map<string, NodeAdmin>> {
    const h = await this.redis.hGetAll(this.keys.nodeAdmin());
    return new Map(Object.entries(h).map(([id, raw]) => [id, NodeAdmin.parse(JSON.parse(raw))]));
  }

  async setAdmin(nodeId: string, admin: NodeAdmin): Promise<void> {
    await this.redis.hSet(this.keys.nodeAdmin(), nodeId, JSON.stringify(admin));
  }

  /**
   * Hold (take = true) or keep holding the lease on a node's link ("coordinator/run/link");
   * "" when the caller holds it now, else who does. A lease not renewed within ttlMs lapses
   * (its coordinator died); a restarted coordinator takes over its own at once.
   */
  async leaseLink(nodeId: string, holder: string, ttlMs: number, take: boolean): Promise<string> {
    const coordinator = holder.split('/')[0]!;
    return String(await runScript(this.redis, NODE_LINK_LEASE, { keys: [this.keys.nodeLink(nodeId)], arguments: [holder, String(ttlMs), take ? '1' : '0', coordinator] }));
  }

  async releaseLink(nodeId: string, holder: string): Promise<void> {
    await runScript(this.redis, NODE_LINK_RELEASE, { keys: [this.keys.nodeLink(nodeId)], arguments: [holder] });
  }

  /** Tell every coordinator a node token was revoked (they cut its links at once). */
  async announceRevoked(tokenId: string): Promise<void> {
    await this.redis.publish(this.keys.nodeTokenRevoked(), tokenId);
  }

  /** Call `onRevoked` with each token id revoked anywhere, until the returned stop is called. */
  watchRevocations(onRevoked: (tokenId: string) => void): Promise<() => Promise<void>> {
    return this.watch(this.keys.nodeTokenRevoked(), onRevoked);
  }

  /** Tell every coordinator a node's link opened or closed here (after its record says so). */
  async announceLink(nodeId: string): Promise<void> {
    await this.redis.publish(this.keys.nodeLinkChanged(), nodeId);
  }

  /** Call `onChanged` with each node whose link opened or closed on any coordinator, until the returned stop is called. */
  watchLinks(onChanged: (nodeId: string) => void): Promise<() => Promise<void>> {
    return this.watch(this.keys.nodeLinkChanged(), onChanged);
  }

  private async watch(channel: string, on: (message: string) => void): Promise<() => Promise<void>> {
    const sub = this.redis.duplicate();
    sub.on('error', () => undefined);
    await sub.connect();
    await sub.subscribe(channel, (message) => on(message));
    return async () => {
      await sub.quit().catch(() => undefined);
    };
  }

  /** Issue a node token; the secret is returned once and only its digest is kept. */
  async issueToken(nodeId: string, by: string): Promise<{ record: NodeToken; token: string }> {
    const token = `pods-node-${randomBytes(24).toString('base64url')}`;
    const record: NodeToken = { token_id: randomBytes(6).toString('hex'), sha256: tokenDigest(token), node_id: nodeId, created: new Date().toISOString(), created_by: by };
    await this.redis.hSet(this.keys.nodeTokens(), record.token_id, JSON.stringify(record));
    return { record, token };
  }

  async tokens(): Promise<NodeToken[]> {
    const h = await this.redis.hGetAll(this.keys.nodeTokens());
    return Object.values(h).flatMap((raw) => {
      const p = NodeToken.safeParse(JSON.parse(raw));
      return p.success ? [p.data] : [];
    });
  }

  async tokenExists(tokenId: string): Promise<boolean> {
    return (await this.redis.hExists(this.keys.nodeTokens(), tokenId)) === 1;
  }

  /** Revoke a token and tell every coordinator; false when there was none. */
  async revokeToken(tokenId: string): Promise<boolean> {
    if ((await this.redis.hDel(this.keys.nodeTokens(), tokenId)) !== 1) return false;
    await this.announceRevoked(tokenId);
    return true;
  }

  /** The issued token with this secret, if any (config tokens are checked by the hub). */
  async findToken(token: string): Promise<NodeToken | null> {
    const digest = tokenDigest(token);
    return (await this.tokens()).find((t) => t.sha256 === digest) ?? null;
  }

  async list(): Promise<NodeRecord[]> {
    const h = await this.redis.hGetAll(this.keys.nodes());
    return Object.values(h).flatMap((raw) => {
      const parsed = NodeRecord.safeParse(JSON.parse(raw));
      return parsed.success ? [parsed.data] : [];
    });
  }

  /** Storage a node is to delete when it can (kept until it has). */
  async addGarbage(nodeId: string, area: Area): Promise<void> {
    await this.redis.sAdd(this.keys.nodeGarbage(nodeId), JSON.stringify({ kind: area.kind, tenant: area.tenant, id: area.id }));
  }

  async garbage(nodeId: string): Promise<Area[]> {
    const out: Area[] = [];
    for (const raw of await this.redis.sMembers(this.keys.nodeGarbage(nodeId))) {
      const parsed = Area.safeParse(JSON.parse(raw));
      if (parsed.success) out.push(parsed.data);
      else await this.redis.sRem(this.keys.nodeGarbage(nodeId), raw);
    }
    return out;
  }

  async clearGarbage(nodeId: string, area: Area): Promise<void> {
    await this.redis.sRem(this.keys.nodeGarbage(nodeId), JSON.stringify({ kind: area.kind, tenant: area.tenant, id: area.id }));
  }
}
