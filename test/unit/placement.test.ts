// The placement script's invariants, against a real Redis: a placement fits or is refused in one
// step, a claim is given back exactly once when its pod leaves its node or is deleted, two
// coordinators racing for the last room never overcommit a node, and each places on every
// reachable node, whichever coordinator holds its link.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { PodSpec, RESOURCE_DEFAULTS, type Desired } from '../../shared/pod.js';
import { Scheduler, claimable, type NodeView } from '../../coordinator/scheduler.js';
import { NodeLiveness } from '../../coordinator/node-liveness.js';
import { NodeStore, type NodeRecord } from '../../coordinator/store/nodes.js';
import { PodStore } from '../../coordinator/store/pods.js';
import type { Capacity } from '../../shared/protocol.js';
import type { Redis } from '../../coordinator/store/redis.js';
import { redisForFile } from '../helpers/redis.js';

const TENANT = 't1';
const redis = redisForFile();

/** The first connection made: for looking at keys directly. */
let direct: Redis | null = null;

/** A coordinator's view of the store: its own connection, a shared key prefix. */
async function store(prefix: string): Promise<PodStore> {
  const c = await redis.connect();
  direct ??= c;
  return new PodStore(c, prefix);
}

const prefix = () => `test-${randomBytes(4).toString('hex')}:`;

function spec(podId: string, cpu = 250, mem = 256): PodSpec {
  const now = new Date().toISOString();
  return PodSpec.parse({
    pod_id: podId, tenant: TENANT, owner: 'alice', image: 'pods-test/httpd', template: '', description: '',
    environment_variables: {}, volume_mounts: {}, time_to_stop_default: -1, networking: {},
    resources: { ...RESOURCE_DEFAULTS, cpu_request: cpu, mem_request: mem }, compute_queue: 'default', creation_ts: now, update_ts: now,
  });
}

const desired = (over: Partial<Desired> = {}): Desired => ({
  status_requested: 'ON', uid: randomBytes(4).toString('hex'), generation: 1, deleting: false, start_instance_ts: null, time_to_stop_ts: null, ...over,
});

async function createPods(pods: PodStore, ids: string[], cpu = 250, mem = 256): Promise<void> {
  for (const id of ids) assert.ok(await pods.create(spec(id, cpu, mem), desired()));
}

const ROOM_FOR_8 = { cpuMilli: 2000, memoryMb: 4096 };
const at = () => new Date().toISOString();

/** The invariant: a node's usage is the sum of the claims of the pods in its set, and only they hold claims on it. */
async function assertExact(pods: PodStore, nodeId: string): Promise<void> {
  const c = direct!;
  const members = await pods.nodePodKeys(nodeId);
  let cpu = 0;
  let mem = 0;
  for (const m of members) {
    const [tenant, podId] = m.split('/') as [string, string];
    const raw = await c.hGet(pods.keys.pod(tenant, podId), 'claim');
    assert.ok(raw, `${m} is placed on ${nodeId} with no claim`);
    const claim = JSON.parse(raw) as { nodeId: string; cpu_milli: number; memory_mb: number };
    assert.equal(claim.nodeId, nodeId);
    cpu += claim.cpu_milli;
    mem += claim.memory_mb;
  }
  assert.deepEqual(await pods.nodeUsage(nodeId), { cpuMilli: cpu, memoryMb: mem, pods: members.length });
}

test('a placement fits or is refused, by CPU and by memory', async () => {
  const pods = await store(prefix());
  await createPods(pods, ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8']);
  for (let i = 0; i < 8; i++) {
    const r = await pods.place(TENANT, `p${i}`, { nodeId: 'h1', at: at() }, ROOM_FOR_8);
    assert.equal(r.result, 'placed', `p${i}`);
    assert.deepEqual(r.usage, { cpuMilli: 250 * (i + 1), memoryMb: 256 * (i + 1), pods: i + 1 });
  }
  const full = await pods.place(TENANT, 'p8', { nodeId: 'h1', at: at() }, ROOM_FOR_8);
  assert.deepEqual(full, { result: 'no-room', usage: { cpuMilli: 2000, memoryMb: 2048, pods: 8 } });
  assert.equal((await pods.get(TENANT, 'p8'))!.placement, null, 'a refused pod is not placed');

  await createPods(pods, ['big'], 1, 4000);
  assert.equal((await pods.place(TENANT, 'big', { nodeId: 'h2', at: at() }, ROOM_FOR_8)).result, 'placed');
  assert.equal((await pods.place(TENANT, 'p8', { nodeId: 'h2', at: at() }, ROOM_FOR_8)).result, 'no-room', 'memory is checked too');
  await assertExact(pods, 'h1');
  await assertExact(pods, 'h2');
});

test('a placed pod, or one that no longer wants to run, is not placed again', async () => {
  const pods = await store(prefix());
  await createPods(pods, ['a']);
  assert.equal((await pods.place(TENANT, 'a', { nodeId: 'h1', at: at() }, ROOM_FOR_8)).result, 'placed');
  assert.equal((await pods.place(TENANT, 'a', { nodeId: 'h2', at: at() }, ROOM_FOR_8)).result, 'changed');
  assert.ok(await pods.create(spec('off'), desired({ status_requested: 'OFF' })));
  assert.ok(await pods.create(spec('gone'), desired({ deleting: true })));
  assert.equal((await pods.place(TENANT, 'off', { nodeId: 'h1', at: at() }, ROOM_FOR_8)).result, 'changed');
  assert.equal((await pods.place(TENANT, 'gone', { nodeId: 'h1', at: at() }, ROOM_FOR_8)).result, 'changed');
  assert.equal((await pods.place(TENANT, 'never-made', { nodeId: 'h1', at: at() }, ROOM_FOR_8)).result, 'gone');
  assert.deepEqual(await pods.nodeUsage('h1'), { cpuMilli: 250, memoryMb: 256, pods: 1 });
  assert.deepEqual(await pods.nodeUsage('h2'), { cpuMilli: 0, memoryMb: 0, pods: 0 });
});

test('room is given back at once, exactly once, when a pod leaves its node or is deleted', async () => {
  const pods = await store(prefix());
  const ids = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'];
  await createPods(pods, [...ids, 'next', 'after']);
  for (const id of ids) assert.equal((await pods.place(TENANT, id, { nodeId: 'h1', at: at() }, ROOM_FOR_8)).result, 'placed');
  assert.equal((await pods.place(TENANT, 'next', { nodeId: 'h1', at: at() }, ROOM_FOR_8)).result, 'no-room');

  // Deleted (its container gone): the next pod fits straight away.
  const p0 = (await pods.get(TENANT, 'p0'))!;
  await pods.delete(TENANT, 'p0', p0.placement);
  assert.equal(await pods.get(TENANT, 'p0'), null);
  assert.equal((await pods.place(TENANT, 'next', { nodeId: 'h1', at: at() }, ROOM_FOR_8)).result, 'placed');
  await assertExact(pods, 'h1');

  // Taken off its node (stopped, or moving): likewise; a second try with the same placement changes nothing.
  const p1 = (await pods.get(TENANT, 'p1'))!;
  assert.equal(await pods.unplace(TENANT, 'p1', p1.placement!, p1.raw.placement), 'set');
  assert.equal(await pods.unplace(TENANT, 'p1', p1.placement!, p1.raw.placement), 'changed');
  assert.deepEqual(await pods.nodeUsage('h1'), { cpuMilli: 1750, memoryMb: 1792, pods: 7 });
  await pods.delete(TENANT, 'p1', null);
  assert.deepEqual(await pods.nodeUsage('h1'), { cpuMilli: 1750, memoryMb: 1792, pods: 7 }, 'an unplaced pod deleted gives nothing back twice');
  assert.equal((await pods.place(TENANT, 'after', { nodeId: 'h1', at: at() }, ROOM_FOR_8)).result, 'placed');

  // A delete that names a stale placement deletes the pod from where it is.
  const p2 = (await pods.get(TENANT, 'p2'))!;
  await pods.delete(TENANT, 'p2', null);
  assert.equal(await pods.get(TENANT, 'p2'), null);
  assert.ok(!(await pods.nodePodKeys('h1')).includes(`${TENANT}/p2`));
  await pods.delete(TENANT, 'p2', p2.placement);
  await assertExact(pods, 'h1');
  assert.deepEqual(await pods.nodeUsage('h1'), { cpuMilli: 1750, memoryMb: 1792, pods: 7 });
});

test('pods placed before usage was kept are counted once, from their specs', async () => {
  const p = prefix();
  const pods = await store(p);
  await createPods(pods, ['old1', 'old2', 'new1'], 500, 100);
  // As an older coordinator placed them: the placement and the node set, no claim, no usage.
  const c = direct!;
  for (const id of ['old1', 'old2']) {
    await c.hSet(pods.keys.pod(TENANT, id), 'placement', JSON.stringify({ nodeId: 'h1', at: at() }));
    await c.sAdd(pods.keys.nodePods('h1'), `${TENANT}/${id}`);
  }
  const refused = await pods.place(TENANT, 'new1', { nodeId: 'h1', at: at() }, { cpuMilli: 1200, memoryMb: 4096 });
  assert.deepEqual(refused, { result: 'no-room', usage: { cpuMilli: 1000, memoryMb: 200, pods: 2 } }, 'the old pods count');
  const r = await pods.place(TENANT, 'new1', { nodeId: 'h1', at: at() }, { cpuMilli: 1500, memoryMb: 4096 });
  assert.deepEqual(r, { result: 'placed', usage: { cpuMilli: 1500, memoryMb: 300, pods: 3 } });
  await assertExact(pods, 'h1');
  const old1 = (await pods.get(TENANT, 'old1'))!;
  await pods.delete(TENANT, 'old1', old1.placement);
  assert.deepEqual(await pods.nodeUsage('h1'), { cpuMilli: 1000, memoryMb: 200, pods: 2 });
});

test('two coordinators racing for the last room: no node is ever overcommitted', async () => {
  const p = prefix();
  const [a, b] = [await store(p), await store(p)];
  const nodes: NodeView[] = [{ nodeId: 'h1', capacity: ROOM_FOR_8 }];
  const schedA = new Scheduler(a, () => nodes);
  const schedB = new Scheduler(b, () => nodes);
  const ids = Array.from({ length: 20 }, (_, i) => `r${i}`);
  await createPods(a, ids);
  // Both see the node empty and each tries to place ten pods in the same turn.
  const results = await Promise.all(ids.map((id, i) => (i % 2 ? schedB : schedA).place(TENANT, id, { cpu_request: 250, mem_request: 256 })));
  const placed = results.filter((r) => 'nodeId' in r);
  assert.equal(placed.length, 8);
  for (const r of results) if (!('nodeId' in r)) assert.deepEqual(r, { reason: 'no host has room for 250m CPU and 256 MiB of memory' });
  await assertExact(a, 'h1');
  assert.deepEqual(await a.nodeUsage('h1'), { cpuMilli: 2000, memoryMb: 2048, pods: 8 });

  // One deletes through A with its container gone; B places into that room at once.
  const winner = ids.find((_, i) => 'nodeId' in results[i]!)!;
  const loser = ids.find((_, i) => !('nodeId' in results[i]!))!;
  await a.delete(TENANT, winner, (await a.get(TENANT, winner))!.placement);
  assert.deepEqual(await schedB.place(TENANT, loser, { cpu_request: 250, mem_request: 256 }), { nodeId: 'h1' });
  await assertExact(a, 'h1');
});

test('placements of one turn spread over the nodes, and pinned pods stay on their node', async () => {
  const pods = await store(prefix());
  const nodes: NodeView[] = [
    { nodeId: 'h1', capacity: ROOM_FOR_8 },
    { nodeId: 'h2', capacity: ROOM_FOR_8 },
  ];
  const sched = new Scheduler(pods, () => nodes);
  const ids = Array.from({ length: 8 }, (_, i) => `s${i}`);
  await createPods(pods, [...ids, 'pinned']);
  await Promise.all(ids.map((id) => sched.place(TENANT, id, { cpu_request: 250, mem_request: 256 })));
  assert.equal((await pods.nodeUsage('h1')).pods, 4);
  assert.equal((await pods.nodeUsage('h2')).pods, 4);
  assert.deepEqual(await sched.place(TENANT, 'pinned', { cpu_request: 250, mem_request: 256 }, 'h2'), { nodeId: 'h2' });
  assert.deepEqual(await sched.place(TENANT, 'pinned', { cpu_request: 250, mem_request: 256 }, 'h9'), {
    reason: "host h9, which holds this pod's data, is not connected or not taking pods",
  });
});

test('closed nodes take no pods; overcommit lets a node promise more than it has', async () => {
  const pods = await store(prefix());
  const nodes: NodeView[] = [{ nodeId: 'h1', capacity: ROOM_FOR_8 }];
  await createPods(pods, Array.from({ length: 17 }, (_, i) => `o${i}`));
  const cordoned = new Scheduler(pods, () => nodes, async () => new Set(['h1']));
  assert.deepEqual(await cordoned.place(TENANT, 'o0', { cpu_request: 250, mem_request: 256 }), {
    reason: 'no host is taking pods: every connected host is cordoned or draining',
  });
  assert.deepEqual(claimable(ROOM_FOR_8, { cpu: 2, memory: 1.5 }), { cpuMilli: 4000, memoryMb: 6144 });
  const doubled = new Scheduler(pods, () => nodes, async () => new Set(), { overcommit: { cpu: 2, memory: 2 } });
  const results = await Promise.all(Array.from({ length: 17 }, (_, i) => doubled.place(TENANT, `o${i}`, { cpu_request: 250, mem_request: 256 })));
  assert.equal(results.filter((r) => 'nodeId' in r).length, 16);
  assert.deepEqual(await pods.nodeUsage('h1'), { cpuMilli: 4000, memoryMb: 4096, pods: 16 });
});

/**
 * A coordinator as main.ts makes one: its own Redis connection, its links (stand-ins for its
 * hub: these nodes, with their capped capacity), and a scheduler choosing among the reachable nodes.
 */
async function coordinator(p: string, links: Record<string, Capacity>) {
  const c = await redis.connect();
  const pods = new PodStore(c, p);
  const nodes = new NodeStore(c, p);
  const hub = { isConnected: (id: string) => id in links, connected: () => Object.entries(links).map(([nodeId, capacity]) => ({ nodeId, capacity })) };
  // What the hub writes at hello and every heartbeat: the capacity as capped, and what the agent reported.
  for (const [nodeId, capacity] of Object.entries(links)) await nodes.put(nodeRecord(nodeId, capacity));
  const liveness = new NodeLiveness(nodes, hub);
  const sched = new Scheduler(pods, () => liveness.reachableNodes(), async () => new Set([...(await nodes.admins())].filter(([, a]) => a.cordoned).map(([id]) => id)), {
    linkedHere: (id) => hub.isConnected(id),
  });
  return { pods, nodes, liveness, sched };
}

function nodeRecord(nodeId: string, capacity: Capacity, heartbeatAgoMs = 0): NodeRecord {
  const now = new Date(Date.now() - heartbeatAgoMs).toISOString();
  return {
    nodeId, capacity, reported: { cpuMilli: 64_000, memoryMb: 262_144 }, dockerVersion: 'x', agentVersion: 'x', connectedAt: now, lastHeartbeat: now, running: 0, disconnectedAt: null,
  };
}

test('a coordinator places pods on hosts linked to another too, within their capped capacity', async () => {
  const p = prefix();
  const ROOM_FOR_2 = { cpuMilli: 500, memoryMb: 1024 };
  // Host h1 is linked to A, h2 to B; each room for two pods (h2 reported far more, capped by its limits).
  const b = await coordinator(p, { h2: ROOM_FOR_2 });
  const a = await coordinator(p, { h1: ROOM_FOR_2 });
  // A host whose heartbeat is stale is no candidate.
  await a.nodes.put(nodeRecord('h3', ROOM_FOR_8, 60_000));
  for (const c of [a, b]) await c.liveness.refresh();
  const ids = ['c0', 'c1', 'c2', 'c3', 'c4'];
  await createPods(b.pods, ids);
  // Created through B, placed by A (its sweep passed them first): they spread over both hosts.
  const results: Array<Awaited<ReturnType<Scheduler['place']>>> = [];
  for (const id of ids) results.push(await a.sched.place(TENANT, id, { cpu_request: 250, mem_request: 256 }));
  assert.deepEqual(results.slice(0, 4).map((r) => ('nodeId' in r ? r.nodeId : JSON.stringify(r))).sort(), ['h1', 'h1', 'h2', 'h2']);
  assert.deepEqual(results[4], { reason: 'no host has room for 250m CPU and 256 MiB of memory' }, 'h2 is given no more than its capped capacity');
  await assertExact(a.pods, 'h1');
  await assertExact(a.pods, 'h2');
  assert.equal((await a.pods.nodeUsage('h3')).pods, 0);

  // A volume's directory is made over the picking coordinator's own links: A picks only h1.
  assert.deepEqual(await a.sched.pick({ cpu_request: 0, mem_request: 0 }), { nodeId: 'h1' });
  assert.deepEqual(await b.sched.pick({ cpu_request: 0, mem_request: 0 }), { nodeId: 'h2' });
  // A cordon reaches the other coordinator's choice too; a host whose link closed is no candidate.
  // (A pod on h2 deleted through B first: room on h2 only.)
  const onH2 = ids.find((_, i) => { const r = results[i]!; return 'nodeId' in r && r.nodeId === 'h2'; })!;
  await b.pods.delete(TENANT, onH2, (await b.pods.get(TENANT, onH2))!.placement);
  await a.nodes.setAdmin('h2', { cordoned: true, draining: false, max_cpu_milli: null, max_memory_mb: null });
  assert.deepEqual(await a.sched.place(TENANT, 'c4', { cpu_request: 250, mem_request: 256 }), { reason: 'no host has room for 250m CPU and 256 MiB of memory' });
  await a.nodes.setAdmin('h2', { cordoned: false, draining: false, max_cpu_milli: null, max_memory_mb: null });
  await b.nodes.put({ ...nodeRecord('h2', ROOM_FOR_2), disconnectedAt: new Date().toISOString() });
  await a.liveness.refresh();
  assert.deepEqual(await a.sched.place(TENANT, 'c4', { cpu_request: 250, mem_request: 256 }), { reason: 'no host has room for 250m CPU and 256 MiB of memory' });
  await b.nodes.put(nodeRecord('h2', ROOM_FOR_2));
  await a.liveness.refresh();
  assert.deepEqual(await a.sched.place(TENANT, 'c4', { cpu_request: 250, mem_request: 256 }), { nodeId: 'h2' });
});

test('the overcommit factors are read from the environment, 1 by default, never below 1', async () => {
  const { loadCoordinatorConfig } = await import('../../shared/config.js');
  const env = { PODS_ADMIN_TOKEN: 'x'.repeat(32) };
  const plain = loadCoordinatorConfig(env);
  assert.equal(plain.nodeOvercommitCpu, 1);
  assert.equal(plain.nodeOvercommitMemory, 1);
  const set = loadCoordinatorConfig({ ...env, PODS_NODE_OVERCOMMIT_CPU: '2', PODS_NODE_OVERCOMMIT_MEMORY: '1.5' });
  assert.equal(set.nodeOvercommitCpu, 2);
  assert.equal(set.nodeOvercommitMemory, 1.5);
  assert.throws(() => loadCoordinatorConfig({ ...env, PODS_NODE_OVERCOMMIT_CPU: '0.5' }), /nodeOvercommitCpu/);
});
