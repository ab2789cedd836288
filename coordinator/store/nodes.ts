import { z } from 'zod';
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
});
export type NodeRecord = z.infer<typeof NodeRecord>;

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

  async list(): Promise<NodeRecord[]> {
    const h = await this.redis.hGetAll(this.keys.nodes());
    return Object.values(h).flatMap((raw) => {
      const parsed = NodeRecord.safeParse(JSON.parse(raw));
      return parsed.success ? [parsed.data] : [];
    });
  }
}
