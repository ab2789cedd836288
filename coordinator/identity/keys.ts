import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Redis } from '../store/redis.js';

export interface SigningKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicPem: string;
}

/**
 * The RS256 key pair that signs tokens. Made on first start and kept in Redis (SET NX),
 * so every coordinator on one Redis signs with the same key and a restart keeps tokens valid.
 */
export async function loadSigningKeys(redis: Redis, key: string): Promise<SigningKeys> {
  let pem = await redis.get(key);
  if (!pem) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const fresh = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await redis.set(key, fresh, { condition: 'NX' });
    pem = (await redis.get(key))!;
  }
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}
