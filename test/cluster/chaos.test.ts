// Chaos on the cluster: faults injected one after another while pods run and requests keep
// arriving through the edge. After each fault: no pod lost, no duplicate container, every URL
// answers again. Ends with a summary line of faults injected and survived.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutCluster, startCluster, waitFor, TEST_IMAGE, type Cluster } from './harness.js';

const PODS = ['chaos1', 'chaos2', 'chaos3', 'chaos4', 'chaos5', 'chaos6'];

describe('cluster chaos', { skip: skipWithoutCluster() }, () => {
  let c: Cluster;
  const faults: Array<{ name: string; survived: boolean }> = [];
  // Requests through the edge during the faults: a bounded loop that stops by itself.
  const traffic = { sent: 0, ok: 0, stop: false };
  let loop: Promise<void> = Promise.resolve();

  before(async () => {
    c = await startCluster({ hosts: 3, coordinatorEnv: { PODS_LOST_AFTER_S: '4' } });
    for (const id of PODS) assert.equal((await c.api('POST', '/v3/pods', { body: { pod_id: id, image: TEST_IMAGE } })).status, 200);
    for (const id of PODS) await c.waitStatus(id, 'RUNNING', 60_000);
    const deadline = Date.now() + 10 * 60_000;
    loop = (async () => {
      for (let i = 0; !traffic.stop && Date.now() < deadline; i++) {
        traffic.sent++;
        const r = await c.viaEdge(PODS[i % PODS.length]!, 2000).catch(() => null);
        if (r?.status === 200) traffic.ok++;
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
  });
  after(async () => {
    traffic.stop = true;
    await loop;
    const survived = faults.filter((f) => f.survived).length;
    console.log(`chaos: ${faults.length} faults injected, ${survived} survived; ${traffic.ok}/${traffic.sent} requests through the edge answered 200 during the run`);
    await c?.stop();
  });

  /** Every pod RUNNING, one container each across all hosts, and served through the edge. */
  async function healthy(): Promise<void> {
    for (const id of PODS) {
      await waitFor(`${id} to be RUNNING and served through the edge`, async () => {
        const p = await c.pod(id);
        return p.status === 'RUNNING' && (await c.viaEdge(id, 2000).catch(() => null))?.status === 200;
      }, 60_000, 200);
      await waitFor(`${id} to have exactly one container`, async () => (await c.containersOf(id)).length === 1, 30_000, 200);
    }
  }

  const fault = (name: string, inject: () => Promise<void>) =>
    test(name, async () => {
      const entry = { name, survived: false };
      faults.push(entry);
      try {
        await inject();
        await healthy();
        entry.survived = true;
      } catch (err) {
        if (err instanceof Error) err.message += `\n${c.diagnostics()}`;
        throw err;
      }
    });

  fault('kill -9 of an agent', async () => {
    const h = c.hosts[0]!;
    await h.agent.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    await c.startAgent(h);
  });

  fault('kill -9 of a dockerd', async () => {
    const h = c.hosts[1]!;
    await h.killDockerd('SIGKILL');
    await h.startDockerd();
  });

  fault('a host cut off past lost_after, then back', async () => {
    const h = c.hosts[2]!;
    const before = (await Promise.all(PODS.map((id) => c.pod(id)))).filter((p) => p.status_container.node === h.nodeId).map((p) => p.pod_id as string);
    await h.cutLink();
    try {
      // Its pods start elsewhere once the host is lost.
      for (const id of before) {
        await waitFor(`${id} to move off ${h.nodeId}`, async () => {
          const p = await c.pod(id);
          return p.status === 'RUNNING' && p.status_container.node !== h.nodeId;
        }, 60_000, 200);
      }
    } finally {
      await h.restoreLink();
    }
  });

  fault('kill -9 of the coordinator', async () => {
    await c.coordinator.kill('SIGKILL');
    c.coordinator.start();
    await waitFor('the coordinator to answer', async () => (await c.api('GET', '/v3/pods/healthcheck', { token: null }).catch(() => null))?.status === 200, 30_000);
  });

  fault('kill -9 of Redis', async () => {
    await c.redis.crashAndRestart();
  });

  fault('the edge Caddy restarted empty', async () => {
    if (!c.edge) return;
    await c.edge.caddy.restart();
  });

  test('every fault was survived', () => {
    assert.deepEqual(faults.filter((f) => !f.survived).map((f) => f.name), []);
    assert.ok(traffic.sent > 0);
  });
});

