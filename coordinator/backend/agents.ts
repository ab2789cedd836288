import type { Scheduler } from '../scheduler.js';
import type { PodRecord } from '../store/pods.js';
import type { PodBackend } from './backend.js';

/**
 * The default backend: our scheduler places each pod (one Redis script checks the fit), and the
 * reconciler tells the node's agent over the hub to make its container, and to remove it.
 */
export class AgentsBackend implements PodBackend {
  readonly name = 'agents';
  readonly retriesFailedStarts = true;

  constructor(private readonly scheduler: Scheduler) {}

  /** The reconciler tells the node's agent what to run. */
  async ensure(): Promise<'ok'> {
    return 'ok';
  }

  place(rec: PodRecord, only?: string) {
    return this.scheduler.place(rec.spec.tenant, rec.spec.pod_id, rec.spec.resources, only);
  }

  /** The node's agent removes the container when the reconciler tells it to. */
  async remove(): Promise<void> {}

  start(): void {}
  stop(): void {}
}
