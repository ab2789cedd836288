import { LogBudget, splitBytes } from './log-budget.js';

// One pod instance's output, from `docker logs --timestamps` to the coordinator, with nothing
// lost and nothing twice. Every piece carries a key, "<timestamp of its last line>#<n>", that
// only grows; the coordinator keeps the last key it stored and drops a piece that is not
// newer. So pieces can be sent again freely: after a failed send, after a reconnect (the
// coordinator says which key it has), after the agent or dockerd restarted (following starts
// again just after that key).

/** A piece of output as shipped; `reset` starts the instance's log afresh (a new run). */
export interface LogPiece {
  chunk: string;
  key: string;
  reset: boolean;
}

export interface LogShipperOptions {
  /** Send a piece; false when it could not be sent now (it is kept and sent again). */
  send: (piece: LogPiece) => boolean;
  budget: LogBudget;
  pieceBytes: number;
  /** Pieces kept for sending again, newest last; the oldest go past this. */
  backlogBytes: number;
  flushMs: number;
  /** The key the coordinator already has for this instance: output up to it is not sent again. */
  since?: string;
}

/** "2026-11-29T10:59:00.1234Z" -> "2026-11-29T10:59:00.123400000Z": fixed width, so keys compare as strings. */
export function normalizeTs(ts: string): string | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(ts);
  return m ? `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}Z` : null;
}

/** The `since` Docker's logs API takes ("seconds.nanoseconds") for a key's timestamp. */
export function dockerSince(key: string): string {
  const ts = key.split('#')[0]!;
  const seconds = Math.floor(Date.parse(`${ts.slice(0, 19)}Z`) / 1000);
  return `${seconds}.${ts.slice(20, 29)}`;
}

export class LogShipper {
  private partial = '';
  private pending = '';
  private pendingTs = '';
  private backlog: Array<LogPiece & { bytes: number }> = [];
  private backlogSize = 0;
  private lastKey: string;
  private firstPiece: boolean;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: LogShipperOptions) {
    this.lastKey = o.since ?? '';
    // Output of a new run replaces what the coordinator holds; a run it already has is continued.
    this.firstPiece = o.since === undefined;
  }

  /** Where following should start (Docker's `since`), or undefined for the beginning. */
  get followSince(): string | undefined {
    return this.lastKey ? dockerSince(this.lastKey) : undefined;
  }

  /** Raw output of `docker logs --timestamps`, in any pieces. */
  push(raw: string): void {
    const text = this.partial + raw;
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    const sinceTs = this.lastKey.split('#')[0]!;
    for (const line of lines) {
      const space = line.indexOf(' ');
      const ts = normalizeTs(space > 0 ? line.slice(0, space) : line);
      if (!ts) continue; // not a log line (Docker always stamps them)
      if (sinceTs && ts <= sinceTs) continue; // already shipped before a restart
      const admitted = this.o.budget.admit(`${line.slice(space + 1)}\n`);
      if (!admitted) continue;
      this.pending += admitted;
      this.pendingTs = ts;
      if (Buffer.byteLength(this.pending) >= this.o.pieceBytes) this.flush();
    }
    if (this.pending && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.o.flushMs);
    }
  }

  /** Ship what is pending, in pieces of at most pieceBytes. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending) return;
    const pieces = splitBytes(this.pending, this.o.pieceBytes);
    this.pending = '';
    pieces.forEach((chunk, i) => {
      const key = `${this.pendingTs}#${String(i).padStart(4, '0')}`;
      if (key <= this.lastKey) return;
      this.lastKey = key;
      const piece = { chunk, key, reset: this.firstPiece };
      this.firstPiece = false;
      this.keep({ ...piece, bytes: Buffer.byteLength(chunk) });
      this.o.send(piece);
    });
  }

  /** The coordinator holds everything up to `key` (none: nothing of this run): send the rest again. */
  resendAfter(key: string | undefined): void {
    this.flush();
    for (const piece of this.backlog) {
      if (key && piece.key <= key) continue;
      // A piece that started the run starts it again only if the coordinator has nothing of it.
      this.o.send({ chunk: piece.chunk, key: piece.key, reset: piece.reset && !key });
    }
  }

  stop(): void {
    this.flush();
  }

  private keep(piece: LogPiece & { bytes: number }): void {
    this.backlog.push(piece);
    this.backlogSize += piece.bytes;
    while (this.backlogSize > this.o.backlogBytes && this.backlog.length > 1) this.backlogSize -= this.backlog.shift()!.bytes;
  }
}
