import type { Readable } from 'node:stream';
import type { AgentConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import type { PodLogs, PodRef } from '../shared/protocol.js';
import { LogBudget } from './log-budget.js';
import { LogShipper } from './log-shipper.js';
import type { Runtime } from './runtime/runtime.js';

const LOG_FLUSH_MS = 200;
const LOG_PIECE_BYTES = 256 * 1024;

/**
 * One pod instance's output on its way to the coordinator: follows its container (again
 * after a restart of the container or of dockerd, from just after what was shipped) and
 * ships what it reads through a LogShipper.
 */
export class PodOutput {
  private readonly shipper: LogShipper;
  private follower: Readable | null = null;
  /** Bumped by every follow and stop: a stream that arrives for an older one is closed at once. */
  private turn = 0;

  constructor(
    private readonly deps: {
      runtime: Runtime;
      ref: PodRef;
      config: Pick<AgentConfig, 'logRateBytes' | 'logRingBytes'>;
      send: (msg: PodLogs) => boolean;
      log: Logger;
      /** The key the coordinator already holds for this instance. */
      since?: string;
    },
  ) {
    const { config, send, since } = deps;
    const ref: PodRef = { tenant: deps.ref.tenant, podId: deps.ref.podId, uid: deps.ref.uid, generation: deps.ref.generation };
    const rate = config.logRateBytes;
    this.shipper = new LogShipper({
      send: (piece) => send({ ...ref, ...piece }),
      // A container's earlier output (up to the backlog's size) may be read at once when following starts.
      budget: new LogBudget(rate, rate * 4, config.logRingBytes),
      pieceBytes: LOG_PIECE_BYTES,
      backlogBytes: config.logRingBytes,
      flushMs: LOG_FLUSH_MS,
      ...(since ? { since } : {}),
    });
  }

  /** Follow this container's output, after what was shipped already. */
  async follow(containerId: string): Promise<void> {
    this.stop();
    const turn = this.turn;
    try {
      const stream = await this.deps.runtime.follow(containerId, this.shipper.followSince);
      if (turn !== this.turn) return void stream.destroy();
      this.follower = stream;
      stream.setEncoding('utf8');
      stream.on('data', (raw: string) => this.shipper.push(raw));
      stream.on('error', () => undefined);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'cannot follow logs');
    }
  }

  /** Stop following and ship what is pending. */
  stop(): void {
    this.turn++;
    this.follower?.destroy();
    this.follower = null;
    this.shipper.stop();
  }

  /** The coordinator holds everything up to `key` (none: nothing of this run): send the rest again. */
  resendAfter(key: string | undefined): void {
    this.shipper.resendAfter(key);
  }
}
