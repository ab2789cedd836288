// Following a pod's log: `GET /v3/pods/{id}/logs?follow=true` read with fetch() as a stream,
// because EventSource cannot send the X-Tapis-Token header (and a token in the URL would end
// up in logs and history). SseParser is the event-stream format, fed text as it arrives.

export interface SseEvent {
  event: string;
  id: string | null;
  data: string;
}

/** Splits server-sent events out of text that may arrive cut anywhere (even inside "\r\n"). */
export class SseParser {
  private buffer = '';
  private event = '';
  private id: string | null = null;
  private data: string[] = [];

  /** The events completed by this piece of text. */
  push(text: string): SseEvent[] {
    this.buffer += text;
    const out: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
      if (!m || (m[0] === '\r' && m.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const done = this.line(line);
      if (done) out.push(done);
    }
    return out;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      const done = this.data.length ? { event: this.event || 'message', id: this.id, data: this.data.join('\n') } : null;
      this.event = '';
      this.data = [];
      return done;
    }
    if (line.startsWith(':')) return null; // a comment (keepalive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return null;
  }

  /** The id of the last event seen, to resume from. */
  get lastId(): string | null {
    return this.id;
  }
}

export interface FollowHandlers {
  lines(lines: string[]): void;
  /** The stream ended for a reason the server gave (pod stopped, deleted, new run) or failed. */
  ended(reason: string): void;
}

/**
 * Follows the log until `signal` aborts. A connection that drops without an `end` event is
 * resumed from the last event id; one the server ended is not.
 */
export async function followLogs(path: string, token: string, handlers: FollowHandlers, signal: AbortSignal): Promise<void> {
  let lastId: string | null = null;
  for (let attempt = 0; !signal.aborted; attempt++) {
    const parser = new SseParser();
    try {
      const headers: Record<string, string> = { 'X-Tapis-Token': token, Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      const res = await fetch(path, { headers, signal, cache: 'no-store' });
      if (!res.ok || !res.body) {
        const text = await res.text().catch(() => '');
        let message = `${res.status}`;
        try {
          message = (JSON.parse(text) as { message: string }).message;
        } catch {
          // keep the status
        }
        return handlers.ended(`could not follow the log: ${message}`);
      }
      attempt = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of parser.push(value)) {
          if (ev.event === 'end') return handlers.ended(ev.data);
          handlers.lines(ev.data.split('\n'));
        }
        lastId = parser.lastId ?? lastId;
      }
    } catch {
      if (signal.aborted) return;
    }
    lastId = parser.lastId ?? lastId;
    // Dropped without an end: try again, waiting a little longer each time (at most 10 s).
    await new Promise((r) => window.setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
  }
}
