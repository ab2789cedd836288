import type { Observed, Phase } from '../shared/pod.js';
import type { PodContainer } from './runtime/runtime.js';

/** What the agent knows of a container when it reports on it: at least the instance it belongs to. */
export type ReportedContainer = Pick<PodContainer, 'uid' | 'generation'> & Partial<PodContainer>;

/**
 * Reports are numbered from this run's start time in microseconds, so the numbers grow from
 * one run of the agent to the next too (unless its clock goes back, or it makes over a
 * thousand reports a millisecond for long).
 */
let lastSeq = Date.now() * 1000;

/**
 * One report of what this node observed of a pod instance: the container's phase and what
 * the runtime said of it (times and exit code only once it exited), plus whatever the caller adds.
 */
export function observation(nodeId: string, c: ReportedContainer, phase: Phase, extra: Partial<Observed> = {}): Observed {
  return {
    nodeId,
    uid: c.uid,
    generation: c.generation,
    phase,
    ...(c.id ? { containerId: c.id } : {}),
    ...(c.startedAt ? { startedAt: c.startedAt } : {}),
    ...(c.finishedAt && phase === 'exited' ? { finishedAt: c.finishedAt } : {}),
    ...(c.exitCode !== undefined && phase === 'exited' ? { exitCode: c.exitCode } : {}),
    ...(c.oomKilled && phase === 'exited' ? { oomKilled: true } : {}),
    health: 'unknown',
    hostPorts: c.hostPorts ?? {},
    at: new Date().toISOString(),
    ...extra,
    seq: ++lastSeq,
  };
}

/** The phase a listed container is reported in. */
export function phaseOf(c: PodContainer): Phase {
  return c.state === 'running' ? 'running' : c.state === 'exited' ? 'exited' : c.state === 'created' ? 'creating' : 'removing';
}
