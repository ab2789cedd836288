import { createClient } from 'redis';
import type { Logger } from '../../shared/log.js';

export type Redis = ReturnType<typeof createClient>;

/** Connect to Redis; the client reconnects on its own with a capped backoff. */
export async function connectRedis(url: string, log: Logger): Promise<Redis> {
  const client = createClient({ url, socket: { reconnectStrategy: (n) => Math.min(50 * 2 ** n, 2000) } });
  let lastError = '';
  client.on('error', (err: Error) => {
    // The client emits an error per failed reconnect; log each distinct one once.
    if (err.message !== lastError) log.warn({ err: err.message }, 'redis error');
    lastError = err.message;
  });
  client.on('ready', () => {
    if (lastError) log.info('redis connection restored');
    lastError = '';
  });
  await client.connect();
  return client as Redis;
}
