import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LogBudget, LogRing, splitBytes } from '../../agent/logring.js';

test('the ring keeps the newest bytes and drops the oldest lines first', () => {
  const ring = new LogRing(20);
  ring.push('line one\n');
  ring.push('line two\n');
  ring.push('line three\n');
  assert.equal(ring.text(), 'line two\nline three\n', 'exactly 20 bytes fit');
  ring.push('4\n');
  assert.equal(ring.text(), 'line three\n4\n');
});

test('a single chunk larger than the ring keeps its tail from a line start', () => {
  const ring = new LogRing(10);
  ring.push('aaaa\nbbbb\ncccc\n');
  assert.equal(ring.text(), 'cccc\n');
  assert.equal(ring.size, 5);
});

test('splitBytes cuts on character boundaries within the byte limit', () => {
  const pieces = splitBytes('héllo wörld', 4);
  assert.equal(pieces.join(''), 'héllo wörld');
  for (const p of pieces) assert.ok(Buffer.byteLength(p) <= 4);
});

test('a log budget passes output up to its burst, then whole lines at its rate, and says how much it dropped', async () => {
  const budget = new LogBudget(1000, 100, 100);
  const line = 'x'.repeat(19) + '\n'; // 20 bytes
  assert.equal(budget.admit(line.repeat(4)), line.repeat(4), 'within the burst');
  // 20 bytes left: one whole line of the next three, the rest dropped.
  assert.equal(budget.admit(line.repeat(3)), line);
  assert.equal(budget.admit(line), '', 'nothing left');
  await sleep(60); // about 60 bytes come back
  const next = budget.admit(line);
  assert.equal(next, `[pods: 60 bytes of output dropped: the pod printed faster than 1000 bytes/s]\n${line}`);
  assert.equal(budget.admit('z'.repeat(50)), '', 'a line cut in two is not shipped half');
});

test('a log budget may start with more than its burst (a container read again from the start)', () => {
  const budget = new LogBudget(10, 10, 1000);
  const text = 'y'.repeat(99) + '\n';
  assert.equal(budget.admit(text.repeat(10)), text.repeat(10));
  assert.equal(budget.admit(text), '');
});
