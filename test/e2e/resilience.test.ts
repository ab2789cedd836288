// Crashes while pods run or are being created: real processes killed with SIGKILL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { waitFor } from '../helpers/procs.js';
import { docker, startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

describe('surviving crashes', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.stop();
  });

  test('the agent killed and restarted while a pod runs: still RUNNING, same container, no second one', async () => {
    await s.api('POST', '/v3/pods', { body: { pod_id: 'steady', image: TEST_IMAGE } });
    const before = await s.waitStatus('steady', 'RUNNING');
    const host = `steady.pods.${s.tenant}.${s.baseDomain}`;
    await s.viaCaddy(host);

    await s.agent.kill('SIGKILL');
    const during = await waitFor('the coordinator to see the node gone', async () => {
      const r = (await s.api('GET', '/v3/pods/steady')).body.result;
      return r.status_container.node_reachable === false ? r : null;
    });
    assert.equal(during.status, 'RUNNING', 'the pod keeps running while its agent is away');
    assert.equal((await s.viaCaddy(host)).status, 200, 'and keeps serving');

    s.agent.start();
    await waitFor('the node to be back', async () => (await s.api('GET', '/v3/pods/steady')).body.result.status_container.node_reachable === true);
    // Give the agent's sync time to do anything wrong before looking.
    await new Promise((r) => setTimeout(r, 1500));
    const now = (await s.api('GET', '/v3/pods/steady')).body.result;
    assert.equal(now.status, 'RUNNING');
    assert.equal(now.status_container.container_id, before.status_container.container_id);
    assert.equal((await s.containers('steady')).length, 1);
    assert.equal((await s.viaCaddy(host)).status, 200);
    const logs = (await s.api('GET', '/v3/pods/steady/logs')).body.result.logs as string;
    assert.equal(logs.match(/pod starting/g)?.length, 1, 'logs re-attached without duplicates');
  });

  test('the coordinator killed in the middle of creates: each pod reaches RUNNING exactly once', async () => {
    // Kill at several points of the create path: right after the 2xx, and a little later.
    const delays = [0, 20, 60, 150];
    for (const [i, delay] of delays.entries()) {
      const podId = `midcreate${i}`;
      const r = await s.api('POST', '/v3/pods', { body: { pod_id: podId, image: TEST_IMAGE } });
      assert.equal(r.status, 200);
      await new Promise((res) => setTimeout(res, delay));
      await s.coordinator.kill('SIGKILL');
      s.coordinator.start();
      await waitFor('the coordinator to answer again', async () => (await s.api('GET', '/v3/pods/healthcheck', { token: null })).status === 200);
    }
    for (const [i] of delays.entries()) {
      const podId = `midcreate${i}`;
      const pod = await s.waitStatus(podId, 'RUNNING');
      assert.equal((await s.containers(podId)).length, 1, `${podId} has exactly one container`);
      assert.equal((await s.viaCaddy(`${podId}.pods.${s.tenant}.${s.baseDomain}`)).status, 200);
      const info = await docker('GET', `/containers/${(await s.containers(podId))[0]}/json`);
      assert.equal(info.Id.slice(0, 12), pod.status_container.container_id);
    }
  });

  test('the agent killed right after a create: the pod reaches RUNNING once the agent is back', async () => {
    await s.agent.kill('SIGKILL');
    const r = await s.api('POST', '/v3/pods', { body: { pod_id: 'whileaway', image: TEST_IMAGE } });
    assert.equal(r.status, 200);
    await new Promise((res) => setTimeout(res, 300));
    s.agent.start();
    await s.waitStatus('whileaway', 'RUNNING');
    assert.equal((await s.containers('whileaway')).length, 1);
  });

  test('a pod deleted while its agent is away is gone at once; its container is removed when the agent returns', async () => {
    await s.api('POST', '/v3/pods', { body: { pod_id: 'orphan', image: TEST_IMAGE } });
    await s.waitStatus('orphan', 'RUNNING');
    await s.agent.kill('SIGKILL');
    await waitFor('the node to be unreachable', async () => (await s.api('GET', '/v3/pods/orphan')).body.result.status_container.node_reachable === false);
    assert.equal((await s.api('DELETE', '/v3/pods/orphan')).status, 200);
    await waitFor('the pod to be gone', async () => (await s.api('GET', '/v3/pods/orphan')).status === 404);
    assert.equal((await s.containers('orphan')).length, 1, 'the container outlives its agent');
    s.agent.start();
    await waitFor('the orphan to be removed', async () => (await s.containers('orphan')).length === 0);
    // Its route goes with the re-sync that ends the agent's reconnect.
    await waitFor('the route to be gone', async () => (await s.viaCaddy(`orphan.pods.${s.tenant}.${s.baseDomain}`)).status === 404);
  });

  test('a container killed outside the service shows ERROR with its exit code', async () => {
    await s.api('POST', '/v3/pods', { body: { pod_id: 'killed', image: TEST_IMAGE } });
    await s.waitStatus('killed', 'RUNNING');
    const [id] = await s.containers('killed');
    await docker('POST', `/containers/${id}/kill?signal=KILL`);
    const pod = await s.waitStatus('killed', 'ERROR');
    assert.equal(pod.status_container.exit_code, 137);
    assert.match(pod.status_container.message, /exited with code 137/);
  });

  test('Caddy restarted with an empty config: the routes are back within seconds', async () => {
    const host = `steady.pods.${s.tenant}.${s.baseDomain}`;
    assert.equal((await s.viaCaddy(host)).status, 200);
    await s.caddy.restart();
    await waitFor('the route to be re-synced', async () => (await s.viaCaddy(host)).status === 200, 15_000);
  });

  test('a pod acknowledged with 2xx survives kill -9 of Redis', async () => {
    const r = await s.api('POST', '/v3/pods', { body: { pod_id: 'durable', image: TEST_IMAGE, description: 'keep me' } });
    assert.equal(r.status, 200);
    await s.redis.crashAndRestart();
    const got = await waitFor('the coordinator to read the pod back', async () => {
      const g = await s.api('GET', '/v3/pods/durable');
      return g.status === 200 ? g.body.result : null;
    });
    assert.equal(got.description, 'keep me');
    await s.waitStatus('durable', 'RUNNING');
  });
});
