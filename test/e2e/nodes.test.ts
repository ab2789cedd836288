// Several hosts: two agents (each with its own Caddy) on this machine's Docker engine, a real
// coordinator and Redis. Placement, cordon, drain, a lost node, node tokens.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { skipWithoutCaddy, startCaddy, type RunningCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { repoRoot, startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

describe('many hosts', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  let b: Awaited<ReturnType<Stack['addAgent']>>;
  let edge: RunningCaddy;

  before(async () => {
    // The edge in front of both hosts: one entry point, by Host (HTTP) and by SNI (TLS).
    edge = await startCaddy();
    s = await startStack({
      coordinatorEnv: {
        PODS_LOST_AFTER_S: '3',
        PODS_EDGE_ADMIN_URL: edge.adminUrl,
        PODS_EDGE_HTTP_LISTEN: edge.httpListen,
        PODS_EDGE_TLS_LISTEN: `127.0.0.1:${await freePort()}`,
        PODS_EDGE_TCP_HOST: '127.0.0.2',
      },
    });
    b = await s.addAgent('b');
  });
  after(async () => {
    await s?.stop();
    await edge?.stop();
  });
  const viaEdge = (podId: string) => waitFor(`${podId} through the edge`, () => serves(edge.httpUrl, podId), 15_000);

  const nodeOf = async (podId: string) => (await s.api('GET', `/v3/pods/${podId}`)).body.result.status_container.node as string;
  const nodes = async () => Object.fromEntries(((await s.api('GET', '/v3/admin/nodes')).body.result as Array<{ node_id: string }>).map((n) => [n.node_id, n])) as Record<string, any>;
  const serves = async (caddyUrl: string, podId: string) => {
    const r = await request(`${caddyUrl}/`, { headers: { host: `${podId}.pods.${s.tenant}.${s.baseDomain}` } });
    return r.statusCode === 200 && (await r.body.text()).startsWith('hello from');
  };
  const all = async (podId: string) => [...(await s.containers(podId)), ...(await s.containers(podId, b.nodeId))];

  test('the nodes API lists both hosts with capacity and usage; only site admins see it', async () => {
    const n = await nodes();
    assert.equal(n[s.nodeId].state, 'ready');
    assert.equal(n[b.nodeId].state, 'ready');
    assert.ok(n[s.nodeId].capacity.cpu_milli >= 1000);
    assert.equal(n[b.nodeId].usage.pods, 0);
    assert.equal((await s.api('GET', '/v3/admin/nodes', { token: s.userToken })).status, 403);
  });

  test('pods spread across hosts, each served by its own host', async () => {
    for (const id of ['spread1', 'spread2', 'spread3', 'spread4']) await s.api('POST', '/v3/pods', { body: { pod_id: id, image: TEST_IMAGE } });
    const placed: Record<string, string> = {};
    for (const id of ['spread1', 'spread2', 'spread3', 'spread4']) {
      await s.waitStatus(id, 'RUNNING');
      placed[id] = await nodeOf(id);
    }
    const counts = Object.values(placed).reduce<Record<string, number>>((m, n) => ({ ...m, [n]: (m[n] ?? 0) + 1 }), {});
    assert.deepEqual(Object.values(counts).sort(), [2, 2], JSON.stringify(placed));
    for (const [id, node] of Object.entries(placed)) {
      assert.ok(await serves(node === b.nodeId ? b.caddy.httpUrl : s.caddy.httpUrl, id), `${id} on ${node}`);
      assert.ok(await viaEdge(id), `${id} through the one entry point`);
    }
    const unknown = await request(`${edge.httpUrl}/`, { headers: { host: `nosuch.pods.${s.tenant}.${s.baseDomain}` } });
    assert.equal(unknown.statusCode, 404);
    await unknown.body.dump();
    assert.equal((await nodes())[b.nodeId].usage.pods, 2);
  });

  test('a cordoned host takes no new pods; with no host open the pod waits, saying why', async () => {
    assert.equal((await s.api('POST', `/v3/admin/nodes/${b.nodeId}/cordon`)).body.result.cordoned, true);
    for (const id of ['cord1', 'cord2']) {
      await s.api('POST', '/v3/pods', { body: { pod_id: id, image: TEST_IMAGE } });
      await s.waitStatus(id, 'RUNNING');
      assert.equal(await nodeOf(id), s.nodeId);
    }
    await s.api('POST', `/v3/admin/nodes/${s.nodeId}/cordon`);
    await s.api('POST', '/v3/pods', { body: { pod_id: 'waiting', image: TEST_IMAGE } });
    const waiting = await waitFor('a reason', async () => {
      const p = (await s.api('GET', '/v3/pods/waiting')).body.result;
      return p.status === 'REQUESTED' && /cordoned or draining/.test(p.status_container.message) ? p : null;
    });
    assert.equal(waiting.status, 'REQUESTED');
    const big = await s.api('POST', `/v3/admin/nodes/${b.nodeId}/uncordon`);
    assert.equal(big.body.result.cordoned, false);
    await s.waitStatus('waiting', 'RUNNING');
    assert.equal(await nodeOf('waiting'), b.nodeId);
    await s.api('POST', '/v3/pods', { body: { pod_id: 'toobig', image: TEST_IMAGE, resources: { cpu_request: 8000, cpu_limit: 8000 } } });
    await waitFor('no room', async () => /no host has room for 8000m CPU/.test((await s.api('GET', '/v3/pods/toobig')).body.result.status_container.message));
    await s.api('DELETE', '/v3/pods/toobig');
    await s.api('POST', `/v3/admin/nodes/${s.nodeId}/uncordon`);
  });

  test('draining a host moves its pods to the other, leaving one container each', async () => {
    const onB = [];
    for (const id of ['spread1', 'spread2', 'spread3', 'spread4', 'waiting']) if ((await nodeOf(id)) === b.nodeId) onB.push(id);
    assert.ok(onB.length > 0);
    await s.api('POST', `/v3/admin/nodes/${b.nodeId}/drain`);
    for (const id of onB) {
      await waitFor(`${id} to move`, async () => {
        const p = (await s.api('GET', `/v3/pods/${id}`)).body.result;
        return p.status === 'RUNNING' && p.status_container.node === s.nodeId;
      });
      await waitFor(`${id}'s old container to go`, async () => (await s.containers(id, b.nodeId)).length === 0);
      assert.equal((await all(id)).length, 1);
      assert.ok(await serves(s.caddy.httpUrl, id));
      assert.ok(await viaEdge(id), `${id} keeps its URL after the move`);
    }
    assert.equal((await nodes())[b.nodeId].usage.pods, 0);
    await s.api('POST', `/v3/admin/nodes/${b.nodeId}/uncordon`);
  });

  test('a host lost for lost_after: its pods start elsewhere; when it returns its stale containers go', async () => {
    await s.api('POST', `/v3/admin/nodes/${s.nodeId}/cordon`);
    // Small requests: the other host runs 7 pods (1750m) by now, and a 2-CPU host has 2000m.
    for (const id of ['lost1', 'lost2']) {
      await s.api('POST', '/v3/pods', { body: { pod_id: id, image: TEST_IMAGE, resources: { cpu_request: 100 } } });
      await s.waitStatus(id, 'RUNNING');
      assert.equal(await nodeOf(id), b.nodeId);
    }
    await s.api('POST', `/v3/admin/nodes/${s.nodeId}/uncordon`);
    await b.agent.kill('SIGKILL');
    const down = await waitFor('b to be unreachable', async () => ((await nodes())[b.nodeId].state !== 'ready' ? (await s.api('GET', '/v3/pods/lost1')).body.result : null));
    assert.equal(down.status_container.node_reachable, false);
    for (const id of ['lost1', 'lost2']) {
      await waitFor(`${id} to run elsewhere`, async () => {
        const p = (await s.api('GET', `/v3/pods/${id}`)).body.result;
        return p.status === 'RUNNING' && p.status_container.node === s.nodeId;
      });
      assert.ok(await serves(s.caddy.httpUrl, id));
      assert.ok(await viaEdge(id), `${id} keeps its URL after its host was lost`);
      assert.equal((await s.containers(id, b.nodeId)).length, 1, 'the old copy still runs on the unreachable host');
    }
    assert.equal((await nodes())[b.nodeId].state, 'lost');
    b.agent.start();
    for (const id of ['lost1', 'lost2']) {
      await waitFor(`${id}'s stale container to go`, async () => (await s.containers(id, b.nodeId)).length === 0);
      assert.equal((await all(id)).length, 1);
    }
    const logs = (await s.api('GET', '/v3/pods/lost1/logs')).body.result.action_logs as string[];
    assert.ok(logs.some((l) => /unreachable for over 3 s; starting instance 2 elsewhere/.test(l)));
  });

  test('node tokens: issued by an admin, bound to a node id, revoked at once', async () => {
    const issued = await s.api('POST', '/v3/admin/node-tokens', { body: { node_id: `${s.nodeId}-c` } });
    assert.equal(issued.status, 200);
    const { token, token_id } = issued.body.result;
    assert.match(token, /^pods-node-/);
    const listed = (await s.api('GET', '/v3/admin/node-tokens')).body.result;
    assert.ok(listed.some((t: { token_id: string }) => t.token_id === token_id));
    assert.equal(JSON.stringify(listed).includes(token), false, 'the secret is never listed');
    const c = await s.addAgent('c', { token });
    assert.equal((await nodes())[c.nodeId].state, 'ready');
    const revoked = await s.api('DELETE', `/v3/admin/node-tokens/${token_id}`);
    assert.match(revoked.body.result, /1 link\(s\) closed/);
    await waitFor('c to be cut off', async () => (await nodes())[c.nodeId].state !== 'ready');
    await waitFor('c to be refused on reconnect', async () => c.agent.output.includes('coordinator refused the node token'));
    assert.notEqual((await nodes())[c.nodeId].state, 'ready');
    await c.agent.kill('SIGTERM');
  });

  test('the CLI issues and revokes node tokens too; a CLI revocation cuts the link at the next heartbeat', async () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [path.join(repoRoot(), 'dist/coordinator/cli.js'), ...args], {
        env: { ...process.env, PODS_ADMIN_TOKEN: s.adminToken, PODS_NODE_TOKENS: `n1=${'x'.repeat(20)}`, PODS_REDIS_URL: s.redis.url, PODS_REDIS_PREFIX: s.redisPrefix },
        encoding: 'utf8',
      });
    const add = cli('node', 'token', 'add', '--node', `${s.nodeId}-d`);
    assert.equal(add.status, 0, add.stderr);
    const tokenId = /^token (\w+)/.exec(add.stdout)![1]!;
    const token = add.stdout.trim().split('\n').at(-1)!;
    const d = await s.addAgent('d', { token });
    assert.match(cli('node', 'list').stdout, new RegExp(`^${d.nodeId}\t`, 'm'));
    assert.equal(cli('node', 'token', 'revoke', tokenId).status, 0);
    await waitFor('d to be cut off', async () => (await nodes())[d.nodeId].state !== 'ready', 15_000);
    assert.equal(cli('node', 'token', 'revoke', tokenId).status, 1, 'revoking twice says it is not there');
    await d.agent.kill('SIGTERM');
  });
});
