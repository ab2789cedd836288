import { createHash } from 'node:crypto';
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

const shas = new Map<string, string>();

/**
 * Give Redis these scripts now and whenever the client connects again (a restarted Redis has
 * none). A script Redis lacks is sent again by runScript after the NOSCRIPT reply, behind the
 * commands issued meanwhile; loaded beforehand, every call runs in the order it was made.
 */
export async function preloadScripts(redis: Redis, scripts: string[], log: Logger): Promise<void> {
  const load = () => Promise.all(scripts.map((s) => redis.scriptLoad(s)));
  redis.on('ready', () => void load().catch((err) => log.warn({ err: (err as Error).message }, 'could not load the scripts into Redis')));
  await load();
}

/**
 * Run a Lua script by its SHA1 (EVALSHA), so each call sends the script's digest rather than
 * its text (kilobytes on every pod change); Redis is given the text once, when it says it does
 * not have it (after a restart or SCRIPT FLUSH).
 */
export async function runScript(redis: Redis, script: string, opts: { keys: string[]; arguments: string[] }): Promise<unknown> {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  try {
    return await redis.evalSha(sha, opts);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return redis.eval(script, opts);
  }
}
