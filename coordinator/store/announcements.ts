import type { Redis } from './redis.js';

/**
 * Changes to a kind of record (tenants added, the image allow-list), announced on a pub/sub
 * channel by whoever makes them (a coordinator, the CLI), so that each coordinator may answer
 * from what it read before as long as nothing changed since. `count` grows with every change
 * made here or announced, and with every lapse of the subscription: a memory made when `count`
 * was n holds while it is still n and `watching`. A change made in Redis by anything that does
 * not announce it is not seen until the memory's own time limit (its holder's).
 */
/** When a read ended, and the count of changes when it began. */
export interface Read {
  at: number;
  changes: number;
}

export class Announcements {
  /** Whether this process is subscribed, and so told of every change (see watch). */
  private subscribed = false;
  private changes = 0;

  constructor(private readonly redis: Redis, private readonly channel: string) {}

  get watching(): boolean {
    return this.subscribed;
  }

  get count(): number {
    return this.changes;
  }

  /**
   * What a read begun when `count` was `changes` remembers, as it ends now: null when a change
   * came meanwhile (what it saw may be older than that change).
   */
  readAt(changes: number): Read | null {
    return this.changes === changes ? { at: Date.now(), changes } : null;
  }

  /** Whether what a read saw still holds: changes are watched, none came since it began, and it is younger than `maxAgeMs`. */
  holds(read: Read | null | undefined, maxAgeMs: number): boolean {
    return !!read && this.subscribed && read.changes === this.changes && Date.now() - read.at < maxAgeMs;
  }

  /** A change made here: what was read before it no longer holds. Then tell everyone. */
  async announce(what: string): Promise<void> {
    this.changes++;
    await this.redis.publish(this.channel, what);
  }

  /**
   * Be told of every change announced anywhere, until the returned stop is called. While the
   * subscription is down (Redis restarting) `watching` is false: every answer reads again.
   */
  async watch(): Promise<() => void> {
    const sub = this.redis.duplicate();
    const lapse = () => {
      this.subscribed = false;
      this.changes++;
    };
    sub.on('error', lapse);
    sub.on('reconnecting', lapse);
    sub.on('end', lapse);
    // After a reconnect, 'ready' comes once the channel is subscribed again.
    let wanted = false;
    sub.on('ready', () => {
      this.subscribed = wanted;
    });
    await sub.connect();
    await sub.subscribe(this.channel, () => {
      this.changes++;
    });
    wanted = true;
    this.subscribed = true;
    return () => {
      wanted = false;
      sub.destroy();
      lapse();
    };
  }
}
