import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import { badRequest } from '../../shared/errors.js';
import type { PodStore } from '../store/pods.js';

// `GET /v3/pods/{id}/logs?follow=true` (or with `Accept: text/event-stream`): a pod's output as
// server-sent events (our extension). It starts with the last `tail` lines (100), then each
// new chunk the agent ships as one event whose `id` is the chunk's number; a client that
// reconnects with `Last-Event-ID` (as EventSource does) gets what came after, nothing twice.
// Only whole lines are sent: a line cut between two chunks is sent with the chunk that ends
// it. The stream ends (event `end`) when the pod is stopped or deleted, or its run is replaced.

const POLL_MS = 250;
const KEEPALIVE_MS = 15_000;
const MAX_TAIL = 10_000;

export const wantsStream = (ctx: Context) => ctx.query.follow === 'true' || ctx.query.follow === 'True' || /\btext\/event-stream\b/.test(ctx.get('accept'));

/** `data:` lines of one event (SSE has no escaping: each line of the text is its own data line). */
function event(lines: string[], id?: number, name?: string): string {
  return `${name ? `event: ${name}\n` : ''}${id !== undefined ? `id: ${id}\n` : ''}${lines.map((l) => `data: ${l}\n`).join('')}\n`;
}

/**
 * A server-sent event response being written: a keepalive comment after KEEPALIVE_MS of quiet,
 * and `poll` runs one round of the stream's work every intervalMs until the round says it is
 * done, the reader leaves, or a round fails (then the stream just ends).
 */
class EventStream {
  private readonly out = new PassThrough();
  private left = false;
  private lastWrite = Date.now();

  constructor(ctx: Context) {
    ctx.status = 200;
    ctx.set('Content-Type', 'text/event-stream; charset=utf-8');
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('X-Accel-Buffering', 'no');
    ctx.body = this.out;
    ctx.req.socket.setTimeout(0);
    ctx.req.on('close', () => (this.left = true));
  }

  write(text: string): void {
    this.out.write(text);
    this.lastWrite = Date.now();
  }

  poll(intervalMs: number, round: () => Promise<boolean>): void {
    void (async () => {
      try {
        while (!this.left && !(await round())) {
          if (Date.now() - this.lastWrite > KEEPALIVE_MS) this.write(': keepalive\n\n');
          await new Promise((r) => setTimeout(r, intervalMs));
        }
      } catch {
        // the reader went away, or Redis did: the stream ends
      }
      this.out.end();
    })();
  }
}

export async function streamLogs(ctx: Context, pods: PodStore, tenant: string, podId: string): Promise<void> {
  const tailRaw = ctx.query.tail;
  const tail = tailRaw === undefined ? 100 : Number(tailRaw);
  if (!Number.isInteger(tail) || tail < 0 || tail > MAX_TAIL) throw badRequest(`tail: must be a whole number from 0 to ${MAX_TAIL}`);
  const lastId = ctx.get('last-event-id');
  if (lastId && !/^\d{1,15}$/.test(lastId)) throw badRequest('Last-Event-ID: must be the id of an event of this stream');

  const start = await pods.get(tenant, podId);
  if (!start) throw badRequest(`pod "${podId}" was not found`);
  const run = `${start.desired.uid}/${start.desired.generation}`;

  const out = new EventStream(ctx);

  // The partial last line of what was sent, held back until its chunk's successor ends it.
  let carry = '';
  let after: number;
  const emit = (text: string, id: number) => {
    const whole = carry + text;
    const nl = whole.lastIndexOf('\n');
    carry = whole.slice(nl + 1);
    if (nl >= 0) out.write(event(whole.slice(0, nl).split('\n'), id));
    else out.write(`id: ${id}\n\n`); // nothing whole yet: only the position moves
  };

  if (lastId) {
    // Resume: the chunk named was delivered up to its last newline; its remainder is carried.
    after = Number(lastId);
    const { chunks, first } = await pods.logChunks(tenant, podId, after - 1);
    if (first <= after && chunks.length) carry = chunks[0]!.slice(chunks[0]!.lastIndexOf('\n') + 1);
    if (after < first - 1) out.write(event([`[pods: output before this point was dropped (the log keeps the newest part)]`], undefined, 'gap'));
  } else {
    const { chunks, last, gen } = await pods.logChunks(tenant, podId, 0);
    // Until the current instance prints, what is stored is the previous run's: no tail of it.
    const text = gen === null || gen === start.desired.generation ? chunks.join('') : '';
    const nl = text.lastIndexOf('\n');
    carry = text.slice(nl + 1);
    const lines = nl >= 0 ? text.slice(0, nl).split('\n') : [];
    if (tail > 0 && lines.length) out.write(event(lines.slice(-tail), last));
    else out.write(`: following from chunk ${last}\nid: ${last}\n\n`);
    after = last;
  }

  out.poll(POLL_MS, async () => {
    const { chunks, first, last } = await pods.logChunks(tenant, podId, after);
    if (after < first - 1) out.write(event([`[pods: ${first - 1 - after} chunks of output were dropped before they were read]`], undefined, 'gap'));
    const from = Math.max(after + 1, first);
    chunks.forEach((c, i) => emit(c, from + i));
    if (chunks.length) after = last;
    const now = await pods.get(tenant, podId);
    const ended = !now || now.desired.deleting || now.desired.status_requested === 'OFF' || `${now.desired.uid}/${now.desired.generation}` !== run;
    if (!ended) return false;
    if (carry) out.write(event([carry], after));
    out.write(event([!now || now.desired.deleting ? 'the pod was deleted' : now.desired.status_requested === 'OFF' ? 'the pod was stopped' : 'the pod started a new run'], undefined, 'end'));
    return true;
  });
}

/**
 * `GET /v3/pods/{id}/events?follow=true`: the pod's events as server-sent events, those already
 * recorded first (or those after `Last-Event-ID`), then each new one; `id` is "<time>#<nnnnnn>"
 * (the nth event of that millisecond), so ids compare as strings. Ends (event `end`) when the pod is deleted.
 */
export async function streamEvents(ctx: Context, pods: PodStore, tenant: string, podId: string): Promise<void> {
  const lastId = ctx.get('last-event-id');
  if (lastId && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#\d{6}$/.test(lastId)) throw badRequest('Last-Event-ID: must be the id of an event of this stream');
  const out = new EventStream(ctx);
  const idOf = (events: Array<{ time: string }>, i: number) => `${events[i]!.time}#${String(events.slice(0, i).filter((e) => e.time === events[i]!.time).length).padStart(6, '0')}`;
  let last = lastId || '';
  out.poll(POLL_MS * 2, async () => {
    const events = await pods.events(tenant, podId);
    events.forEach((e, i) => {
      const id = idOf(events, i);
      if (last && id <= last) return;
      out.write(`id: ${id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      last = id;
    });
    const now = await pods.get(tenant, podId);
    if (now && !now.desired.deleting) return false;
    out.write('event: end\ndata: the pod was deleted\n\n');
    return true;
  });
}
