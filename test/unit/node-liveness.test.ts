// The one meaning of "node reachable": a live link here, or a fresh heartbeat in Redis on a link
// that is not closed; the reachable nodes are what the scheduler chooses among. Node records come
// from a stub store and links from a stub hub (the edges this unit reads through).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEARTBEAT_STALE_MS, NodeLiveness } from '../../coordinator/node-liveness.js';
import { NodeAdmin, type NodeRecord } from '../../coordinator/store/nodes.js';
import type { Capacity } from '../../shared/protocol.js';

function record(nodeId: string, heartbeatAgoMs: number, disconnected = false, capacity = { cpuMilli: 1000, memoryMb: 1024 }): NodeRecord {
  const at = new Date(Date.now() - heartbeatAgoMs).toISOString();
  return {
    nodeId, capacity, dockerVersion: 'x', agentVersion: 'x', connectedAt: at, lastHeartbeat: at,
    running: 0, disconnectedAt: disconnected ? at : null,
  };
}

function store(records: NodeRecord[], draining: string[] = []) {
  const byId = new Map(records.map((r) => [r.nodeId, r]));
  return {
    byId,
    list: async () => [...byId.values()],
    get: async (id: string) => byId.get(id) ?? null,
    admins: async () => new Map(draining.map((id) => [id, NodeAdmin.parse({ draining: true })])),
    watchLinks: async () => async () => undefined,
  };
}

/** This coordinator's links: these nodes, each with the capacity its link holds. */
function links(here: Record<string, Capacity> = {}) {
  return { isConnected: (id: string) => id in here, connected: () => Object.entries(here).map(([nodeId, capacity]) => ({ nodeId, capacity })) };
}

test('reachable: linked here, or a fresh heartbeat on an open link; not when stale, closed or unknown', async () => {
  const s = store([record('fresh', 1000), record('stale', HEARTBEAT_STALE_MS + 1000), record('closed', 1000, true)], ['fresh']);
  const liveness = new NodeLiveness(s, links({ here: { cpuMilli: 4000, memoryMb: 8192 } }));
  await liveness.refresh();
  assert.equal(liveness.reachable('here'), true, 'a link to this coordinator');
  assert.equal(liveness.reachable('fresh'), true, 'linked to another coordinator, beating');
  assert.equal(liveness.reachable('stale'), false);
  assert.equal(liveness.reachable('closed'), false);
  assert.equal(liveness.reachable('unknown'), false);
  assert.equal(liveness.draining('fresh'), true);
  assert.equal(liveness.draining('stale'), false);
});

test('a node that connected since the last refresh is found by reachableNow, and is not taken for lost', async () => {
  const s = store([]);
  const liveness = new NodeLiveness(s, links());
  await liveness.refresh();
  s.byId.set('new', record('new', 100));
  assert.equal(liveness.reachable('new'), false, 'not yet in the records');
  assert.equal(await liveness.reachableNow('new'), true);
  assert.ok(Date.now() - (await liveness.lastSeenNow('new')) < 50);
  s.byId.set('gone', record('gone', 120_000));
  assert.ok(Date.now() - (await liveness.lastSeenNow('gone')) < 60_000, 'never counted from before this coordinator started');
});

test('the nodes to place on: those linked here with their links\' capacity, and every other reachable one with its stored capacity', async () => {
  const s = store([
    record('here', 60_000, true, { cpuMilli: 1, memoryMb: 1 }),
    record('fresh', 1000, false, { cpuMilli: 500, memoryMb: 512 }),
    record('stale', HEARTBEAT_STALE_MS + 1000),
    record('closed', 1000, true),
  ]);
  const liveness = new NodeLiveness(s, links({ here: { cpuMilli: 4000, memoryMb: 8192 } }));
  await liveness.refresh();
  assert.deepEqual(liveness.reachableNodes(), [
    { nodeId: 'here', capacity: { cpuMilli: 4000, memoryMb: 8192 } },
    { nodeId: 'fresh', capacity: { cpuMilli: 500, memoryMb: 512 } },
  ]);
  // Its link closed (its record is told at once): it is no longer a candidate.
  s.byId.set('fresh', record('fresh', 1000, true));
  await liveness.refresh();
  assert.deepEqual(liveness.reachableNodes().map((n) => n.nodeId), ['here']);
});

test('a node whose link here closed is no candidate until records read a second later say it is back elsewhere', async () => {
  const s = store([record('n1', 100)]);
  const here: Record<string, Capacity> = { n1: { cpuMilli: 4000, memoryMb: 8192 } };
  const liveness = new NodeLiveness(s, links(here));
  await liveness.refresh();
  assert.deepEqual(liveness.reachableNodes().map((n) => n.nodeId), ['n1']);
  // Its link closes; the records read before (and any read before the hub marks it) still call it beating.
  delete here.n1;
  assert.deepEqual(liveness.reachableNodes(), []);
  await liveness.refresh();
  assert.deepEqual(liveness.reachableNodes(), []);
  // It said hello to another coordinator, which keeps its record beating: a candidate again, with the stored capacity.
  await new Promise((r) => setTimeout(r, 1100));
  s.byId.set('n1', record('n1', 100));
  await liveness.refresh();
  assert.deepEqual(liveness.reachableNodes(), [{ nodeId: 'n1', capacity: { cpuMilli: 1000, memoryMb: 1024 } }]);
});
