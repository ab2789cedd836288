import { WebSocket } from 'ws';
import type { AgentConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { Peer } from '../shared/peer.js';
import { MAX_FRAME_BYTES, type Apply, type Hello, type MessageType, type PayloadOf, type Remove, type Sync } from '../shared/protocol.js';

export interface LinkHandlers {
  hello: () => Promise<Hello>;
  sync: (s: Sync) => Promise<void>;
  apply: (a: Apply) => Promise<void>;
  remove: (r: Remove) => Promise<void>;
  heartbeat: () => PayloadOf<'heartbeat'>;
  /** Register the handlers of requests the coordinator answers on (files, exec) on a new link. */
  serve?: (peer: Peer) => void;
}

/** Notices held while a link's hello is unanswered, at most (beyond them the next hello carries the state). */
const MAX_HELD_NOTICES = 10_000;

/** Reconnect delay: exponential from 250 ms to 10 s, with full jitter so agents do not stampede. */
export function reconnectDelayMs(attempt: number, random = Math.random): number {
  const cap = Math.min(10_000, 250 * 2 ** attempt);
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/**
 * The agent's link to the coordinator. The agent always dials out (works behind NAT):
 * connect, hello with capacity and every labelled container, apply the sync set it
 * gets back, then heartbeats. On any failure it reconnects after a jittered delay.
 */
export class CoordinatorLink {
  private peer: Peer | null = null;
  private ws: WebSocket | null = null;
  private attempt = 0;
  private stopped = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private ready = false;
  /**
   * Notices made while the link is open but its hello not yet answered, sent once it is. The
   * coordinator may send commands from the moment it has the hello, before its answer arrives
   * here: the report of a container removed on such a command, dropped, would have left the
   * coordinator waiting for a removal it never heard of (its hello was made before).
   */
  private held: Array<{ peer: Peer; send: () => void }> = [];

  constructor(private readonly config: AgentConfig, private readonly log: Logger, private readonly handlers: LinkHandlers) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.peer?.close();
  }

  /**
   * Send a notice (a report, output), or hold it while the link's hello is unanswered; false when
   * there is no open link (the next hello carries the state). A notice is not acknowledged: one
   * the coordinator could not handle comes back as an error frame, which is logged.
   */
  send<T extends MessageType>(type: T, payload: PayloadOf<T>): boolean {
    const peer = this.peer;
    if (!peer || !peer.open) return false;
    if (!this.ready) {
      if (this.held.length >= MAX_HELD_NOTICES) return false;
      this.held.push({ peer, send: () => peer.notify(type, payload) });
      return true;
    }
    peer.notify(type, payload);
    return true;
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.config.coordinatorUrl, {
      headers: { Authorization: `Bearer ${this.config.nodeToken}` },
      maxPayload: 2 * MAX_FRAME_BYTES,
      handshakeTimeout: 10_000,
    });
    const peer = new Peer(ws, this.log);
    this.peer = peer;
    this.ws = ws;
    this.ready = false;
    this.held = [];
    peer.on('apply', (p) => {
      void this.handlers.apply(p);
    });
    peer.on('remove', (p) => {
      void this.handlers.remove(p);
    });
    peer.on('sync', (p) => {
      void this.handlers.sync(p);
    });
    this.handlers.serve?.(peer);
    ws.on('open', () => void this.onOpen(peer, ws));
    ws.on('unexpected-response', (_req, res) => {
      const why: Record<number, string> = {
        401: 'coordinator refused the node token',
        409: 'coordinator says this node is already connected (another agent with this node id, or a link not yet timed out)',
      };
      this.log.error({ status: res.statusCode }, why[res.statusCode ?? 0] ?? 'coordinator refused the link');
      ws.terminate();
    });
    ws.on('error', (err) => this.log.warn({ err: err.message }, 'coordinator link error'));
    ws.on('close', () => this.onClose(ws));
  }

  private async onOpen(peer: Peer, ws: WebSocket): Promise<void> {
    try {
      const hello = await this.handlers.hello();
      const answer = await peer.request('hello', hello, 30_000);
      if (answer.type !== 'sync') throw new Error(`hello answered with ${answer.type}`);
      this.ready = true;
      this.attempt = 0;
      const held = this.held;
      this.held = [];
      for (const h of held) if (h.peer === peer) h.send();
      this.log.info({ assignments: (answer.payload as Sync).assignments.length }, 'connected to coordinator');
      this.heartbeat = setInterval(() => {
        peer.request('heartbeat', this.handlers.heartbeat(), 10_000).catch(() => {
          this.log.warn('heartbeat unanswered; reconnecting');
          ws.terminate();
        });
      }, this.config.heartbeatMs);
      await this.handlers.sync(answer.payload as Sync);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'hello failed; reconnecting');
      ws.terminate();
    }
  }

  private onClose(ws: WebSocket): void {
    if (ws !== this.ws) return; // an older socket closing late
    this.ready = false;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (this.stopped) return;
    const delay = reconnectDelayMs(this.attempt++);
    this.log.info({ delayMs: delay }, 'link closed; reconnecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}
