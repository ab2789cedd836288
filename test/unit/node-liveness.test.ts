// The one meaning of "node reachable": a live link here, or a fresh heartbeat in Redis on a link
// that is not closed. Node records come from a stub store (the edge this unit reads through).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEARTBEAT_STALE_MS, NodeLiveness } from '../../coordinator/node-liveness.js';
import { NodeAdmin, type NodeRecord } from '../../coordinator/store/nodes.js';

function record(nodeId: string, heartbeatAgoMs: number, disconnected = false): NodeRecord {
  const at = new Date(Date.now() - heartbeatAgoMs).toISOString();
  return {
    nodeId, capacity: { cpuMilli: 1000, memoryMb: 1024 }, dockerVersion: 'x', agentVersion: 'x', connectedAt: at, lastHeartbeat: at,
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
  };
}

test('reachable: linked here, or a fresh heartbeat on an open link; not when stale, closed or unknown', async () => {
  const s = store([record('fresh', 1000), record('stale', HEARTBEAT_STALE_MS + 1000), record('closed', 1000, true)], ['fresh']);
  const liveness = new NodeLiveness(s, (id) => id === 'here');
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
  const liveness = new NodeLiveness(s, () => false);
  await liveness.refresh();
  s.byId.set('new', record('new', 100));
  assert.equal(liveness.reachable('new'), false, 'not yet in the records');
  assert.equal(await liveness.reachableNow('new'), true);
  assert.ok(Date.now() - (await liveness.lastSeenNow('new')) < 50);
  s.byId.set('gone', record('gone', 120_000));
  assert.ok(Date.now() - (await liveness.lastSeenNow('gone')) < 60_000, 'never counted from before this coordinator started');
});
