import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { z } from 'zod';
import { Keys } from './keys.js';
import type { Redis } from './redis.js';

// Passwords are hashed with scrypt, a memory-hard KDF: N=2^15, r=8 (32 MiB per hash).
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEYLEN = 32;

function scrypt(password: string, salt: Buffer, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, KEYLEN, o, (err, key) => (err ? reject(err) : resolve(key))));
}

export const UserRecord = z.object({
  username: z.string(),
  admin: z.boolean(),
  hash: z.string(), // scrypt$N$r$p$salt$key, base64
  created: z.string(),
});
export type UserRecord = z.infer<typeof UserRecord>;

export const Username = z.string().regex(/^[a-z_][a-z0-9_.-]{0,63}$/, 'usernames are 1-64 lowercase letters, digits, _ . -, starting with a letter or _');

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function checkPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, key] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'base64');
  const got = await scrypt(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Users of each tenant, created by site admins. */
export class UserStore {
  private readonly keys: Keys;
  // A fixed hash to check against when the user does not exist, so a wrong username
  // costs the same time as a wrong password.
  private dummy: Promise<string> | null = null;

  constructor(private readonly redis: Redis, prefix: string) {
    this.keys = new Keys(prefix);
  }

  async get(tenant: string, username: string): Promise<UserRecord | null> {
    const raw = await this.redis.hGet(this.keys.users(tenant), username);
    if (!raw) return null;
    const p = UserRecord.safeParse(JSON.parse(raw));
    return p.success ? p.data : null;
  }

  /** Creates or replaces a user (a new password replaces the old one). */
  async put(tenant: string, username: string, password: string, admin: boolean): Promise<UserRecord> {
    const rec: UserRecord = { username, admin, hash: await hashPassword(password), created: new Date().toISOString() };
    await this.redis.hSet(this.keys.users(tenant), username, JSON.stringify(rec));
    return rec;
  }

  async list(tenant: string): Promise<string[]> {
    return (await this.redis.hKeys(this.keys.users(tenant))).sort();
  }

  /** The user when the password is right, else null. */
  async authenticate(tenant: string, username: string, password: string): Promise<UserRecord | null> {
    const rec = await this.get(tenant, username);
    if (!rec) {
      this.dummy ??= hashPassword('not a password');
      await checkPassword(password, await this.dummy);
      return null;
    }
    return (await checkPassword(password, rec.hash)) ? rec : null;
  }
}
