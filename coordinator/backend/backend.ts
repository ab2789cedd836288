import type { PickResult } from '../scheduler.js';
import type { PodRecord } from '../store/pods.js';

/**
 * Where pods run, chosen once at start-up (PODS_BACKEND): `agents`, our scheduler placing each
 * pod on a host whose agent makes its container (agents.ts), or `swarm`, a Docker Swarm placing
 * and running each pod as a one-replica service (swarm/backend.ts). The reconciler drives every
 * pod through this seam; the API, status derivation and permissions never see which one runs.
 *
 * In both an agent runs on every host: it serves a pod's routes (its host's Caddy), logs,
 * health checks, exec and files, for the containers its backend made there. So logs and exec
 * go through the hub to the agent of the pod's node with either backend.
 */
export interface PodBackend {
  readonly name: 'agents' | 'swarm';
  /**
   * The pod should run its current instance: have the backend's own record of it say so
   * (Swarm: its service at the pod's generation, one replica); `changed` when the pod's
   * placement no longer holds (Swarm runs it elsewhere now) and it must be looked at again.
   */
  ensure(rec: PodRecord): Promise<'ok' | 'changed'>;
  /**
   * Place an unplaced pod (only on `only` when its data is there): the node, recorded in the
   * pod's placement; why it waits; or `changed` when the pod changed meanwhile.
   */
  place(rec: PodRecord, only?: string): Promise<PickResult | { changed: true }>;
  /** The pod no longer wants to run (stopped or being deleted): end its instance at the source. */
  remove(rec: PodRecord): Promise<void>;
  /** Whether a failed start is tried again (the agent is asked again) or is final (a failed Swarm task). */
  readonly retriesFailedStarts: boolean;
  /** Begin observing (Swarm: its tasks and nodes), calling `changed` for each pod that needs a look. */
  start(changed: (tenant: string, podId: string) => void): void;
  stop(): void;
}
