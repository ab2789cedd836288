// The REST API in this process on a real socket, over a real Redis, with no agent: for tests
// of what the API itself answers.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
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
  /** One API call with a token (JSON body when given): the status, the body's text and its JSON. */
  call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string; body: any }>;
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
  // As the coordinator does (coordinator/main.ts).
  const stopWatches = [await stores.tenants.watchAdded(), await stores.images.watchChanges()];
  // No agent ever connects: storage calls answer 503, and new volumes wait for a host.
  const hub = new AgentHub({ config, log, pods: stores.pods, nodes: stores.nodes, assignmentsFor: async () => [], onReport: () => undefined, onNodeUp: () => undefined });
  const storage = new StorageClient({ hub, nodes: stores.nodes, log, sharedStorage: false });
  const scheduler = { pick: async () => ({ reason: 'no host is connected' }) };
  const app = createApp({ ...stores, config, log, storage, scheduler, kick: opts.kick ?? (() => undefined), nodeConnected: () => false });
  const server = createServer(app.callback());
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    redis,
    client,
    stores,
    config,
    async call(token, method, path, body) {
      const headers: Record<string, string> = { 'x-tapis-token': token };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await request(`${base}${path}`, { method: method as 'GET', headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.body.text();
      return { status: res.statusCode, text, body: JSON.parse(text) };
    },
    async stop() {
      server.close();
      for (const stop of stopWatches) stop();
      await client.quit();
      await redis.stop();
    },
  };
}
