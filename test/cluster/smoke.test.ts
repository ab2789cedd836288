// The cluster harness end to end: three hosts (network namespaces, a dockerd, a Caddy and an
// agent each), the coordinator, Redis and the edge in the root namespace. Agents connect, pods
// spread over the hosts and answer through their host's Caddy and through the edge; an agent
// killed with -9 and started again adopts its containers instead of making new ones; a cut link
// heals.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutCluster, withDiagnostics, startCluster, waitFor, TEST_IMAGE, type Cluster } from './harness.js';

const PODS = ['smoke1', 'smoke2', 'smoke3', 'smoke4', 'smoke5', 'smoke6'];

describe('cluster smoke', { skip: skipWithoutCluster() }, () => {
  let c: Cluster;

  before(async () => {
    c = await startCluster({ hosts: 3 });
    const t = c.timings;
    console.log(
      `cluster up: hosts ${ms(t.hostsUpMs)}, coordinator ${ms(t.coordinatorReadyMs)}, ` +
        `caddies ${ms(t.caddiesReadyMs)}, agents connected ${ms(t.agentsConnectedMs)}`,
    );
  });
  after(async () => {
    await c?.stop();
  });

  /** A failing test says what the coordinator and the agents were doing. */
  const diag = (fn: () => Promise<void>) => withDiagnostics(() => c, fn);

  /** pod id -> the node that runs it (status_container.node). */
  const placement = async () => {
    const out: Record<string, string> = {};
    for (const id of PODS) out[id] = (await c.pod(id)).status_container.node;
    return out;
  };

  /** Every pod's containers on every host: exactly one each, running, on the node the API names. */
  const assertOneContainerEach = async (where: Record<string, string>) => {
    for (const id of PODS) {
      const all = await c.containersOf(id);
      assert.equal(all.length, 1, `pod ${id}: expected one container, found ${JSON.stringify(all)}`);
      assert.equal(all[0].node, where[id], `pod ${id}: container on ${all[0].node}, API says ${where[id]}`);
      assert.equal(all[0].state, 'running', `pod ${id}: container ${all[0].state}`);
    }
  };

  /** Each pod answers through the Caddy of the host it runs on, from the container that serves it. */
  const assertServed = async (where: Record<string, string>) => {
    for (const id of PODS) {
      const h = c.host(where[id]);
      const [ctr] = await h.containers({ 'pods.pod_id': id });
      const r = await h.viaCaddy(c.podHost(id));
      assert.equal(r.status, 200, `pod ${id} via ${h.nodeId}'s Caddy: ${r.status} ${r.body}`);
      assert.equal(r.body.trim(), `hello from ${ctr.Id.slice(0, 12)}`);
      // The edge routes to the same container (it is programmed a moment after RUNNING).
      const e = await waitFor(`${id} through the edge`, async () => {
        const x = await c.viaEdge(id);
        return x.status === 200 ? x : null;
      }, 10_000);
      assert.equal(e.body.trim(), `hello from ${ctr.Id.slice(0, 12)}`);
    }
  };

  test('every agent connects to the coordinator on the bridge', diag(async () => {
    for (const h of c.hosts) assert.ok(c.connects(h.nodeId) >= 1, `${h.nodeId} never connected`);
    // The nodes API, where the coordinator has it, lists them ready.
    const r = await c.api('GET', '/v3/admin/nodes');
    if (r.status === 200) {
      const states = Object.fromEntries((r.body.result as Array<{ node_id: string; state: string }>).map((n) => [n.node_id, n.state]));
      for (const h of c.hosts) assert.equal(states[h.nodeId], 'ready', `nodes API: ${JSON.stringify(r.body.result)}`);
    }
  }));

  test('pods spread over the hosts and answer through their host\'s Caddy and the edge', diag(async () => {
    const t0 = performance.now();
    for (const id of PODS) {
      const r = await c.api('POST', '/v3/pods', { body: { pod_id: id, image: TEST_IMAGE } });
      assert.equal(r.status, 200, `create ${id}: ${r.body.message}`);
    }
    for (const id of PODS) await c.waitStatus(id, 'RUNNING');
    console.log(`${PODS.length} pods RUNNING ${ms(performance.now() - t0)} after the first create`);
    const where = await placement();
    console.log(`placement: ${JSON.stringify(where)}`);
    for (const id of PODS) assert.ok(c.hosts.some((h) => h.nodeId === where[id]), `pod ${id} on unknown node ${where[id]}`);
    assert.equal(new Set(Object.values(where)).size, c.hosts.length, `pods not spread over every host: ${JSON.stringify(where)}`);
    await assertOneContainerEach(where);
    await assertServed(where);
  }));

  test('kill -9 of an agent: pods keep serving; on restart it adopts them, no duplicates', diag(async () => {
    const where = await placement();
    const h = c.host(where[PODS[0]]);
    const before = (await h.containers({ 'pods.node': h.nodeId })).map((x) => x.Id).sort();
    assert.ok(before.length >= 1);

    const connects = c.connects(h.nodeId);
    await h.agent.kill('SIGKILL');
    await assertServed(where); // Caddy and the containers do not need the agent
    h.agent.start();
    await c.waitConnected(h, connects + 1);
    // A few reconcile rounds (250 ms each) for anything the restart might wrongly trigger.
    await new Promise((r) => setTimeout(r, 3000));

    const afterIds = (await h.containers({ 'pods.node': h.nodeId })).map((x) => x.Id).sort();
    assert.deepEqual(afterIds, before, `${h.nodeId}'s containers changed across the agent restart`);
    for (const id of PODS) assert.equal((await c.pod(id)).status, 'RUNNING');
    assert.deepEqual(await placement(), where);
    await assertOneContainerEach(where);
    await assertServed(where);
  }));

  test('a cut link: the host is unreachable, its agent reconnects once the link is back', diag(async () => {
    const where = await placement();
    const h = c.host(where[PODS[1]]);
    const connects = c.connects(h.nodeId);
    await h.cutLink();
    try {
      await assert.rejects(h.viaCaddy(c.podHost(PODS[1]), 1000), 'the host still answers with its link cut');
      // The other hosts are untouched.
      for (const id of PODS.filter((p) => where[p] !== h.nodeId)) {
        assert.equal((await c.host(where[id]).viaCaddy(c.podHost(id))).status, 200);
      }
      // The coordinator notices (ping every 1 s) before the link comes back.
      await waitFor(`the coordinator to see ${h.nodeId} go`, async () => c.coordinator.count('agent disconnected', { nodeId: h.nodeId }) > 0, 15_000);
    } finally {
      await h.restoreLink();
    }
    await c.waitConnected(h, connects + 1, 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(await placement(), where);
    await assertOneContainerEach(where);
    await assertServed(where);
  }));

  test('dockerd killed and restarted on a host: its pods keep serving, stay RUNNING, and their logs go on', diag(async () => {
    const where = await placement();
    const h = c.host(where[PODS[2]]);
    const mine = PODS.filter((p) => where[p] === h.nodeId);
    await h.killDockerd('SIGKILL');
    await h.startDockerd();
    // The agent notices docker came back and follows every pod again.
    await waitFor(`the agent on ${h.nodeId} to re-check its pods`, async () => (h.agent?.count('docker is back; checking every pod') ?? 0) > 0, 30_000);
    for (const id of mine) {
      await waitFor(`${id} to be RUNNING and served`, async () => {
        const pod = (await c.api('GET', `/v3/pods/${id}`)).body.result;
        return pod.status === 'RUNNING' && (await h.viaCaddy(c.podHost(id))).status === 200;
      }, 30_000);
    }
    await assertOneContainerEach(await placement());
    const logs = (await c.api('GET', `/v3/pods/${mine[0]}/logs`)).body.result.logs as string;
    assert.match(logs, /pod starting/, 'the log was read again from the start');
  }));
});

function ms(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${Math.round(n)} ms`;
}
