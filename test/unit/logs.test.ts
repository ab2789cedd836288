import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dockerSince, LogShipper, normalizeTs, type LogPiece } from '../../agent/log-shipper.js';
import { LogBudget, splitBytes } from '../../agent/log-budget.js';

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
  assert.equal(budget.admit('z'.repeat(5000)), '', 'a line cut in two is not shipped half');
});

test('a log budget may start with more than its burst (a container read again from the start)', () => {
  const budget = new LogBudget(10, 10, 1000);
  const text = 'y'.repeat(99) + '\n';
  assert.equal(budget.admit(text.repeat(10)), text.repeat(10));
  assert.equal(budget.admit(text), '');
});

const stamped = (ts: string, text: string) => `${ts} ${text}\n`;
const T = (s: number, ns = 0) => `2026-11-29T10:00:${String(s).padStart(2, '0')}.${String(ns).padStart(9, '0')}Z`;

function shipper(o: { since?: string; fail?: () => boolean } = {}) {
  const sent: LogPiece[] = [];
  const s = new LogShipper({
    send: (p) => {
      if (o.fail?.()) return false;
      sent.push(p);
      return true;
    },
    budget: new LogBudget(1e9, 1e9),
    pieceBytes: 64,
    backlogBytes: 1024,
    flushMs: 10_000,
    ...(o.since ? { since: o.since } : {}),
  });
  return { s, sent };
}

test('a shipper strips the timestamps, keys each piece by its last line, and starts a new run with reset', () => {
  const { s, sent } = shipper();
  s.push(stamped('2026-11-29T10:00:01.5Z', 'one') + stamped(T(2), 'tw'));
  s.flush();
  assert.deepEqual(sent, [{ chunk: 'one\ntw\n', key: `${T(2)}#0000`, reset: true }]);
  s.push(stamped(T(3), 'x'.repeat(100)));
  s.flush();
  assert.deepEqual(sent.slice(1).map((p) => [p.key, p.chunk.length, p.reset]), [[`${T(3)}#0000`, 64, false], [`${T(3)}#0001`, 37, false]]);
  assert.equal(normalizeTs('2026-11-29T10:00:01.5Z'), '2026-11-29T10:00:01.500000000Z');
  assert.equal(dockerSince(`${T(3, 1234)}#0000`), `${Date.parse('2026-11-29T10:00:03Z') / 1000}.000001234`);
});

test('a shipper continuing a run skips what the coordinator has, and sends again only what it lacks', () => {
  let down = false;
  const { s, sent } = shipper({ since: `${T(2)}#0000`, fail: () => down });
  assert.equal(s.followSince, dockerSince(`${T(2)}#0000`));
  s.push(stamped(T(1), 'old') + stamped(T(2), 'old too') + stamped(T(3), 'new'));
  s.flush();
  assert.deepEqual(sent, [{ chunk: 'new\n', key: `${T(3)}#0000`, reset: false }]);
  down = true;
  s.push(stamped(T(4), 'while the link is down'));
  s.flush();
  assert.equal(sent.length, 1);
  down = false;
  // The coordinator says it has up to T(3): only T(4) goes again.
  s.resendAfter(`${T(3)}#0000`);
  assert.deepEqual(sent.slice(1), [{ chunk: 'while the link is down\n', key: `${T(4)}#0000`, reset: false }]);
});
