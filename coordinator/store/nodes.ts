import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { Area } from '../../shared/storage.js';
import { Capacity } from '../../shared/protocol.js';
import { Keys } from './keys.js';
import type { Redis } from './redis.js';

export const NodeRecord = z.object({
  nodeId: z.string(),
  capacity: Capacity,
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

export const NodeAdmin = z.object({ cordoned: z.boolean().default(false), draining: z.boolean().default(false) });
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

  /** Issue a node token; the secret is returned once and only its digest is kept. */
  async issueToken(nodeId: string | null, by: string): Promise<{ record: NodeToken; token: string }> {
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

  async revokeToken(tokenId: string): Promise<boolean> {
    return (await this.redis.hDel(this.keys.nodeTokens(), tokenId)) === 1;
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
