// A node's link opening or closing on one coordinator, seen by another at once: announced over a
// real Redis (NodeStore.announceLink), heard by the other's NodeLiveness (watch), which reads the
// node's record again without waiting for its next periodic refresh.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { NodeLiveness } from '../../coordinator/node-liveness.js';
import { NodeStore, type NodeRecord } from '../../coordinator/store/nodes.js';
import { waitFor } from '../helpers/procs.js';
import { redisForFile } from '../helpers/redis.js';

const redis = redisForFile();

/** A coordinator's node store: its own connection, a shared key prefix. */
async function nodeStore(prefix: string): Promise<NodeStore> {
  return new NodeStore(await redis.connect(), prefix);
}

function record(nodeId: string, disconnected: boolean): NodeRecord {
  const now = new Date().toISOString();
  return {
    nodeId, capacity: { cpuMilli: 2000, memoryMb: 4096 }, dockerVersion: 'x', agentVersion: 'x', connectedAt: now, lastHeartbeat: now,
    running: 0, disconnectedAt: disconnected ? now : null,
  };
}

test('a link opened and then closed on coordinator B is seen by coordinator A at once, not at its next refresh', async () => {
  const prefix = `test-${randomBytes(4).toString('hex')}:`;
  const [a, b] = [await nodeStore(prefix), await nodeStore(prefix)];
  // A links no node itself, and reads the records once: its periodic refresh is never started here.
  const liveness = new NodeLiveness(a, { isConnected: () => false, connected: () => [] });
  await liveness.refresh();
  const stop = await liveness.watch();
  try {
    assert.equal(liveness.reachable('n1'), false);
    // B's hub, on the node's hello: the record, then the announcement.
    await b.put(record('n1', false));
    await b.announceLink('n1');
    await waitFor('A to see n1 reachable', async () => liveness.reachable('n1'), 5_000, 10);
    assert.deepEqual(liveness.reachableNodes().map((n) => n.nodeId), ['n1'], 'A may now place pods there');
    // B's hub, on the link closing.
    await b.put(record('n1', true));
    await b.announceLink('n1');
    await waitFor('A to see n1 unreachable', async () => !liveness.reachable('n1'), 5_000, 10);
    assert.deepEqual(liveness.reachableNodes(), []);
  } finally {
    await stop();
  }
});
