import type { Desired, Observed, Placement } from './pod.js';

export type PodStatus =
  | 'REQUESTED'
  | 'SPAWNER_SETUP'
  | 'CREATING'
  | 'RUNNING'
  | 'DELETING'
  | 'STOPPED'
  | 'ERROR'
  | 'COMPLETE';

export interface DerivedStatus {
  status: PodStatus;
  message: string;
}

/** Observed state that belongs to the instance the coordinator wants now. */
export function isCurrent(desired: Desired, observed: Observed | null): observed is Observed {
  return !!observed && observed.uid === desired.uid && observed.generation === desired.generation;
}

export function containerExists(observed: Observed | null): observed is Observed {
  return !!observed && observed.phase !== 'removed';
}

/**
 * The pod status users see, derived from desired and observed state; never stored,
 * so it cannot disagree with either.
 */
export function deriveStatus(desired: Desired, placement: Placement | null, observed: Observed | null): DerivedStatus {
  if (desired.deleting) return { status: 'DELETING', message: 'Pod is being deleted.' };
  if (desired.status_requested === 'OFF') {
    return containerExists(observed)
      ? { status: 'DELETING', message: 'Pod is stopping.' }
      : { status: 'STOPPED', message: 'Pod is stopped.' };
  }
  if (!placement) return { status: 'REQUESTED', message: 'Pod is waiting for a host.' };
  if (!isCurrent(desired, observed)) {
    return { status: 'SPAWNER_SETUP', message: `Pod is assigned to host ${placement.nodeId}.` };
  }
  switch (observed.phase) {
    case 'creating':
      return { status: 'CREATING', message: 'Container is being created.' };
    case 'running':
      return { status: 'RUNNING', message: 'Pod is running.' };
    case 'exited':
      return observed.exitCode === 0
        ? { status: 'COMPLETE', message: 'Container exited with code 0.' }
        : { status: 'ERROR', message: `Container exited with code ${observed.exitCode ?? 'unknown'}.` };
    case 'failed':
      return { status: 'ERROR', message: observed.message ?? 'Container could not be started.' };
    case 'removing':
    case 'removed':
      return { status: 'SPAWNER_SETUP', message: 'Container is being replaced.' };
  }
}
