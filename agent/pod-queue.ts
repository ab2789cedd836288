import type { Logger } from '../shared/log.js';

/**
 * Work on one pod runs one job at a time, in the order asked; different pods proceed in
 * parallel. A failed job is logged and does not stop the next.
 */
export class PodQueue {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly recorders = new Set<Set<string>>();

  constructor(private readonly log: Logger) {}

  run(key: string, job: () => Promise<void>): Promise<void> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev
      .then(job)
      .catch((err) => this.log.error({ err, pod: key }, 'pod job failed'))
      .finally(() => {
        for (const finished of this.recorders) finished.add(key);
      });
    this.tails.set(key, next);
    void next.finally(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
    return next;
  }

  /**
   * From now until stopRecording: the pods on which a job finished. A listing of containers
   * taken after this call is still true for a pod not in the set (nothing was done to it since).
   */
  recordFinished(): Set<string> {
    const finished = new Set<string>();
    this.recorders.add(finished);
    return finished;
  }

  stopRecording(finished: Set<string>): void {
    this.recorders.delete(finished);
  }
}
