// The change stream against a real Redis: every state change of a pod is one entry, appended in
// the step that makes it; a follower sees every change in order, resumes after a restart where it
// stopped without missing one, and says so (a gap) when changes were trimmed before it read them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { PodSpec, RESOURCE_DEFAULTS, type Desired, type Observed } from '../../shared/pod.js';
import { createLogger } from '../../shared/log.js';
import { ChangeFeed, type PodChange } from '../../coordinator/store/changes.js';
import { PodStore } from '../../coordinator/store/pods.js';
import type { Redis } from '../../coordinator/store/redis.js';
import { waitFor } from '../helpers/procs.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const TENANT = 't1';
const ROOM = { cpuMilli: 64_000, memoryMb: 65_536 };
const log = createLogger('test', 'silent');
let redis: TestRedis;
const clients: Redis[] = [];
const feeds: ChangeFeed[] = [];

before(async () => {
  redis = await startRedis();
});

after(async () => {
  for (const f of feeds) await f.stop();
  for (const c of clients) c.destroy();
  await redis.stop();
});

async function connect(): Promise<Redis> {
  const c = createClient({ url: redis.url }) as Redis;
  await c.connect();
  clients.push(c);
  return c;
}

const prefix = () => `test-${randomBytes(4).toString('hex')}:`;

function spec(podId: string): PodSpec {
  const now = new Date().toISOString();
  return PodSpec.parse({
    pod_id: podId, tenant: TENANT, owner: 'alice', image: 'pods-test/httpd', template: '', description: '',
    environment_variables: {}, volume_mounts: {}, time_to_stop_default: -1, networking: {},
    resources: { ...RESOURCE_DEFAULTS }, compute_queue: 'default', creation_ts: now, update_ts: now,
  });
}

const desired = (uid: string): Desired => ({ status_requested: 'ON', uid, generation: 1, deleting: false, start_instance_ts: null, time_to_stop_ts: null });

/** A follower that records what it is handed. */
async function follow(p: string, consumer: string): Promise<{ feed: ChangeFeed; seen: PodChange[]; gaps: string[] }> {
  const seen: PodChange[] = [];
  const gaps: string[] = [];
  const feed = new ChangeFeed(await connect(), p, { consumer, log, onChanges: (c) => void seen.push(...c), onGap: (why) => void gaps.push(why), blockMs: 200, saveEveryMs: 0 });
  await feed.start();
  feeds.push(feed);
  return { feed, seen, gaps };
}

const summary = (cs: PodChange[]) => cs.map((c) => `${c.podId} ${c.kind} gen=${c.generation} node=${c.node ?? '-'} by=${c.origin || '-'}`);

test('each state change is one entry, in order, naming the pod, its generation, node and who made it', async () => {
  const p = prefix();
  const a = new PodStore(await connect(), p, { origin: 'coordA/1' });
  const b = new PodStore(await connect(), p, { origin: 'coordB/1' });
  const { seen, gaps } = await follow(p, 'B');
  assert.deepEqual(gaps, ['this coordinator has not followed the change stream before'], 'a first start looks at everything once');

  assert.ok(await a.create(spec('web'), desired('u1')));
  assert.equal((await b.place(TENANT, 'web', { nodeId: 'h1', at: new Date().toISOString() }, ROOM)).result, 'placed');
  const obs: Observed = { nodeId: 'h1', uid: 'u1', generation: 1, phase: 'running', at: new Date().toISOString() } as Observed;
  assert.notEqual(await b.setObserved(TENANT, 'web', obs), 'stale');
  assert.equal(await b.setObserved(TENANT, 'web', { ...obs, uid: 'other' }), 'stale', 'a stale report is no change');
  await a.update(TENANT, 'web', (cur) => ({ desired: { ...cur.desired, status_requested: 'OFF' } }));
  const rec = (await a.get(TENANT, 'web'))!;
  assert.equal(await a.unplace(TENANT, 'web', rec.placement!, rec.raw.placement), 'set');
  await a.delete(TENANT, 'web', null);

  await waitFor('6 changes', async () => seen.length >= 6, 5000, 20);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(summary(seen), [
    'web created gen=1 node=- by=coordA/1',
    'web placed gen=1 node=h1 by=coordB/1',
    'web observed gen=1 node=h1 by=coordB/1',
    'web desired gen=1 node=h1 by=coordA/1',
    'web unplaced gen=1 node=h1 by=coordA/1',
    'web deleted gen=1 node=- by=coordA/1',
  ]);
  assert.equal(seen.length, 6, 'nothing but the six changes');
  assert.deepEqual(seen.map((c) => c.seq), seen.map((_, i) => seen[0]!.seq + i), 'numbered one after another');
  assert.equal(seen[2]!.observedNode, 'h1');
  assert.deepEqual(gaps.length, 1);
});

test('a restarted follower resumes where it stopped and misses no change', async () => {
  const p = prefix();
  const pods = new PodStore(await connect(), p, { origin: 'coordA/1' });
  const first = await follow(p, 'A');
  for (let i = 0; i < 5; i++) assert.ok(await pods.create(spec(`before${i}`), desired(`b${i}`)));
  await waitFor('5 changes', async () => first.seen.length === 5, 5000, 20);
  await first.feed.stop();

  // Made while it is down.
  for (let i = 0; i < 300; i++) assert.ok(await pods.create(spec(`while${i}`), desired(`w${i}`)));

  const second = await follow(p, 'A');
  for (let i = 0; i < 5; i++) assert.ok(await pods.create(spec(`after${i}`), desired(`a${i}`)));
  await waitFor('305 changes', async () => second.seen.length >= 305, 10_000, 20);
  assert.deepEqual(second.gaps, [], 'no gap: it resumed from its position');
  assert.deepEqual(
    second.seen.map((c) => c.podId),
    [...Array.from({ length: 300 }, (_, i) => `while${i}`), ...Array.from({ length: 5 }, (_, i) => `after${i}`)],
    'every change made while it was down, then the new ones, each once and in order',
  );
});

test('changes trimmed before a follower read them are a gap, said once; it then goes on from there', async () => {
  const p = prefix();
  // A stream that keeps about 10 entries (Redis trims whole blocks of 100 at most: ~ MAXLEN).
  const pods = new PodStore(await connect(), p, { origin: 'coordA/1', changesKept: 10 });
  const first = await follow(p, 'A');
  assert.ok(await pods.create(spec('one'), desired('u')));
  await waitFor('a change', async () => first.seen.length === 1, 5000, 20);
  await first.feed.stop();

  for (let i = 0; i < 500; i++) assert.ok(await pods.create(spec(`lost${i}`), desired(`l${i}`)));
  const second = await follow(p, 'A');
  await waitFor('a gap', async () => second.gaps.length > 0, 5000, 20);
  assert.equal(second.gaps.length, 1);
  assert.match(second.gaps[0]!, /^changes 2 to \d+ were trimmed from the stream before this coordinator read them$/);
  assert.ok(second.seen.length < 500 && second.seen.length > 0, `it was handed what was kept (${second.seen.length})`);
  assert.equal(second.seen[second.seen.length - 1]!.podId, 'lost499');

  assert.ok(await pods.create(spec('next'), desired('n')));
  await waitFor('the next change', async () => second.seen.some((c) => c.podId === 'next'), 5000, 20);
  assert.equal(second.gaps.length, 1, 'no second gap');
});

test('a stream reset under a follower (Redis lost its data) is a gap too', async () => {
  const p = prefix();
  const c = await connect();
  const pods = new PodStore(c, p, { origin: 'coordA/1' });
  for (let i = 0; i < 3; i++) assert.ok(await pods.create(spec(`x${i}`), desired(`x${i}`)));
  const f = await follow(p, 'A');
  assert.equal(f.gaps.length, 1);
  await c.del([pods.keys.changes(), pods.keys.changeSeq()]);
  await waitFor('a gap for the reset', async () => f.gaps.length === 2, 5000, 20);
  assert.match(f.gaps[1]!, /^the change counter went back from 3 to 0$/);
  assert.ok(await pods.create(spec('fresh'), desired('f')));
  await waitFor('the change after the reset', async () => f.seen.some((x) => x.podId === 'fresh'), 5000, 20);
});

test('scripts run by digest are sent again when Redis has forgotten them (SCRIPT FLUSH, a restart)', async () => {
  const p = prefix();
  const c = await connect();
  const pods = new PodStore(c, p, { origin: 'coordA/1' });
  assert.ok(await pods.create(spec('before'), desired('b')));
  await c.sendCommand(['SCRIPT', 'FLUSH']);
  assert.ok(await pods.create(spec('after'), desired('a')));
  assert.ok(await pods.get(TENANT, 'after'));
});
