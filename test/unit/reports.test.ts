// Agents' reports as the store keeps them, against a real Redis: of two reports of one instance
// the later stays even when they are stored out of order, and each report writes the event it
// makes (if any) in the same step, as do creating and placing a pod.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { reportEvents } from '../../coordinator/agents/hub.js';
import { PodStore } from '../../coordinator/store/pods.js';
import type { Redis } from '../../coordinator/store/redis.js';
import { PodSpec, RESOURCE_DEFAULTS, type Observed } from '../../shared/pod.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const TENANT = 't1';
const ROOM = { cpuMilli: 4000, memoryMb: 8192 };
let redis: TestRedis;
let client: Redis;

before(async () => {
  redis = await startRedis();
  client = createClient({ url: redis.url }) as Redis;
  await client.connect();
});

after(async () => {
  client.destroy();
  await redis.stop();
});

/** A pod placed on node h1, in a store of its own. */
async function placedPod(podId: string): Promise<{ pods: PodStore; uid: string }> {
  const pods = new PodStore(client, `test-${randomBytes(4).toString('hex')}:`);
  const now = new Date().toISOString();
  const spec = PodSpec.parse({
    pod_id: podId, tenant: TENANT, owner: 'alice', image: 'pods-test/httpd', template: '', description: '',
    environment_variables: {}, volume_mounts: {}, time_to_stop_default: -1, networking: {},
    resources: RESOURCE_DEFAULTS, compute_queue: 'default', creation_ts: now, update_ts: now,
  });
  const uid = randomBytes(4).toString('hex');
  assert.ok(await pods.create(spec, { status_requested: 'ON', uid, generation: 1, deleting: false, start_instance_ts: null, time_to_stop_ts: null }, 'pod created by alice'));
  assert.equal((await pods.place(TENANT, podId, { nodeId: 'h1', at: now }, ROOM)).result, 'placed');
  return { pods, uid };
}

const report = (uid: string, phase: Observed['phase'], seq: number | undefined, extra: Partial<Observed> = {}): Observed => ({
  nodeId: 'h1', uid, generation: 1, phase, health: 'unknown', hostPorts: {}, at: new Date().toISOString(), ...(seq === undefined ? {} : { seq }), ...extra,
});

test('of two reports of one instance stored out of order, the later one stays', async () => {
  const { pods, uid } = await placedPod('web');
  // The agent said "creating" (seq 10) and then "running" (seq 11); "running" got stored first.
  assert.notEqual(await pods.setObserved(TENANT, 'web', report(uid, 'running', 11)), 'stale');
  assert.equal(await pods.setObserved(TENANT, 'web', report(uid, 'creating', 10)), 'stale', 'the earlier report is ignored');
  assert.equal((await pods.get(TENANT, 'web'))!.observed!.phase, 'running');
  // Later reports still count, and so do reports of an agent that does not number them.
  assert.notEqual(await pods.setObserved(TENANT, 'web', report(uid, 'exited', 12, { exitCode: 1 })), 'stale');
  assert.equal((await pods.get(TENANT, 'web'))!.observed!.phase, 'exited');
  assert.notEqual(await pods.setObserved(TENANT, 'web', report(uid, 'running', undefined)), 'stale');
  assert.equal((await pods.get(TENANT, 'web'))!.observed!.phase, 'running');
});

test('a report writes its event in the same step, once per change', async () => {
  const { pods, uid } = await placedPod('db');
  const store = async (o: Observed) => assert.notEqual(await pods.setObserved(TENANT, 'db', o, reportEvents(o)), 'stale');
  await store(report(uid, 'creating', 1));
  await store(report(uid, 'creating', 2)); // the same phase again: no event
  await store(report(uid, 'running', 3));
  await store(report(uid, 'running', 4, { health: 'healthy' })); // health only: no event
  await store(report(uid, 'running', 5, { restarts: 1, message: 'liveness check failed' }));
  await store(report(uid, 'exited', 6, { exitCode: 137, oomKilled: true, restarts: 1 }));
  const events = await pods.events(TENANT, 'db');
  assert.deepEqual(events.map((e) => e.type), ['created', 'scheduled', 'creating', 'started', 'restarted', 'oom_killed']);
  assert.equal(events[0]!.message, 'pod created by alice');
  assert.equal(events[1]!.message, 'scheduled on node h1');
  assert.match(events[4]!.message, /instance 1: liveness check failed/);
  assert.match(events[5]!.message, /ran out of memory/);
  assert.ok(events.slice(2).every((e) => e.node === 'h1' && e.generation === 1));
});

test('running again after the host started the container in place is a restart', async () => {
  const { pods, uid } = await placedPod('app');
  const store = async (o: Observed) => assert.notEqual(await pods.setObserved(TENANT, 'app', o, reportEvents(o)), 'stale');
  await store(report(uid, 'running', 1));
  await store(report(uid, 'exited', 2, { exitCode: 255 }));
  await store(report(uid, 'running', 3, { restarts: 1, message: 'the host went down' }));
  assert.deepEqual((await pods.events(TENANT, 'app')).map((e) => e.type), ['created', 'scheduled', 'started', 'exited', 'restarted']);
});
