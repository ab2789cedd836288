// The rule that tells a container the engine (or host) going down stopped from one whose own
// process ended: only the first is started again by the agent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENGINE_DOWN_WINDOW_MS, stoppedWithEngine } from '../../agent/engine-stop.js';

const at = (ms: number) => new Date(Date.parse('2026-11-29T12:00:00Z') + ms).toISOString();
const liveRestore = { at: at(0), stopsContainersOnShutdown: false };
const stopsOnShutdown = { at: at(0), stopsContainersOnShutdown: true };
const exited = (startedMs: number, finishedMs: number) => ({ state: 'exited' as const, startedAt: at(startedMs), finishedAt: at(finishedMs) });

test('host rebooted under --live-restore: dockerd marks the dead container exited as it starts (exit 255): stopped with the engine', () => {
  assert.equal(stoppedWithEngine(exited(-3_600_000, -200), liveRestore), true);
});

test('ended by itself while the current engine ran: not stopped with the engine', () => {
  assert.equal(stoppedWithEngine(exited(5_000, 60_000), liveRestore), false);
  // Started before the engine restarted (live-restore kept it), ended later by itself.
  assert.equal(stoppedWithEngine(exited(-3_600_000, 60_000), liveRestore), false);
});

test('ended by itself before the engine restarted: under --live-restore the engine stops nothing, so that was its own process', () => {
  assert.equal(stoppedWithEngine(exited(-3_600_000, -120_000), liveRestore), false);
});

test('an engine that stops containers as it shuts down: one stopped within the window before its start was stopped with it; one long before was not', () => {
  assert.equal(stoppedWithEngine(exited(-3_600_000, -120_000), stopsOnShutdown), true);
  assert.equal(stoppedWithEngine(exited(-7_200_000, -ENGINE_DOWN_WINDOW_MS - 1_000), stopsOnShutdown), false);
});

test('running containers, missing times, or an engine start it cannot tell: never', () => {
  assert.equal(stoppedWithEngine({ state: 'running', startedAt: at(-3_600_000) }, liveRestore), false);
  assert.equal(stoppedWithEngine({ state: 'exited', startedAt: at(-3_600_000) }, liveRestore), false);
  assert.equal(stoppedWithEngine(exited(-3_600_000, -200), null), false);
  assert.equal(stoppedWithEngine({ state: 'exited', startedAt: 'garbage', finishedAt: at(-200) }, liveRestore), false);
});
