// What happened to a pod, as events: from the API, the reconciler and its host, with a
// container the kernel killed for passing its memory limit named as such.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { waitFor } from '../helpers/procs.js';
import { sseEvents } from '../helpers/sse.js';
import { startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

interface PodEvent {
  time: string;
  type: string;
  message: string;
  generation?: number;
  node?: string;
}

describe('pod events', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.stop();
  });
  const events = async (podId: string): Promise<PodEvent[]> => {
    const r = await s.api('GET', `/v3/pods/${podId}/events`);
    assert.equal(r.status, 200, r.body.message);
    return r.body.result;
  };

  test('a pod\'s life as events, in order, each with its time; the action log says the same', async () => {
    assert.equal((await s.api('POST', '/v3/pods', { body: { pod_id: 'lifeline', image: TEST_IMAGE } })).status, 200);
    await s.waitStatus('lifeline', 'RUNNING');
    assert.equal((await s.api('GET', '/v3/pods/lifeline/stop')).status, 200);
    await s.waitStatus('lifeline', 'STOPPED');
    const seen = await waitFor('the removal event', async () => {
      const e = await events('lifeline');
      return e.some((x) => x.type === 'removed') ? e : null;
    });
    const types = seen.map((e) => e.type).filter((t) => t !== 'note');
    for (const [a, b] of [['created', 'scheduled'], ['scheduled', 'started'], ['started', 'stop_requested'], ['stop_requested', 'removed']]) {
      assert.ok(types.indexOf(a!) >= 0 && types.indexOf(a!) < types.lastIndexOf(b!), `${a} before ${b}: ${types.join(', ')}`);
    }
    const started = seen.find((e) => e.type === 'started')!;
    assert.equal(started.node, s.nodeId);
    assert.equal(started.generation, 1);
    assert.ok(seen.every((e) => !Number.isNaN(Date.parse(e.time))));
    const actions = (await s.api('GET', '/v3/pods/lifeline/logs')).body.result.action_logs as string[];
    assert.equal(actions.length, seen.length);
    assert.equal(actions[0], `${seen[0]!.time}: ${seen[0]!.message}`);
    const page = await s.api('GET', '/v3/pods/lifeline/events?limit=2');
    assert.equal(page.body.result.length, 2);
    assert.equal((page.body.metadata as { total: number }).total, seen.length);
    assert.equal((await s.api('GET', '/v3/pods/lifeline/events', { token: s.otherTenantToken })).status, 401);
  });

  test('events follow live as server-sent events, and resume after Last-Event-ID', async () => {
    assert.equal((await s.api('POST', '/v3/pods', { body: { pod_id: 'watched', image: TEST_IMAGE } })).status, 200);
    const read = async (headers: Record<string, string>, until: (ev: Array<{ id: string; type: string }>) => boolean) => {
      const res = await request(`${s.apiUrl}/v3/pods/watched/events?follow=true`, { headers: { 'x-tapis-token': s.adminToken, ...headers } });
      assert.equal(res.statusCode, 200);
      const got: Array<{ id: string; type: string }> = [];
      for await (const e of sseEvents(res.body)) {
        if (e.event) got.push({ id: e.id ?? '', type: e.event });
        if (until(got)) break;
      }
      res.body.destroy();
      return got;
    };
    const first = await read({}, (ev) => ev.some((e) => e.type === 'started'));
    assert.equal(first[0]!.type, 'created');
    assert.equal((await s.api('GET', '/v3/pods/watched/stop')).status, 200);
    const resumed = await read({ 'last-event-id': first.at(-1)!.id }, (ev) => ev.some((e) => e.type === 'removed'));
    assert.ok(!resumed.some((e) => first.some((f) => f.id === e.id)), 'nothing twice');
    assert.equal(resumed[0]!.type, 'stop_requested');
    assert.equal((await s.api('DELETE', '/v3/pods/watched')).status, 200);
  });

  test('a container that passes its memory limit is an oom_killed event, and the pod says so', async () => {
    const r = await s.api('POST', '/v3/pods', {
      body: { pod_id: 'hungry', image: TEST_IMAGE, command: ['sh', '-c', 'echo eating; x=a; while :; do x="$x$x"; done'], resources: { mem_request: 32, mem_limit: 32 } },
    });
    assert.equal(r.status, 200, r.body.message);
    const oom = await waitFor('an oom_killed event', async () => (await events('hungry')).find((e) => e.type === 'oom_killed') ?? null, 60_000);
    assert.match(oom.message, /ran out of memory/);
    assert.equal(oom.node, s.nodeId);
    const pod = (await s.api('GET', '/v3/pods/hungry')).body.result;
    assert.equal(pod.status, 'ERROR');
  });
});
