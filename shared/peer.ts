import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Logger } from './log.js';
import { decodeFrame, encodeFrame, newFrameId, type Frame, type MessageType, type PayloadOf } from './protocol.js';

// One side of a coordinator<->agent link: sends requests and awaits their
// replies, dispatches incoming requests to handlers, and answers any bad frame
// with an `error` frame instead of throwing. Used by both processes.

type Handler<T extends MessageType> = (payload: PayloadOf<T>, frame: Frame<T>) => Promise<unknown> | unknown;

interface Pending {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class PeerError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'PeerError';
  }
}

export class Peer {
  private readonly pending = new Map<string, Pending>();
  private readonly handlers = new Map<string, Handler<MessageType>>();
  private corked = false;

  constructor(private readonly ws: WebSocket, private readonly log: Logger, private readonly timeoutMs = 15_000) {
    ws.on('message', (data, isBinary) => void this.onMessage(isBinary ? (data as Buffer) : data.toString()));
    ws.on('close', () => this.failAll(new PeerError('PEER_CLOSED', 'link closed')));
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** Handle requests of `type`; the returned value is the reply payload. */
  on<T extends MessageType>(type: T, handler: Handler<T>): this {
    this.handlers.set(type, handler as unknown as Handler<MessageType>);
    return this;
  }

  /** Send a request and wait for its reply; rejects with PeerError on error reply, timeout or close. */
  request<T extends MessageType>(type: T, payload: PayloadOf<T>, timeoutMs = this.timeoutMs): Promise<Frame> {
    if (!this.open) return Promise.reject(new PeerError('PEER_CLOSED', 'link is not open'));
    const id = newFrameId();
    const text = encodeFrame(type, payload, undefined, { id });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new PeerError('PEER_TIMEOUT', `no reply to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        timer,
        reject,
        resolve: (f) => (f.type === 'error' ? reject(new PeerError(String((f.payload as { code: string }).code), String((f.payload as { message: string }).message))) : resolve(f)),
      });
      this.write(text, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new PeerError('PEER_SEND', err.message));
      });
    });
  }

  /** Fire-and-forget a reply. */
  send<T extends MessageType>(type: T, payload: PayloadOf<T>, re?: string): void {
    if (this.open) this.write(encodeFrame(type, payload, re));
  }

  /** Send a notice: handled without a reply (one less frame each way for every report). */
  notify<T extends MessageType>(type: T, payload: PayloadOf<T>): void {
    if (this.open) this.write(encodeFrame(type, payload, undefined, { notice: true }));
  }

  /**
   * The frames sent in one turn of the event loop leave in one write: a pod's reports made at
   * once, a burst of output, the commands of one pass. A write to a socket is a system call that
   * also wakes the reader, and costs more than the few microseconds the frames wait.
   */
  private write(text: string, cb?: (err?: Error) => void): void {
    // ws keeps its socket in `_socket` (set once the link is open, the only time this is called).
    const socket = (this.ws as unknown as { _socket?: Socket | null })._socket;
    if (socket && !this.corked) {
      this.corked = true;
      socket.cork();
      setImmediate(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    this.ws.send(text, cb);
  }

  close(code = 1000, reason = ''): void {
    this.ws.close(code, reason);
  }

  private async onMessage(data: string | Buffer): Promise<void> {
    const decoded = decodeFrame(data);
    if (!decoded.ok) {
      this.log.warn({ code: decoded.code, err: decoded.message }, 'bad frame from peer');
      this.send('error', { code: decoded.code, message: decoded.message }, decoded.id);
      // A bad reply must still settle its request.
      if (decoded.id) this.settle(decoded.id, new PeerError(decoded.code, decoded.message));
      return;
    }
    const frame = decoded.frame;
    if (frame.re && this.pending.has(frame.re)) {
      this.settle(frame.re, frame);
      return;
    }
    if (frame.re) {
      // A late reply (its request timed out), or the error a notice met: said, not acted on.
      if (frame.type === 'error') this.log.warn({ err: (frame.payload as { message: string }).message }, 'the peer could not handle a frame');
      return;
    }
    const handler = this.handlers.get(frame.type);
    if (!handler) {
      this.send('error', { code: 'PROTO_UNKNOWN_TYPE', message: `this side does not handle "${frame.type}"` }, frame.id);
      return;
    }
    try {
      const reply = await handler(frame.payload, frame);
      if (frame.notice) return;
      if (reply && typeof reply === 'object' && 'type' in reply && 'payload' in reply) {
        const r = reply as { type: MessageType; payload: PayloadOf<MessageType> };
        this.send(r.type, r.payload, frame.id);
      } else {
        this.send('ack', {}, frame.id);
      }
    } catch (err) {
      const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'INTERNAL';
      this.log.error({ err, type: frame.type }, 'handler failed');
      this.send('error', { code, message: err instanceof Error ? err.message : String(err) }, frame.id);
    }
  }

  private settle(id: string, result: Frame | PeerError): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (result instanceof PeerError) p.reject(result);
    else p.resolve(result);
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }
}

/** A handler's way to answer with a typed reply other than `ack`. */
export function reply<T extends MessageType>(type: T, payload: PayloadOf<T>): { type: T; payload: PayloadOf<T> } {
  return { type, payload };
}
