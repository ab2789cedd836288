import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { z } from 'zod';
import { LastParsed } from '../../shared/last-parsed.js';
import { Keys } from './keys.js';
import { runScript, type Redis } from './redis.js';
import { CAS_HASH_FIELD } from './scripts.js';

// Passwords are hashed with scrypt, a memory-hard KDF, at OWASP's current minimum for it:
// N=2^17, r=8, p=1 (128 MiB per hash). Hashes made with other parameters still verify, and
// are made again with these at the user's next login.
const SCRYPT = { N: 2 ** 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 };
const KEYLEN = 32;

function scrypt(password: string, salt: Buffer, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, KEYLEN, o, (err, key) => (err ? reject(err) : resolve(key))));
}

export const UserRecord = z.object({
  username: z.string(),
  /** Tenant admin of the user's tenant. */
  admin: z.boolean(),
  /** Site admin: only another site admin makes one. */
  site_admin: z.boolean().default(false),
  /** A disabled user can neither log in nor use a token it already has. */
  disabled: z.boolean().default(false),
  /** Bumped by a password change, a disable or a loss of rights: tokens carry it and an older one is refused. */
  epoch: z.number().int().min(0).default(0),
  hash: z.string(), // scrypt$N$r$p$salt$key, base64
  created: z.string(),
  updated: z.string().optional(),
});
export type UserRecord = z.infer<typeof UserRecord>;

/** What an admin may change of a user. */
export interface UserChange {
  password?: string;
  admin?: boolean;
  site_admin?: boolean;
  disabled?: boolean;
}

const currentParams = (hash: string) => hash.startsWith(`scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$`);

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

/** Users of each tenant, created by their tenant's admins or by site admins. */
export class UserStore {
  private readonly keys: Keys;
  // A fixed hash to check against when the user does not exist, so a wrong username
  // costs the same time as a wrong password.
  private dummy: Promise<string> | null = null;

  constructor(private readonly redis: Redis, prefix: string) {
    this.keys = new Keys(prefix);
  }

  private parse(raw: string | null | undefined): UserRecord | null {
    if (!raw) return null;
    try {
      const p = UserRecord.safeParse(JSON.parse(raw));
      return p.success ? p.data : null;
    } catch {
      return null;
    }
  }

  /**
   * The last record read of each user, with the JSON it was parsed from: every authenticated
   * request reads its user (for the epoch and the disabled flag), and users seldom change.
   * Frozen, because every reader shares it.
   */
  private readonly lastRead = new LastParsed<UserRecord | null>(2000);

  async get(tenant: string, username: string): Promise<UserRecord | null> {
    const raw = await this.redis.hGet(this.keys.users(tenant), username);
    if (!raw) return null;
    return this.lastRead.get(`${tenant}/${username}`, raw, (r) => {
      const rec = this.parse(r);
      return rec && Object.freeze(rec);
    });
  }

  /** A new user; null when the username is taken (an existing user is never overwritten). */
  async create(tenant: string, username: string, password: string, roles: { admin: boolean; site_admin: boolean }): Promise<UserRecord | null> {
    const rec: UserRecord = { username, ...roles, disabled: false, epoch: 0, hash: await hashPassword(password), created: new Date().toISOString() };
    return (await this.redis.hSetNX(this.keys.users(tenant), username, JSON.stringify(rec))) ? rec : null;
  }

  /**
   * Change a user; null when there is no such user. A new password, a disable or a lost role
   * bumps the user's epoch, which ends every token issued before.
   */
  async update(tenant: string, username: string, change: UserChange): Promise<UserRecord | null> {
    const hash = change.password === undefined ? undefined : await hashPassword(change.password);
    for (let attempt = 0; attempt < 10; attempt++) {
      const raw = await this.redis.hGet(this.keys.users(tenant), username);
      const cur = this.parse(raw);
      if (!cur) return null;
      const next: UserRecord = {
        ...cur,
        admin: change.admin ?? cur.admin,
        site_admin: change.site_admin ?? cur.site_admin,
        disabled: change.disabled ?? cur.disabled,
        hash: hash ?? cur.hash,
        updated: new Date().toISOString(),
      };
      const ends = hash !== undefined || (next.disabled && !cur.disabled) || (cur.admin && !next.admin) || (cur.site_admin && !next.site_admin);
      if (ends) next.epoch = cur.epoch + 1;
      const r = await runScript(this.redis, CAS_HASH_FIELD, { keys: [this.keys.users(tenant)], arguments: [username, raw!, JSON.stringify(next)] });
      if (r === -1) return null;
      if (r === 1) return next;
    }
    throw new Error(`user ${tenant}/${username} is changing too fast to update`);
  }

  /** Delete a user; false when there was none. */
  async remove(tenant: string, username: string): Promise<boolean> {
    return (await this.redis.hDel(this.keys.users(tenant), username)) === 1;
  }

  async list(tenant: string): Promise<UserRecord[]> {
    const all = await this.redis.hGetAll(this.keys.users(tenant));
    return Object.values(all).flatMap((raw) => this.parse(raw) ?? []).sort((a, b) => a.username.localeCompare(b.username));
  }

  /**
   * The user when the password is right and the user is enabled, else null. A hash made with
   * older parameters is made again with the current ones.
   */
  async authenticate(tenant: string, username: string, password: string): Promise<UserRecord | null> {
    const raw = await this.redis.hGet(this.keys.users(tenant), username);
    const rec = this.parse(raw);
    if (!rec) {
      this.dummy ??= hashPassword('not a password');
      await checkPassword(password, await this.dummy);
      return null;
    }
    if (!(await checkPassword(password, rec.hash)) || rec.disabled) return null;
    if (!currentParams(rec.hash)) {
      const next = { ...rec, hash: await hashPassword(password) };
      await runScript(this.redis, CAS_HASH_FIELD, { keys: [this.keys.users(tenant)], arguments: [username, raw!, JSON.stringify(next)] });
    }
    return rec;
  }
}
