import type { EngineStart, PodContainer } from './runtime/runtime.js';

/**
 * How long before its start an engine that stops containers when it shuts down (dockerd
 * without --live-restore) may have stopped one: the host may take minutes to come back.
 */
export const ENGINE_DOWN_WINDOW_MS = 10 * 60_000;
/**
 * With --live-restore (the installers' default) a container is never stopped by dockerd
 * shutting down: one found dead when dockerd starts again (its host rebooted) is marked exited
 * as dockerd starts, a moment before it makes its default network again.
 */
const ENGINE_START_SLACK_MS = 30_000;

/**
 * Whether an exited container was stopped by its engine (or host) going down rather than by its
 * own process: it was started by an earlier engine and finished around the current engine's
 * start (null: unknown), not while that engine ran nor long before.
 */
export function stoppedWithEngine(c: Pick<PodContainer, 'state' | 'startedAt' | 'finishedAt'>, engine: EngineStart | null): boolean {
  if (c.state !== 'exited' || !c.startedAt || !c.finishedAt || !engine) return false;
  const [started, finished, at] = [c.startedAt, c.finishedAt, engine.at].map((t) => Date.parse(t)) as [number, number, number];
  if ([started, finished, at].some(Number.isNaN)) return false;
  const before = engine.stopsContainersOnShutdown ? ENGINE_DOWN_WINDOW_MS : ENGINE_START_SLACK_MS;
  return started < at && finished <= at + ENGINE_START_SLACK_MS && finished >= at - before;
}
