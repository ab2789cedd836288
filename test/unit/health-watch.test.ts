// HealthWatch on the in-memory runtime, whose exec the test answers: the readiness gate, the
// liveness rounds, and that stop() ends them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HealthWatch, type WatchedPod } from '../../agent/health-watch.js';
import { NullRuntime } from '../../agent/runtime/null.js';
import { createLogger } from '../../shared/log.js';
import type { HealthCheck } from '../../shared/pod.js';
import type { Assignment } from '../../shared/protocol.js';

/** exec answers from a script: each call takes the next exit code (the last one repeats). */
class ScriptedExec extends NullRuntime {
  calls = 0;
  constructor(private readonly codes: number[]) {
    super();
  }
  override async exec(): Promise<{ exitCode: number; output: string }> {
    const code = this.codes[Math.min(this.calls++, this.codes.length - 1)]!;
    return { exitCode: code, output: code ? 'not yet' : '' };
  }
}

const check = (over: Partial<HealthCheck> = {}): HealthCheck => ({
  exec: { command: ['check'] }, initial_delay_seconds: 0, period_seconds: 1, timeout_seconds: 1, failure_threshold: 2, ...over,
});

async function watched(runtime: NullRuntime, healthchecks: Assignment['spec']['healthchecks']): Promise<WatchedPod> {
  const assignment: Assignment = {
    tenant: 't', podId: 'p', uid: 'u', generation: 1,
    spec: { image: 'x', pull: false, env: {}, ports: [], mounts: [], cpuLimitMilli: 1, memLimitMb: 1, cpuRequestMilli: 1, memRequestMb: 1, healthchecks },
  };
  return { assignment, container: await runtime.createAndStart(assignment) };
}

const deps = (runtime: NullRuntime) => ({ runtime, publishHost: '127.0.0.1', probeIntervalMs: 50, log: createLogger('test', 'silent') });

test('the readiness gate waits, saying why once per reason, until the check passes', async () => {
  const runtime = new ScriptedExec([1, 1, 0]);
  const pod = await watched(runtime, { readiness: check() });
  const said: string[] = [];
  const watch = new HealthWatch(() => pod, deps(runtime), { current: () => true, changed: () => undefined, waiting: (why) => said.push(why), livenessFailed: () => undefined });
  assert.equal(await watch.gate(), null);
  assert.equal(runtime.calls, 3);
  assert.deepEqual(said, ['check exited with code 1: not yet']);
});

test('a startup check that never passes answers why; a pod taken away meanwhile answers gone', async () => {
  const runtime = new ScriptedExec([1]);
  const pod = await watched(runtime, { startup: check({ failure_threshold: 2 }) });
  const events = { current: () => true, changed: () => undefined, waiting: () => undefined, livenessFailed: () => undefined };
  assert.equal(await new HealthWatch(() => pod, deps(runtime), events).gate(), 'startup check failed 2 times: check exited with code 1: not yet');
  assert.equal(await new HealthWatch(() => pod, deps(runtime), { ...events, current: () => false }).gate(), 'gone');
});

test('liveness failing failure_threshold times in a row is reported once; passes in between reset the count', async () => {
  const runtime = new ScriptedExec([1, 0, 1, 1]);
  const pod = await watched(runtime, { liveness: check({ failure_threshold: 2 }) });
  const failed: string[] = [];
  const watch = new HealthWatch(() => pod, deps(runtime), { current: () => true, changed: () => undefined, waiting: () => undefined, livenessFailed: (why) => failed.push(why) });
  const t0 = Date.now();
  watch.start();
  while (!failed.length && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
  watch.stop();
  assert.deepEqual(failed, ['liveness check failed 2 times: check exited with code 1: not yet']);
  assert.equal(runtime.calls, 4, 'fail, pass, fail, fail');
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(runtime.calls, 4, 'no round after the failure was reported (the supervisor restarts and starts again)');
});
