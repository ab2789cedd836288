/**
 * The newest `maxBytes` of a pod's output. Whole chunks are dropped from the front
 * once the total is over the limit, then the first kept chunk is cut at a line start.
 */
export class LogRing {
  private chunks: string[] = [];
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}

  push(text: string): void {
    if (!text) return;
    this.chunks.push(text);
    this.bytes += Buffer.byteLength(text);
    while (this.bytes > this.maxBytes) {
      const first = this.chunks[0]!;
      const firstBytes = Buffer.byteLength(first);
      if (this.bytes - firstBytes >= this.maxBytes) {
        this.chunks.shift();
        this.bytes -= firstBytes;
        continue;
      }
      // Keep the tail of the first chunk that fits, starting after a newline when there is one.
      let cut = Buffer.from(first).subarray(this.bytes - this.maxBytes).toString();
      const nl = cut.indexOf('\n');
      if (nl >= 0) cut = cut.slice(nl + 1);
      this.bytes = this.bytes - firstBytes + Buffer.byteLength(cut);
      if (cut) this.chunks[0] = cut;
      else this.chunks.shift();
    }
  }

  get size(): number {
    return this.bytes;
  }

  text(): string {
    return this.chunks.join('');
  }
}

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
