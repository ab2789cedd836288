/** Split text into pieces of at most `max` bytes (on character boundaries). */
export function splitBytes(text: string, max: number): string[] {
  const out: string[] = [];
  let piece = '';
  let size = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (size + n > max && piece) {
      out.push(piece);
      piece = '';
      size = 0;
    }
    piece += ch;
    size += n;
  }
  if (piece) out.push(piece);
  return out;
}

/**
 * What one pod may ship: `rate` bytes a second on average, up to `burst` at once. Output past
 * it is dropped and counted, and a notice says how much when output flows again.
 */
export class LogBudget {
  private tokens: number;
  private last = performance.now();
  private dropped = 0;
  private lastNotice = -Infinity;
  /** `initial`: what may go at once when following starts (a container's earlier output is read again then). */
  constructor(private readonly rate: number, private readonly burst: number, initial = burst) {
    this.tokens = initial;
  }

  /** The part of `text` that may be shipped now (whole lines), after a drop with a notice (at most one a second) in front. */
  admit(text: string): string {
    const now = performance.now();
    this.tokens = Math.max(this.tokens, Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate));
    this.last = now;
    const bytes = Buffer.byteLength(text);
    let out = text;
    if (bytes > this.tokens) {
      // Cut on a line boundary, so what is shipped is whole lines.
      const head = Buffer.from(text).subarray(0, Math.max(0, Math.floor(this.tokens))).toString();
      out = head.slice(0, head.lastIndexOf('\n') + 1);
    }
    const kept = Buffer.byteLength(out);
    this.tokens -= kept;
    if (out && this.dropped && now - this.lastNotice >= 1000) {
      out = `[pods: ${this.dropped} bytes of output dropped: the pod printed faster than ${this.rate} bytes/s]\n${out}`;
      this.dropped = 0;
      this.lastNotice = now;
    }
    this.dropped += bytes - kept;
    return out;
  }
}
