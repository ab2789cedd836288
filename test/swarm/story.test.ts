// The Swarm backend end to end (PODS_BACKEND=swarm): three hosts joined into one Swarm
// (ops/cluster/swarm.sh; host 1 the manager), an agent and a Caddy on each, the coordinator,
// Redis and the edge in the root namespace. A pod's story (create, RUNNING, its URL through the
// edge, logs, stop, start, delete), pods placed across the nodes by Swarm, a pod that fits
// nowhere waiting with Swarm's reason, a drained node, a node cut off whose pod starts on
// another node, and the tapipy quickstart.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { python, runToEnd } from '../helpers/python.js';
import { skipWithoutCluster, withDiagnostics, startCluster, SWARM_LAYOUT, waitFor, TEST_IMAGE, type Cluster } from '../cluster/harness.js';

describe('pods on a Docker Swarm', { skip: skipWithoutCluster() }, () => {
  let c: Cluster;

  before(async () => {
    c = await startCluster({
      hosts: 3,
      layout: SWARM_LAYOUT,
      // A node cut off is lost after 20 s (Swarm calls it down after ~15 s without heartbeats).
      coordinatorEnv: { PODS_BACKEND: 'swarm', PODS_SWARM_DOCKER_SOCKET: `${SWARM_LAYOUT.run}/h1/docker.sock`, PODS_SWARM_IMAGES: 'local', PODS_LOST_AFTER_S: '20' },
      agentEnv: { PODS_BACKEND: 'swarm' },
    });
  });
  after(async () => {
    await c?.stop();
  });

  /** A failing test says what the coordinator and the agents were doing. */
  const diag = (fn: () => Promise<void>) => withDiagnostics(() => c, fn);

  const create = async (podId: string, extra: object = {}) => {
    const r = await c.api('POST', '/v3/pods', { body: { pod_id: podId, image: TEST_IMAGE, ...extra } });
    assert.equal(r.status, 200, `create ${podId}: ${r.body.message}`);
  };

  /** The running containers of a pod, on every host. */
  const running = async (podId: string) => (await c.containersOf(podId)).filter((x) => x.state === 'running');

  /** The pod answers through the edge from the one container that runs it, on the node the API names. */
  const assertServed = async (podId: string) => {
    const pod = await c.waitStatus(podId, 'RUNNING', 60_000);
    const node = pod.status_container.node as string;
    const mine = await waitFor(`${podId}'s one running container`, async () => {
      const xs = await running(podId);
      return xs.length === 1 ? xs : null;
    }, 30_000);
    assert.equal(mine[0]!.node, node, `pod ${podId} runs on ${mine[0]!.node}, the API says ${node}`);
    let last = '';
    const r = await waitFor(`${podId} through the edge`, async () => {
      const x = await c.viaEdge(podId);
      last = `${x.status} ${x.body.slice(0, 200)}`;
      return x.status === 200 && x.body.includes(mine[0]!.id.slice(0, 12)) ? x : null;
    }, 20_000).catch(async (err: Error) => {
      const via = await c.host(node).viaCaddy(c.podHost(podId)).then((x) => `${x.status} ${x.body.slice(0, 200)}`, (e: Error) => e.message);
      throw new Error(`${err.message}; the edge last answered ${last}; ${node}'s Caddy answers ${via}; container ${mine[0]!.id.slice(0, 12)}`);
    });
    assert.equal(r.body.trim(), `hello from ${mine[0]!.id.slice(0, 12)}`);
    return node;
  };

  test('a pod\'s story: create, RUNNING, URL through the edge, logs, stop, start, delete', diag(async () => {
    await create('story');
    const first = await assertServed('story');
    const services = await c.hosts[0]!.docker('GET', '/services');
    const mine = services.filter((s: any) => s.Spec.Labels['pods.pod_id'] === 'story');
    assert.equal(mine.length, 1, 'one service per pod');
    assert.equal(mine[0].Spec.Labels['pods.tenant'], c.tenant);
    assert.equal(mine[0].Spec.EndpointSpec.Mode, 'dnsrr');
    assert.equal(mine[0].Spec.TaskTemplate.ContainerSpec.User, '1000:1000');
    assert.deepEqual(mine[0].Spec.TaskTemplate.ContainerSpec.CapabilityDrop, ['ALL']);
    const logs = await waitFor('the pod\'s log', async () => {
      const l = (await c.api('GET', '/v3/pods/story/logs')).body.result.logs as string;
      return /pod starting/.test(l) ? l : null;
    }, 15_000);
    assert.match(logs, /pod starting/);
    const exec = await c.api('POST', '/v3/pods/story/exec', { body: { commands: ['echo hello from $(hostname)'] } });
    assert.equal(exec.status, 200, `exec: ${exec.body.message}`);
    const [ctr] = await running('story');
    assert.equal(exec.body.result.execution_results[0].stdout.trim(), `hello from ${ctr!.id.slice(0, 12)}`, 'exec runs in the task\'s container');

    assert.equal((await c.api('GET', '/v3/pods/story/stop')).status, 200);
    await c.waitStatus('story', 'STOPPED', 30_000);
    await waitFor('its container to stop', async () => (await running('story')).length === 0, 30_000);
    const scaled = await c.hosts[0]!.docker('GET', `/services/${mine[0].ID}`);
    assert.equal(scaled.Spec.Mode.Replicated.Replicas, 0, 'stop scales the service to 0');

    assert.equal((await c.api('GET', '/v3/pods/story/start')).status, 200);
    const again = await assertServed('story');
    console.log(`story: first on ${first}, after a stop and start on ${again}`);

    assert.equal((await c.api('DELETE', '/v3/pods/story')).status, 200);
    await waitFor('the pod to be gone', async () => (await c.api('GET', '/v3/pods/story')).status === 404, 30_000);
    await waitFor('its service to be removed', async () => !(await c.hosts[0]!.docker('GET', '/services')).some((s: any) => s.Spec.Labels['pods.pod_id'] === 'story'), 30_000);
  }));

  test('Swarm places pods across the nodes', diag(async () => {
    const ids = ['spread1', 'spread2', 'spread3'];
    for (const id of ids) await create(id);
    const where = new Set<string>();
    for (const id of ids) where.add(await assertServed(id));
    console.log(`spread over ${[...where].join(', ')}`);
    assert.ok(where.size >= 2, `three pods all on ${[...where]}`);
  }));

  test('a pod that fits on no node waits, REQUESTED, with Swarm\'s reason', diag(async () => {
    await create('huge', { resources: { cpu_request: 8000, cpu_limit: 8000, mem_request: 1024, mem_limit: 2048 } });
    const pod = await waitFor('Swarm\'s reason', async () => {
      const p = await c.pod('huge');
      return /no suitable node/.test(p.status_container.message) ? p : null;
    }, 30_000);
    assert.equal(pod.status, 'REQUESTED');
    assert.match(pod.status_container.message, /Pod is waiting for a host: Swarm: no suitable node/);
    assert.equal((await c.api('DELETE', '/v3/pods/huge')).status, 200);
  }));

  test('a task that fails before its container runs: the pod is ERROR with Swarm\'s reason', diag(async () => {
    // Allowed, but on no node: each node looks for it in a registry (none answers here) and gives up.
    const image = 'pods-test/absent:latest';
    assert.equal((await c.api('POST', '/v3/pods/images', { body: { image, description: 'an image no node has' } })).status, 200);
    const r = await c.api('POST', '/v3/pods', { body: { pod_id: 'noimage', image } });
    assert.equal(r.status, 200, r.body.message);
    const pod = await c.waitStatus('noimage', 'ERROR', 120_000);
    assert.match(pod.status_container.message, /^Swarm: /, JSON.stringify(pod.status_container));
    console.log(`noimage: ${pod.status_container.message}`);
    assert.equal((await c.api('DELETE', '/v3/pods/noimage')).status, 200);
  }));

  test('a drained node\'s pod runs elsewhere; the node takes pods again after uncordon', diag(async () => {
    await create('drainme');
    const from = await assertServed('drainme');
    assert.equal((await c.api('POST', `/v3/admin/nodes/${from}/drain`)).status, 200);
    try {
      const to = await waitFor('the pod on another node', async () => {
        const p = await c.pod('drainme');
        return p.status === 'RUNNING' && p.status_container.node !== from ? p.status_container.node : null;
      }, 60_000);
      assert.equal(await assertServed('drainme'), to);
      const node = (await c.hosts[0]!.docker('GET', '/nodes')).find((n: any) => n.Spec.Labels['pods.node'] === from);
      assert.equal(node.Spec.Availability, 'drain');
    } finally {
      assert.equal((await c.api('POST', `/v3/admin/nodes/${from}/uncordon`)).status, 200);
    }
    await waitFor('the node active again', async () => (await c.hosts[0]!.docker('GET', '/nodes')).find((n: any) => n.Spec.Labels['pods.node'] === from).Spec.Availability === 'active', 10_000);
  }));

  test('a node cut off: its pod starts on another node and the edge follows', diag(async () => {
    await create('cutoff');
    let from = await assertServed('cutoff');
    if (from === 'h1') {
      // The manager cut off would leave no Swarm to ask: move the pod off it first.
      await c.api('POST', '/v3/admin/nodes/h1/drain');
      from = await waitFor('the pod off the manager', async () => {
        const p = await c.pod('cutoff');
        return p.status === 'RUNNING' && p.status_container.node !== 'h1' ? p.status_container.node : null;
      }, 60_000);
      await c.api('POST', '/v3/admin/nodes/h1/uncordon');
    }
    const h = c.host(from);
    await h.cutLink();
    try {
      // Swarm's update waits for the old task to stop, or a minute when its node does not answer.
      let last = '';
      const to = await waitFor('the pod RUNNING on another node', async () => {
        const p = await c.pod('cutoff');
        last = JSON.stringify({ status: p.status, status_container: p.status_container });
        return p.status === 'RUNNING' && p.status_container.node !== from ? p.status_container.node : null;
      }, 150_000).catch((err: Error) => {
        throw new Error(`${err.message}; last seen ${last}`);
      });
      assert.equal(await assertServedOn('cutoff', to), to);
      // Moved by Swarm (its node is down after ~15 s) or by the coordinator (PODS_LOST_AFTER_S), whichever is first.
      const events = (await c.api('GET', '/v3/pods/cutoff/events')).body.result as Array<{ type: string; node?: string }>;
      assert.ok(events.some((e) => e.type === 'moved'), `no move in the pod's events: ${JSON.stringify(events)}`);
    } finally {
      await h.restoreLink();
    }
  }));

  test('tapipy: the quickstart (test/compat/test_quickstart.py) as with the default backend', diag(async () => {
    const py = await python();
    const users = { alice: `pw-${randomBytes(12).toString('hex')}`, bob: `pw-${randomBytes(12).toString('hex')}` };
    for (const [username, password] of Object.entries(users)) {
      const r = await c.api('POST', '/v3/admin/users', { body: { tenant_id: c.tenant, username, password, admin: false } });
      assert.equal(r.status, 200, `add user ${username}: ${r.body.message}`);
    }
    const r = await runToEnd(py, ['-m', 'pytest', 'test/compat/test_quickstart.py', '-q', '-p', 'no:cacheprovider', '--color=no', '--tb=short', '-rfEXx'], {
      PODS_COMPAT_STRICT: '1',
      PODS_BASE_URL: c.apiUrl,
      PODS_TENANT_ID: c.tenant,
      PODS_USERNAME: 'alice',
      PODS_PASSWORD: users.alice,
      PODS_USERNAME2: 'bob',
      PODS_PASSWORD2: users.bob,
      PODS_HTTP_URL: c.edge!.httpUrl,
      PODS_BASE_DOMAIN: c.baseDomain,
      PODS_IMAGE: TEST_IMAGE,
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
    }, 10 * 60_000);
    assert.equal(r.code, 0, `pytest exited ${r.code}:\n${r.output}`);
    assert.match(r.output.trim().split('\n').at(-1) ?? '', /^\d+ passed/, r.output);
  }));

  /** Served through the edge by the container on `node` (the cut-off node's container cannot be listed). */
  const assertServedOn = async (podId: string, node: string) => {
    const h = c.host(node);
    const ctr = await waitFor(`${podId}'s container on ${node}`, async () => (await h.containers({ 'pods.pod_id': podId, 'pods.tenant': c.tenant })).find((x) => x.State === 'running') ?? null, 30_000);
    await waitFor(`${podId} through the edge from ${node}`, async () => {
      const x = await c.viaEdge(podId);
      return x.status === 200 && x.body.trim() === `hello from ${ctr.Id.slice(0, 12)}`;
    }, 20_000);
    return node;
  };
});
