// The REST API in this process on a real socket, over a real Redis, with no agent: for tests
// of what the API itself answers.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentHub } from '../../coordinator/agents/hub.js';
import { createApp } from '../../coordinator/app.js';
import { StorageClient } from '../../coordinator/storage.js';
import { connectRedis, type Redis } from '../../coordinator/store/redis.js';
import { openStores, type Stores } from '../../coordinator/stores.js';
import { loadCoordinatorConfig, type CoordinatorConfig } from '../../shared/config.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { startRedis, type TestRedis } from './redis.js';

export interface ApiServer {
  base: string;
  redis: TestRedis;
  client: Redis;
  stores: Stores;
  config: CoordinatorConfig;
  stop(): Promise<void>;
}

export async function startApiServer(
  env: Record<string, string>,
  opts: { port?: number; kick?: (tenant: string, podId: string) => void; prepare?: (stores: Stores, log: Logger) => Promise<void> } = {},
): Promise<ApiServer> {
  const redis = await startRedis();
  const config = loadCoordinatorConfig({ PODS_NODE_TOKENS: 'n1=node-token-0123456789abcdef', ...env, PODS_REDIS_URL: redis.url });
  const log = createLogger('test', 'silent');
  const client = await connectRedis(redis.url, log);
  const stores = await openStores(client, config);
  await opts.prepare?.(stores, log);
  // No agent ever connects: storage calls answer 503, and new volumes wait for a host.
  const hub = new AgentHub({ config, log, pods: stores.pods, nodes: stores.nodes, assignmentsFor: async () => [], onReport: () => undefined, onNodeUp: () => undefined });
  const storage = new StorageClient({ hub, nodes: stores.nodes, log, sharedStorage: false });
  const scheduler = { pick: async () => ({ reason: 'no host is connected' }) };
  const app = createApp({ ...stores, config, log, storage, scheduler, kick: opts.kick ?? (() => undefined), nodeConnected: () => false });
  const server = createServer(app.callback());
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    redis,
    client,
    stores,
    config,
    async stop() {
      server.close();
      await client.quit();
      await redis.stop();
    },
  };
}
