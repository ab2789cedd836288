import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { createClient } from 'redis';
import type { Redis } from '../../coordinator/store/redis.js';
import { freePort } from './ports.js';
import { Proc, waitFor } from './procs.js';

export interface TestRedis {
  url: string;
  proc: Proc;
  /** kill -9 and start again on the same port and data dir (AOF replay). */
  crashAndRestart(): Promise<void>;
  stop(): Promise<void>;
}

/** A real redis-server with AOF on, in a temp dir, on a free loopback port. */
export async function startRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pods-redis-'));
  const port = await freePort();
  const proc = new Proc('redis', 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
  ]).start();
  const url = `redis://127.0.0.1:${port}`;
  const ready = () =>
    waitFor('redis to answer PING', async () => {
      const c = createClient({ url, socket: { reconnectStrategy: false } });
      c.on('error', () => undefined);
      try {
        await c.connect();
        return (await c.ping()) === 'PONG';
      } finally {
        c.destroy();
      }
    }, 10_000);
  await ready().catch(async (err) => {
    await proc.kill();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${proc.output}`);
  });
  return {
    url,
    proc,
    async crashAndRestart() {
      await proc.kill('SIGKILL');
      proc.start();
      await ready();
    },
    async stop() {
      await proc.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A real Redis for one test file: started before its tests, stopped after them, and every
 * connection made by `connect` closed first. Call it at the top of the file.
 */
export function redisForFile(): { readonly url: string; connect(): Promise<Redis> } {
  let redis: TestRedis | null = null;
  const clients: Redis[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await redis?.stop();
  });
  return {
    get url() {
      return redis!.url;
    },
    async connect() {
      const c = createClient({ url: redis!.url }) as Redis;
      await c.connect();
      clients.push(c);
      return c;
    },
  };
}
