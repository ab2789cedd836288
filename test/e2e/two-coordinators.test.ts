// Two coordinators on one Redis, each with an agent of its own: pods created through either
// run once, on any host (not only those linked to the coordinator they came through), a host
// connected to the other coordinator is never taken for lost, and a change made through one
// coordinator reaches the host connected to the other.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { waitFor } from '../helpers/procs.js';
import { startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

describe('two coordinators on one Redis', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  let second: Awaited<ReturnType<Stack['addCoordinator']>>;
  let b: Awaited<ReturnType<Stack['addAgent']>>;

  before(async () => {
    s = await startStack({ coordinatorEnv: { PODS_LOST_AFTER_S: '3' } });
    second = await s.addCoordinator();
    b = await s.addAgent('b', { coordinatorPort: second.port });
  });
  after(async () => {
    await s?.stop();
  });

  /** The same API call, through the second coordinator. */
  async function viaSecond(method: string, path: string, body?: unknown) {
    const res = await request(`${second.apiUrl}${path}`, {
      method: method as 'GET',
      headers: { 'x-tapis-token': s.adminToken, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  }
  const all = async (podId: string) => [...(await s.containers(podId)), ...(await s.containers(podId, b.nodeId))];

  test('pods created through one coordinator are placed on the hosts of both, not only on its own', async () => {
    // Each coordinator places among every reachable host, whichever holds its link: with both hosts
    // empty, two pods created through the second coordinator go one to each.
    for (const id of ['spread1', 'spread2']) assert.equal((await viaSecond('POST', '/v3/pods', { pod_id: id, image: TEST_IMAGE })).status, 200);
    const placed = await Promise.all(['spread1', 'spread2'].map(async (id) => (await s.waitStatus(id, 'RUNNING')).status_container.node as string));
    assert.deepEqual([...placed].sort(), [s.nodeId, b.nodeId].sort(), `placed on ${placed.join(' and ')}`);
    for (const id of ['spread1', 'spread2']) assert.equal((await all(id)).length, 1, `${id} runs once`);
    // Out of the way of the tests below, which count pods per host.
    for (const id of ['spread1', 'spread2']) assert.equal((await viaSecond('DELETE', `/v3/pods/${id}`)).status, 200);
    await waitFor('the spread pods\' containers to go', async () => (await all('spread1')).length + (await all('spread2')).length === 0, 40_000);
  });

  test('pods created through either coordinator run once each, on both hosts', async () => {
    for (const id of ['twoa1', 'twoa2']) assert.equal((await s.api('POST', '/v3/pods', { body: { pod_id: id, image: TEST_IMAGE } })).status, 200);
    for (const id of ['twob1', 'twob2']) assert.equal((await viaSecond('POST', '/v3/pods', { pod_id: id, image: TEST_IMAGE })).status, 200);
    const nodes = new Set<string>();
    for (const id of ['twoa1', 'twoa2', 'twob1', 'twob2']) {
      const pod = await s.waitStatus(id, 'RUNNING');
      nodes.add(pod.status_container.node);
      assert.equal((await all(id)).length, 1, `${id} runs once`);
    }
    if (nodes.size < 2) {
      // Say how each pod came to its node (which coordinator placed it, and whether it moved).
      const story = await Promise.all(['twoa1', 'twoa2', 'twob1', 'twob2'].map(async (id) => `${id}: ${JSON.stringify((await s.api('GET', `/v3/pods/${id}/events`)).body.result)}`));
      assert.fail(`the pods run on ${[...nodes].join(', ')} only, not on both ${s.nodeId} and ${b.nodeId}:\n${story.join('\n')}`);
    }
    assert.deepEqual([...nodes].sort(), [s.nodeId, b.nodeId].sort());
  });

  test('a host connected to the other coordinator is not taken for lost', async () => {
    const before = Object.fromEntries(await Promise.all(['twoa1', 'twoa2', 'twob1', 'twob2'].map(async (id) => [id, (await s.api('GET', `/v3/pods/${id}`)).body.result.status_container.node])));
    // Well past lost_after (3 s): neither coordinator holds both links, both read the heartbeats in Redis.
    await new Promise((r) => setTimeout(r, 6000));
    for (const [id, node] of Object.entries(before)) {
      const pod = (await s.api('GET', `/v3/pods/${id}`)).body.result;
      assert.equal(pod.status, 'RUNNING');
      assert.equal(pod.status_container.node, node, `${id} stayed where it was`);
      assert.equal((await all(id)).length, 1);
    }
  });

  test('a stop made through one coordinator reaches a host connected to the other', async () => {
    const onB = (await Promise.all(['twoa1', 'twoa2', 'twob1', 'twob2'].map(async (id) => [id, (await s.api('GET', `/v3/pods/${id}`)).body.result.status_container.node] as const))).find(([, n]) => n === b.nodeId)![0];
    // Through the first coordinator; host b is linked to the second one.
    assert.equal((await s.api('GET', `/v3/pods/${onB}/stop`)).status, 200);
    await waitFor(`${onB}'s container to go from host b`, async () => (await s.containers(onB, b.nodeId)).length === 0, 40_000);
    await s.waitStatus(onB, 'STOPPED', 20_000);
  });

  test('the first coordinator killed and restarted: nothing is lost or doubled', async () => {
    await s.coordinator.kill('SIGKILL');
    s.coordinator.start();
    await waitFor('the coordinator to answer', async () => (await s.api('GET', '/v3/pods/healthcheck', { token: null }).catch(() => null))?.status === 200);
    await new Promise((r) => setTimeout(r, 2000));
    for (const id of ['twoa1', 'twoa2', 'twob1', 'twob2']) {
      const pod = (await s.api('GET', `/v3/pods/${id}`)).body.result;
      assert.ok(['RUNNING', 'STOPPED'].includes(pod.status), `${id}: ${pod.status}`);
      assert.equal((await all(id)).length, pod.status === 'RUNNING' ? 1 : 0);
    }
  });
});
