import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { PodsError } from '../../shared/errors.js';
import type { Redis } from '../store/redis.js';

// Password logins are where an attacker can make the service work hardest (each one is a
// 128 MiB scrypt hash). Three limits, kept in Redis so every coordinator counts the same:
// failures per user and address (guessing one user's password), failures per user from
// anywhere (a spread-out guess), and attempts per address (a flood). A fourth, per process,
// caps how many hashes run at once, so a flood queues behind real logins instead of starving them.

export interface LoginLimitsConfig {
  /** Failed logins of one user from one address before it has to wait. */
  maxFailuresPerUserAddress: number;
  /** Failed logins of one user from all addresses before it has to wait. */
  maxFailuresPerUser: number;
  /** Attempts (good or bad) from one address per minute (or per window, if shorter). */
  maxAttemptsPerAddress: number;
  /** The window every count covers, seconds. */
  windowS: number;
  /** Password hashes computed at once by this process; more wait their turn. */
  concurrentHashes: number;
  /** Logins waiting for a hash slot before more are turned away. */
  queuedHashes: number;
}

const tooMany = (retryAfterS: number, what: string) =>
  new PodsError('TOO_MANY_REQUESTS', `too many login attempts ${what}; try again in ${retryAfterS} s`, { retryAfterS });

/** At most `limit` holders at once; up to `queue` more wait, in order. */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number, private readonly queue: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) {
      if (this.waiting.length >= this.queue) throw tooMany(1, 'in progress on this server');
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export class LoginLimits {
  private readonly userAddress: RateLimiterRedis;
  private readonly user: RateLimiterRedis;
  private readonly address: RateLimiterRedis;
  private readonly gate: Gate;

  constructor(redis: Redis, prefix: string, private readonly config: LoginLimitsConfig) {
    const make = (name: string, points: number, duration: number) =>
      new RateLimiterRedis({ storeClient: redis, useRedisPackage: true, keyPrefix: `${prefix}login:${name}`, points, duration });
    this.userAddress = make('user-address', config.maxFailuresPerUserAddress, config.windowS);
    this.user = make('user', config.maxFailuresPerUser, config.windowS);
    this.address = make('address', config.maxAttemptsPerAddress, Math.min(60, config.windowS));
    this.gate = new Gate(config.concurrentHashes, config.queuedHashes);
  }

  /**
   * Check a login by `check` (which hashes the password) under every limit: a 429 before any
   * hashing when a limit is reached; failures counted, and a user's count from this address
   * cleared by a success.
   */
  async attempt<T>(tenant: string, username: string, address: string, check: () => Promise<T | null>): Promise<T | null> {
    const who = `${tenant}/${username}`;
    const pair = `${who}@${address}`;
    await this.charge(this.address, address, 'from your address');
    for (const [limiter, key, points, what] of [
      [this.userAddress, pair, this.config.maxFailuresPerUserAddress, 'for this user from your address'],
      [this.user, who, this.config.maxFailuresPerUser, 'for this user'],
    ] as const) {
      const seen = await limiter.get(key);
      if (seen && seen.consumedPoints >= points) throw tooMany(Math.max(1, Math.ceil(seen.msBeforeNext / 1000)), what);
    }
    const result = await this.gate.run(check);
    if (result === null) {
      await Promise.all([this.userAddress.penalty(pair, 1), this.user.penalty(who, 1)]);
    } else {
      await this.userAddress.delete(pair);
    }
    return result;
  }

  private async charge(limiter: RateLimiterRedis, key: string, what: string): Promise<void> {
    try {
      await limiter.consume(key, 1);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw tooMany(Math.max(1, Math.ceil(err.msBeforeNext / 1000)), what);
      throw err;
    }
  }
}
