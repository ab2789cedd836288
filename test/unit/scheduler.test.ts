import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseNode, type Usage } from '../../coordinator/scheduler.js';
import { backoffMs } from '../../coordinator/reconciler.js';
import { reconnectDelayMs } from '../../agent/link.js';

const nodes = [
  { nodeId: 'a', capacity: { cpuMilli: 2000, memoryMb: 4096 } },
  { nodeId: 'b', capacity: { cpuMilli: 4000, memoryMb: 1024 } },
];

test('picks the node with the most free CPU that fits the requests', () => {
  const usage = new Map<string, Usage>([['b', { cpuMilli: 1000, memoryMb: 0, pods: 1 }]]);
  assert.equal(chooseNode(nodes, usage, { cpu_request: 250, mem_request: 256 }), 'b');
  assert.equal(chooseNode(nodes, usage, { cpu_request: 250, mem_request: 2048 }), 'a', 'b lacks memory');
  assert.equal(chooseNode(nodes, usage, { cpu_request: 5000, mem_request: 1 }), null, 'no node has room');
  assert.equal(chooseNode([], usage, { cpu_request: 1, mem_request: 1 }), null);
});

test('resends back off and stay capped', () => {
  assert.equal(backoffMs(0), 2000);
  assert.equal(backoffMs(1), 4000);
  assert.equal(backoffMs(10), 30_000);
});

test('reconnect delays are jittered between half and all of a capped exponential', () => {
  assert.equal(reconnectDelayMs(0, () => 0), 125);
  assert.equal(reconnectDelayMs(0, () => 1), 250);
  assert.equal(reconnectDelayMs(20, () => 1), 10_000);
  assert.equal(reconnectDelayMs(20, () => 0), 5_000);
});
