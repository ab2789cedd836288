import type { Logger } from '../shared/log.js';
import type { ContainerEvent, EventFeed, Runtime } from './runtime/runtime.js';

const RESUBSCRIBE_MS = 1000;

/**
 * Follows the engine's events for this node's containers, and subscribes again whenever the
 * feed ends (dockerd stopped or restarted). Each time it gets a feed again after losing one,
 * it says so: what happened meanwhile was not seen, so every pod needs a fresh look.
 */
export class EngineWatch {
  private stopped = false;
  private feed: EventFeed | null = null;

  constructor(
    private readonly deps: {
      runtime: Runtime;
      log: Logger;
      onEvent: (event: ContainerEvent) => void;
      onEngineBack: () => void;
    },
  ) {}

  start(): void {
    void this.follow();
  }

  stop(): void {
    this.stopped = true;
    this.feed?.close();
  }

  private async follow(): Promise<void> {
    let lost = false;
    while (!this.stopped) {
      try {
        const feed = await this.deps.runtime.events();
        if (this.stopped) return feed.close();
        this.feed = feed;
        if (lost) this.deps.onEngineBack();
        lost = true;
        for await (const event of feed) this.deps.onEvent(event);
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'container events unavailable; retrying');
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, RESUBSCRIBE_MS));
    }
  }
}
