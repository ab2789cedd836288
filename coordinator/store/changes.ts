// Following the change stream: every state change of a pod is one entry, appended by the script
// that made it (scripts.ts), numbered by a counter. A coordinator reads the entries in order on a
// connection of its own (XREAD BLOCK), hands each batch on, and keeps how far it got in Redis,
// so after a restart it goes on where it stopped. When it cannot (the stream was trimmed past its
// position, Redis lost its data, or it never read before) it says so: the caller looks at
// everything once instead.
import type { Logger } from '../../shared/log.js';
import { Keys } from './keys.js';
import type { Redis } from './redis.js';

export type PodChangeKind = 'created' | 'spec' | 'desired' | 'placed' | 'unplaced' | 'observed' | 'ports' | 'deleted';

export interface PodChange {
  /** The stream entry's id. */
  id: string;
  /** Its number: one more than the entry before. */
  seq: number;
  tenant: string;
  podId: string;
  kind: PodChangeKind;
  /** The pod's generation after the change (null: not known). */
  generation: number | null;
  /** The node it is placed on (for unplaced and deleted: the node it left); null: none. */
  node: string | null;
  /** The node of what was last observed of it; null: none. */
  observedNode: string | null;
  /** The coordinator that made the change ("": none, e.g. the CLI). */
  origin: string;
}

export interface ChangeFeedOptions {
  /** This coordinator's name, the same across its restarts: its position is kept under it. */
  consumer: string;
  /** A batch of changes, in order. Errors it throws are logged; the feed goes on. */
  onChanges: (changes: PodChange[]) => void | Promise<void>;
  /** Changes were missed (or were never followed): look at every pod once. */
  onGap: (why: string) => void | Promise<void>;
  log: Logger;
  /** How long one XREAD waits for news (ms); the counter is checked for a reset in between. */
  blockMs?: number;
  /** Entries read at most per batch. */
  batch?: number;
  /** The position is saved at most this often (ms), and when the feed stops. */
  saveEveryMs?: number;
}

/** One stream entry's fields, as XREAD returns them ([k1, v1, k2, v2, ...]); null when malformed. */
export function parseChange(id: string, fields: string[]): PodChange | null {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  const slash = (f.pod ?? '').indexOf('/');
  const seq = Number(f.seq);
  if (slash <= 0 || !Number.isInteger(seq) || !f.kind) return null;
  return {
    id,
    seq,
    tenant: f.pod!.slice(0, slash),
    podId: f.pod!.slice(slash + 1),
    kind: f.kind as PodChangeKind,
    generation: f.gen ? Number(f.gen) : null,
    node: f.node || null,
    observedNode: f.obs || null,
    origin: f.by ?? '',
  };
}

/** How long a position is kept after its coordinator last saved it. */
const POSITION_KEPT_S = 7 * 24 * 3600;

type XReadReply = Array<[string, Array<[string, string[]]>]> | null;

export class ChangeFeed {
  private readonly keys: Keys;
  private conn: Redis | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  /** The last entry handed on: its id and number ("$"/NaN before the first read). */
  private lastId = '$';
  private lastSeq = NaN;
  private savedAt = 0;
  private savedId = '';

  constructor(private readonly redis: Redis, prefix: string, private readonly opts: ChangeFeedOptions) {
    this.keys = new Keys(prefix);
  }

  /** The id and number of the last change handed on (for tests and metrics). */
  get position(): { id: string; seq: number } {
    return { id: this.lastId, seq: this.lastSeq };
  }

  /**
   * Start following: from the saved position when there is one (changes made while this
   * coordinator was down are handed on first), else from now, after saying there was a gap.
   */
  async start(): Promise<void> {
    this.conn = this.redis.duplicate();
    this.conn.on('error', () => undefined); // the main client logs Redis trouble
    await this.conn.connect();
    const saved = await this.redis.get(this.keys.changeFeedPosition(this.opts.consumer));
    const [id, seq] = (saved ?? '').split(' ');
    if (id && seq && Number.isInteger(Number(seq))) {
      this.lastId = id;
      this.lastSeq = Number(seq);
      this.savedId = id;
    } else {
      await this.fromNow('this coordinator has not followed the change stream before');
    }
    this.running = true;
    this.loop = this.follow();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    // Closing the connection ends a blocked XREAD at once.
    this.conn?.destroy();
    this.conn = null;
    await this.loop?.catch(() => undefined);
    await this.save(true).catch(() => undefined);
  }

  /** Go on from the stream's end: what came before is covered by the look at every pod. */
  private async fromNow(why: string): Promise<void> {
    const [last] = (await this.redis.sendCommand(['XREVRANGE', this.keys.changes(), '+', '-', 'COUNT', '1'])) as Array<[string, string[]]>;
    const seq = Number(await this.redis.get(this.keys.changeSeq()) ?? 0);
    this.lastId = last ? last[0] : '0-0';
    this.lastSeq = last ? (parseChange(last[0], last[1])?.seq ?? seq) : seq;
    this.opts.log.info({ why }, 'change stream: looking at every pod once');
    await this.opts.onGap(why);
  }

  private async follow(): Promise<void> {
    const { batch = 1000, blockMs = 5000 } = this.opts;
    while (this.running) {
      let reply: XReadReply;
      try {
        reply = (await this.conn!.sendCommand(['XREAD', 'COUNT', String(batch), 'BLOCK', String(blockMs), 'STREAMS', this.keys.changes(), this.lastId])) as XReadReply;
      } catch (err) {
        if (!this.running) return;
        this.opts.log.warn({ err: (err as Error).message }, 'change stream: read failed; trying again');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!this.running) return;
      try {
        if (reply?.[0]?.[1].length) await this.handOn(reply[0][1]);
        else await this.checkReset();
        await this.save(false);
      } catch (err) {
        this.opts.log.error({ err }, 'change stream: handling a batch failed');
      }
    }
  }

  private async handOn(entries: Array<[string, string[]]>): Promise<void> {
    const changes: PodChange[] = [];
    for (const [id, fields] of entries) {
      const c = parseChange(id, fields);
      if (c) changes.push(c);
    }
    const first = changes[0];
    const expected = this.lastSeq + 1;
    this.lastId = entries[entries.length - 1]![0];
    if (changes.length) this.lastSeq = changes[changes.length - 1]!.seq;
    if (first && first.seq !== expected) {
      // Trimmed past our position, or the counter was reset (Redis lost its data): changes are lost to us.
      const why = first.seq > expected ? `changes ${expected} to ${first.seq - 1} were trimmed from the stream before this coordinator read them` : `the change counter went back from ${expected - 1} to ${first.seq}`;
      this.opts.log.warn({ expected, got: first.seq }, 'change stream: changes were missed');
      await this.opts.onGap(why);
    }
    await this.opts.onChanges(changes);
  }

  /** Nothing new for a while: make sure the stream was not reset under us (Redis lost its data). */
  private async checkReset(): Promise<void> {
    const seq = Number(await this.redis.get(this.keys.changeSeq()) ?? 0);
    if (Number.isFinite(this.lastSeq) && seq < this.lastSeq) await this.fromNow(`the change counter went back from ${this.lastSeq} to ${seq}`);
  }

  private async save(force: boolean): Promise<void> {
    const { saveEveryMs = 200 } = this.opts;
    if (this.lastId === this.savedId || this.lastId === '$') return;
    if (!force && Date.now() - this.savedAt < saveEveryMs) return;
    this.savedAt = Date.now();
    this.savedId = this.lastId;
    // A coordinator that never comes back leaves no key behind for long.
    await this.redis.set(this.keys.changeFeedPosition(this.opts.consumer), `${this.lastId} ${this.lastSeq}`, { EX: POSITION_KEPT_S });
  }
}
