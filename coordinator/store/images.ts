import type { z } from 'zod';
import { ImageView } from '../../shared/api.js';
import { BoundedMap } from '../../shared/bounded-map.js';
import { Announcements, type Read } from './announcements.js';
import { Keys } from './keys.js';
import { runScript, type Redis } from './redis.js';
import { ADD_IMAGES } from './scripts.js';

/** An allow-list entry is stored exactly as the API shows it. */
export const ImageRecord = ImageView;
export type ImageRecord = z.infer<typeof ImageRecord>;

/** The image name without tag or digest: the allow-list ignores tags. */
export function imageName(ref: string): string {
  const noDigest = ref.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/** The tag (latest when none is given) and digest of an image reference. */
export function imageRefParts(ref: string): { tag: string; digest: string | null } {
  const [named, digest] = ref.split('@') as [string, string | undefined];
  const slash = named.lastIndexOf('/');
  const colon = named.lastIndexOf(':');
  return { tag: colon > slash ? named.slice(colon + 1) : 'latest', digest: digest ?? null };
}

/**
 * How long an allow-list entry read (or found absent) is the answer, while changes are
 * announced to this process: a safety net only, for a change no one announced.
 */
const ENTRY_KEPT_MS = 5_000;

export class ImageStore {
  private readonly keys: Keys;
  /** Changes to the allow-list, made anywhere and announced (see watchChanges). */
  private readonly changes: Announcements;
  /**
   * Entries as last read, with when and the count of changes then: while no change was
   * announced since, a create finds its image's entry without a read.
   */
  private readonly entries = new BoundedMap<string, { rec: ImageRecord | null; read: Read }>(1000);

  constructor(private readonly redis: Redis, prefix: string) {
    this.keys = new Keys(prefix);
    this.changes = new Announcements(redis, this.keys.imagesChanged());
  }

  /**
   * Be told of every change to the allow-list made through any coordinator or the CLI, until
   * the returned stop is called, so that entries read before serve until one is made.
   * Without it (or while its subscription is down) every lookup reads.
   */
  watchChanges(): Promise<() => void> {
    return this.changes.watch();
  }

  async list(): Promise<ImageRecord[]> {
    const h = await this.redis.hGetAll(this.keys.images());
    return Object.values(h)
      .map((raw) => ImageRecord.safeParse(JSON.parse(raw)))
      .filter((r) => r.success)
      .map((r) => r.data)
      .sort((a, b) => a.image.localeCompare(b.image));
  }

  /** The entry of an image (tag and digest ignored), or null; what it returns is shared: never change it. */
  async get(name: string): Promise<ImageRecord | null> {
    const key = imageName(name);
    const kept = this.entries.get(key);
    if (kept && this.changes.holds(kept.read, ENTRY_KEPT_MS)) return kept.rec;
    const changes = this.changes.count;
    const raw = await this.redis.hGet(this.keys.images(), key);
    const parsed = raw ? ImageRecord.safeParse(JSON.parse(raw)) : null;
    const rec = parsed?.success ? Object.freeze(parsed.data) : null;
    // Kept only when no change was announced while it was read.
    const read = this.changes.readAt(changes);
    if (read) this.entries.set(key, { rec, read });
    return rec;
  }

  /** Adds the image; false when it is already on the list. */
  async add(rec: ImageRecord): Promise<boolean> {
    const added = (await this.redis.hSetNX(this.keys.images(), rec.image, JSON.stringify(rec))) === 1;
    if (added) await this.changes.announce(rec.image);
    return added;
  }

  /**
   * Adds several images at once. With skipListed, names already on the list are left as they
   * are; without it nothing is added when any is. `listed` names those already on the list.
   */
  async addMany(recs: ImageRecord[], skipListed: boolean): Promise<{ added: ImageRecord[]; listed: string[] }> {
    const r = (await runScript(this.redis, ADD_IMAGES, {
      keys: [this.keys.images()],
      arguments: [skipListed ? '1' : '0', ...recs.flatMap((rec) => [rec.image, JSON.stringify(rec)])],
    })) as [string[], string[]];
    const added = new Set(r[0]);
    if (added.size) await this.changes.announce([...added].join(' '));
    return { added: recs.filter((rec) => added.has(rec.image)), listed: r[1] };
  }

  async remove(name: string): Promise<boolean> {
    const removed = (await this.redis.hDel(this.keys.images(), imageName(name))) === 1;
    if (removed) await this.changes.announce(imageName(name));
    return removed;
  }

  /** Whether a tenant may run `ref`: an allowed name, and a pinned tag or digest when the entry pins any. */
  async allows(ref: string, tenant: string): Promise<boolean> {
    return (await this.admits(ref, tenant)) !== 'refused';
  }

  /**
   * How a tenant may run `ref`: 'pinned' (its tag or digest is one the entry names: a host may
   * pull it), 'name' (the entry names no tags: it runs only as already present on a host), or
   * 'refused'.
   */
  async admits(ref: string, tenant: string): Promise<'pinned' | 'name' | 'refused'> {
    const rec = await this.get(ref);
    if (!rec || !(rec.tenants.length === 0 || rec.tenants.includes(tenant) || rec.tenants.includes('*'))) return 'refused';
    if (!rec.tags.length) return 'name';
    const { tag, digest } = imageRefParts(ref);
    return rec.tags.includes(tag) || (digest !== null && rec.tags.includes(digest)) ? 'pinned' : 'refused';
  }
}
