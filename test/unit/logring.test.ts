import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogRing, splitBytes } from '../../agent/logring.js';

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
