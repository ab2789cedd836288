// Following a pod's output live (server-sent events): the last lines first, then each new line
// once, across an agent killed with -9 and started again, and resumed by Last-Event-ID.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { waitFor } from '../helpers/procs.js';
import { sseEvents, type SseEvent } from '../helpers/sse.js';
import { startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

/** An SSE reader over a real HTTP response: every event, as it arrives. */
async function follow(s: Stack, podId: string, headers: Record<string, string> = {}, query = '') {
  const res = await request(`${s.apiUrl}/v3/pods/${podId}/logs?follow=true${query}`, {
    headers: { 'x-tapis-token': s.adminToken, accept: 'text/event-stream', ...headers },
    bodyTimeout: 0,
  });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/event-stream/);
  const events: SseEvent[] = [];
  let ended = false;
  void (async () => {
    try {
      for await (const e of sseEvents(res.body)) events.push(e);
    } catch {
      // closed by the test
    }
    ended = true;
  })();
  const lines = () => events.filter((e) => !e.event).flatMap((e) => e.data);
  const lastId = () => events.filter((e) => e.id !== undefined).at(-1)?.id;
  return { events, lines, lastId, ended: () => ended, close: () => res.body.destroy() };
}

const ticks = (lines: string[]) => lines.filter((l) => /^tick \d+$/.test(l)).map((l) => Number(l.split(' ')[1]));

/** Each number once, each one more than the one before. */
function assertConsecutive(ns: number[], what: string): void {
  for (let i = 1; i < ns.length; i++) assert.equal(ns[i], ns[i - 1]! + 1, `${what}: ${ns[i - 1]} then ${ns[i]} (${ns.slice(Math.max(0, i - 5), i + 5).join(',')})`);
}

describe('live logs', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
    const r = await s.api('POST', '/v3/pods', { body: { pod_id: 'ticker', image: TEST_IMAGE, command: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.1; done'] } });
    assert.equal(r.status, 200, r.body.message);
    await s.waitStatus('ticker', 'RUNNING');
  });
  after(async () => {
    await s?.stop();
  });

  test('a follower gets the last lines, then every new line once, across an agent kill -9', async () => {
    await waitFor('some ticks', async () => ticks((await s.api('GET', '/v3/pods/ticker/logs')).body.result.logs.split('\n')).length >= 15);
    const f = await follow(s, 'ticker', {}, '&tail=5');
    await waitFor('the tail', async () => ticks(f.lines()).length >= 5);
    assert.ok(ticks(f.lines()).length <= 7, 'starts with about the last 5 lines');
    await waitFor('live lines', async () => ticks(f.lines()).length >= 15);

    await s.agent.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    s.agent.start();
    const before = ticks(f.lines()).at(-1)!;
    await waitFor('lines after the agent came back', async () => ticks(f.lines()).at(-1)! > before + 30, 30_000);
    f.close();
    assertConsecutive(ticks(f.lines()), 'followed');

    // The stored log too: every line once, none missing, across the restart.
    const stored = ticks((await s.api('GET', '/v3/pods/ticker/logs')).body.result.logs.split('\n'));
    assertConsecutive(stored, 'stored');
    assert.ok(stored.at(-1)! >= ticks(f.lines()).at(-1)!);
  });

  test('a follower that reconnects with Last-Event-ID continues where it was', async () => {
    const first = await follow(s, 'ticker', {}, '&tail=1');
    await waitFor('a few lines', async () => ticks(first.lines()).length >= 5);
    first.close();
    const seen = ticks(first.lines());
    await new Promise((r) => setTimeout(r, 700));
    const again = await follow(s, 'ticker', { 'last-event-id': first.lastId()! });
    await waitFor('more lines', async () => ticks(again.lines()).length >= 10);
    again.close();
    assertConsecutive([...seen, ...ticks(again.lines())], 'resumed');
  });

  test('a restart keeps the earlier run\'s output apart: the current log starts afresh, the old one is listed and read by run', async () => {
    const before = ticks((await s.api('GET', '/v3/pods/ticker/logs')).body.result.logs.split('\n'));
    assert.equal((await s.api('GET', '/v3/pods/ticker/restart')).status, 200);
    await waitFor('the new run to print', async () => {
      const r = (await s.api('GET', '/v3/pods/ticker/runs')).body.result;
      const now = ticks((await s.api('GET', '/v3/pods/ticker/logs')).body.result.logs.split('\n'));
      return r.current === 2 && r.earlier.includes(1) && now.length >= 3 ? now : null;
    }, 30_000);
    const current = ticks((await s.api('GET', '/v3/pods/ticker/logs')).body.result.logs.split('\n'));
    assert.equal(current[0], 1, 'the new run counts from 1');
    assertConsecutive(current, 'new run');
    const old = ticks((await s.api('GET', '/v3/pods/ticker/logs?run=1')).body.result.logs.split('\n'));
    assert.ok(old.length >= before.length && old[0] === before[0], 'the earlier run is kept whole');
    assertConsecutive(old, 'earlier run');
    assert.equal((await s.api('GET', '/v3/pods/ticker/logs?run=7')).status, 404);
    assert.equal((await s.api('GET', '/v3/pods/ticker/logs?run=x')).status, 400);
  });

  test('the stream ends when the pod stops; bad input is a 400', async () => {
    const f = await follow(s, 'ticker', {}, '&tail=0');
    assert.equal((await s.api('GET', '/v3/pods/ticker/stop')).status, 200);
    await waitFor('the end event', async () => f.events.some((e) => e.event === 'end'), 15_000);
    await waitFor('the stream to close', async () => f.ended());
    assert.match(f.events.find((e) => e.event === 'end')!.data[0]!, /stopped/);
    for (const q of ['&tail=-1', '&tail=abc']) {
      const r = await request(`${s.apiUrl}/v3/pods/ticker/logs?follow=true${q}`, { headers: { 'x-tapis-token': s.adminToken } });
      assert.equal(r.statusCode, 400);
      assert.match(((await r.body.json()) as { message: string }).message, /^tail: /);
    }
    const other = await request(`${s.apiUrl}/v3/pods/ticker/logs?follow=true`, { headers: { 'x-tapis-token': s.otherTenantToken } });
    assert.equal(other.statusCode, 401);
    await other.body.dump();
  });
});
