// A full host, end to end: the room a deleted pod held is free as soon as its container is gone,
// and a restart says RESTART until its new instance runs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { waitFor } from '../helpers/procs.js';
import { startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

// Backstops: every wait below has its own deadline and says what it waited for; these end a
// hook or test that is stuck anywhere else long before CI's time limit.
const HOOK = { timeout: 120_000 };
const TEST = { timeout: 180_000 };

describe('a host with room for four pods', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  before(async () => {
    // 1000m of CPU: four pods of the default 250m.
    // Placement is what is tested, not pod isolation: pods run even where another run's rules come first.
    s = await startStack({ coordinatorEnv: { PODS_NODE_MAX_CPU_MILLI: '1000' }, agentEnv: { PODS_POD_ISOLATION: 'best-effort' } });
  }, HOOK);
  after(async () => {
    await s?.stop();
  }, HOOK);

  const create = async (podId: string) => {
    const r = await s.api('POST', '/v3/pods', { body: { pod_id: podId, image: TEST_IMAGE } });
    assert.equal(r.status, 200, r.body.message);
  };

  test('a fifth pod waits, and runs as soon as a deleted pod\'s container is gone', TEST, async () => {
    for (const id of ['cap0', 'cap1', 'cap2', 'cap3']) await create(id);
    for (const id of ['cap0', 'cap1', 'cap2', 'cap3']) await s.waitStatus(id, 'RUNNING');
    await create('cap4');
    await waitFor('cap4 to say why it waits', async () => {
      const r = (await s.api('GET', '/v3/pods/cap4')).body.result;
      return r.status === 'REQUESTED' && /no host has room for 250m CPU/.test(r.status_container.message ?? '');
    });
    const node = (await s.api('GET', `/v3/admin/nodes/${s.nodeId}`)).body.result;
    assert.deepEqual(node.usage, { cpu_milli: 1000, memory_mb: 1024, pods: 4 });

    const asked = performance.now();
    const del = await s.api('DELETE', '/v3/pods/cap0');
    assert.equal(del.status, 200);
    assert.equal(del.body.result, '');
    // Gone for users at once, as in Tapis; its container is removed behind the scenes.
    assert.equal((await s.api('GET', '/v3/pods/cap0')).status, 404);
    assert.ok(!(await s.api('GET', '/v3/pods')).body.result.some((p: { pod_id: string }) => p.pod_id === 'cap0'));
    await s.waitStatus('cap4', 'RUNNING');
    const waited = performance.now() - asked;
    // The room is free in the step that deletes cap0 once its container is gone; the rest is cap4's own start.
    assert.ok(waited < 5_000, `cap4 ran ${Math.round(waited)} ms after cap0's DELETE`);
    assert.deepEqual(await s.containers('cap0'), []);
    const after = (await s.api('GET', `/v3/admin/nodes/${s.nodeId}`)).body.result;
    assert.deepEqual(after.usage, { cpu_milli: 1000, memory_mb: 1024, pods: 4 });
  });

  test('a restart shows status_requested RESTART until its new instance runs, then ON', TEST, async () => {
    const before = (await s.api('GET', '/v3/pods/cap1')).body.result;
    const r = await s.api('GET', '/v3/pods/cap1/restart');
    assert.equal(r.status, 200);
    assert.equal(r.body.result.status_requested, 'RESTART');
    const restarted = await waitFor('the new instance', async () => {
      const cur = (await s.api('GET', '/v3/pods/cap1')).body.result;
      if (cur.status !== 'RUNNING' || cur.status_container.container_id === before.status_container.container_id) {
        assert.equal(cur.status_requested, 'RESTART', `while ${cur.status}`);
        return null;
      }
      return cur;
    });
    const settled = await waitFor('status_requested ON', async () => {
      const cur = (await s.api('GET', '/v3/pods/cap1')).body.result;
      return cur.status_requested === 'ON' ? cur : null;
    }, 5_000, 20);
    assert.equal(settled.status_container.container_id, restarted.status_container.container_id);
    assert.equal((await s.containers('cap1')).length, 1);
    // A restarting pod still counts: nothing else took its room.
    assert.deepEqual((await s.api('GET', `/v3/admin/nodes/${s.nodeId}`)).body.result.usage, { cpu_milli: 1000, memory_mb: 1024, pods: 4 });
  });

  test('a pod made again under the id of one just deleted waits for its teardown, then runs alone', TEST, async () => {
    const old = (await s.api('GET', '/v3/pods/cap2')).body.result;
    assert.equal((await s.api('DELETE', '/v3/pods/cap2')).status, 200);
    await create('cap2');
    const again = await s.waitStatus('cap2', 'RUNNING');
    assert.notEqual(again.status_container.container_id, old.status_container.container_id);
    assert.equal((await s.containers('cap2')).length, 1);
  });
});
