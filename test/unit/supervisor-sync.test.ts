// The real Supervisor on the in-memory runtime: a sync of N pods lists the host's containers
// once (not once per pod: with Docker each listing also inspects every container, N^2 calls),
// and a container that disappears, with or without dockerd, is reported to the coordinator.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NullCaddy, NullRuntime } from '../../agent/runtime/null.js';
import { Supervisor } from '../../agent/supervisor.js';
import { loadAgentConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import type { Observed } from '../../shared/pod.js';
import type { Assignment } from '../../shared/protocol.js';

const assignment = (i: number): Assignment => ({
  tenant: 'dev',
  podId: `pod${i}`,
  uid: `uid${i}`,
  generation: 1,
  spec: { image: 'pods-test/httpd', pull: true, env: {}, ports: [], mounts: [], cpuLimitMilli: 100, memLimitMb: 64, cpuRequestMilli: 100, memRequestMb: 64 },
});

const config = loadAgentConfig({ PODS_COORDINATOR_URL: 'ws://127.0.0.1:1/v3/agents/connect', PODS_NODE_TOKEN: 'n'.repeat(20), PODS_NODE_ID: 'sync-test', PODS_POD_ISOLATION: 'off' });
const log = createLogger('test', 'silent');

function supervise(runtime: NullRuntime) {
  const reports: Array<{ podId: string; observed: Observed }> = [];
  const supervisor = new Supervisor({
    config, runtime, caddy: new NullCaddy(log), log,
    reporter: { status: (_tenant, podId, observed) => reports.push({ podId, observed }) > 0, logs: () => true },
  });
  return { supervisor, reports };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), `timed out waiting for ${what}`);
}

test('a sync of 200 pods lists the host once, and adopts on a second sync without making anything twice', async () => {
  const runtime = new NullRuntime();
  const { supervisor, reports } = supervise(runtime);
  const pods = Array.from({ length: 200 }, (_, i) => assignment(i));
  await supervisor.sync(pods);
  assert.equal(runtime.size, 200, 'every pod has its container');
  assert.deepEqual([runtime.listCalls, runtime.podListCalls], [1, 0], 'one listing of the whole host, none per pod');
  assert.equal(reports.filter((r) => r.observed.phase === 'running').length, 200);

  // As after an agent restart: a new Supervisor finds the containers and adopts every one.
  const again = supervise(runtime);
  await again.supervisor.sync(pods);
  assert.equal(runtime.size, 200);
  assert.deepEqual([runtime.listCalls, runtime.podListCalls], [2, 0]);
  assert.equal(again.reports.filter((r) => r.observed.phase === 'running').length, 200, 'every pod reported running');
  assert.ok(!again.reports.some((r) => r.observed.phase === 'creating'), 'nothing made twice');
  supervisor.stop();
  again.supervisor.stop();
});

test('a sync removes the containers of pods no longer assigned here, and only those', async () => {
  const runtime = new NullRuntime();
  const { supervisor, reports } = supervise(runtime);
  await supervisor.sync([assignment(1), assignment(2)]);
  await supervisor.sync([assignment(2)]);
  assert.equal(runtime.size, 1);
  assert.deepEqual(reports.filter((r) => r.observed.phase === 'removed').map((r) => r.podId), ['pod1']);
  supervisor.stop();
});

test('a container removed outside the service is reported removed, with why', async () => {
  const runtime = new NullRuntime();
  const { supervisor, reports } = supervise(runtime);
  supervisor.start();
  await supervisor.sync([assignment(1)]);
  const [c] = await runtime.list();
  await runtime.remove(c!.id);
  await until('the removal report', () => reports.some((r) => r.observed.phase === 'removed'));
  assert.equal(reports.at(-1)!.observed.message, 'container was removed outside the service');
  supervisor.stop();
});

/** Containers in memory, one of which the test loses while the engine is away (no event tells of it). */
class LossyRuntime extends NullRuntime {
  lose(id: string): void {
    this.containers.delete(id);
  }
}

test('when dockerd comes back, every pod is looked at again: one that was lost meanwhile is reported removed', async () => {
  const runtime = new LossyRuntime();
  const { supervisor, reports } = supervise(runtime);
  supervisor.start();
  await supervisor.sync([assignment(1), assignment(2)]);
  await until('the event feed', () => runtime.subscriptions === 1);
  const lost = (await runtime.list()).find((c) => c.podId === 'pod1')!;
  runtime.lose(lost.id);
  runtime.endEvents();
  await until('the removal report', () => reports.some((r) => r.observed.phase === 'removed'));
  const removed = reports.filter((r) => r.observed.phase === 'removed');
  assert.deepEqual(removed.map((r) => [r.podId, r.observed.message]), [['pod1', 'container was gone after dockerd restarted']]);
  // The other pod was followed again and reported running.
  await until('pod2 running again', () => reports.filter((r) => r.podId === 'pod2' && r.observed.phase === 'running').length === 2);
  supervisor.stop();
});
