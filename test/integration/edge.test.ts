// The edge follows the change stream route by route, against a real Caddy and a real Redis: a
// pod's change reaches the edge as that pod's routes alone (no whole config loaded), what users
// see through the edge follows, other pods' routes stay, and an edge that restarted empty is
// loaded again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { EdgeRouter } from '../../coordinator/edge.js';
import { ChangeFeed } from '../../coordinator/store/changes.js';
import { NodeStore } from '../../coordinator/store/nodes.js';
import { PodStore } from '../../coordinator/store/pods.js';
import { connectRedis, type Redis } from '../../coordinator/store/redis.js';
import { loadCoordinatorConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import { PodSpec, RESOURCE_DEFAULTS, podHost, type Desired } from '../../shared/pod.js';
import { skipWithoutCaddy, startCaddy, type RunningCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const TENANT = 'edge';
const BASE_DOMAIN = 'example.test';

describe('the edge, route by route', { skip: skipWithoutCaddy() }, () => {
  let redis: TestRedis;
  let client: Redis;
  let caddy: RunningCaddy;
  let host: Server;
  let pods: PodStore;
  let edge: EdgeRouter;
  let feed: ChangeFeed;
  const log = createLogger('test', 'silent');

  before(async () => {
    redis = await startRedis();
    caddy = await startCaddy();
    client = await connectRedis(redis.url, log);
    // The host's Caddy, as the edge sees it: it says which pod was asked for.
    host = createServer((req, res) => res.end(`host a serves ${req.headers.host}`));
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
    const prefix = `edge-${randomBytes(3).toString('hex')}:`;
    const config = loadCoordinatorConfig({
      PODS_NODE_TOKENS: 'a=node-token-0123456789abcdef',
      PODS_ADMIN_TOKEN: 'admin-token-0123456789abcdef',
      PODS_REDIS_URL: redis.url,
      PODS_REDIS_PREFIX: prefix,
      PODS_BASE_DOMAIN: BASE_DOMAIN,
      PODS_EDGE_ADMIN_URL: caddy.adminUrl,
      PODS_EDGE_HTTP_LISTEN: caddy.httpListen,
      PODS_EDGE_TLS_LISTEN: `127.0.0.1:${await freePort()}`,
    });
    pods = new PodStore(client, prefix, { origin: 'test/1' });
    const nodes = new NodeStore(client, prefix);
    const now = new Date().toISOString();
    const hostAddr = `127.0.0.1:${(host.address() as AddressInfo).port}`;
    await nodes.put({
      nodeId: 'a', capacity: { cpuMilli: 8000, memoryMb: 8192 }, dockerVersion: 'x', agentVersion: 'x', connectedAt: now, lastHeartbeat: now,
      running: 0, disconnectedAt: null, endpoints: { http: hostAddr, tls: '127.0.0.1:1', tcpHost: '127.0.0.1' },
    });
    edge = new EdgeRouter({ config, log, pods, nodes });
    feed = new ChangeFeed(client, prefix, { consumer: 'test', log, onChanges: (c) => edge.onChanges(c), onGap: () => edge.resync(), blockMs: 500 });
    await feed.start();
    edge.start();
  });

  after(async () => {
    edge?.stop();
    await feed?.stop();
    host?.close();
    client?.destroy();
    await caddy?.stop();
    await redis?.stop();
  });

  function spec(podId: string): PodSpec {
    const now = new Date().toISOString();
    return PodSpec.parse({
      pod_id: podId, tenant: TENANT, owner: 'alice', image: 'pods-test/httpd', template: '', description: '', environment_variables: {},
      volume_mounts: {}, time_to_stop_default: -1, networking: { default: { protocol: 'http', port: 5000 } },
      resources: { ...RESOURCE_DEFAULTS }, compute_queue: 'default', creation_ts: now, update_ts: now,
    });
  }

  async function runPod(podId: string): Promise<void> {
    const desired: Desired = { status_requested: 'ON', uid: randomBytes(4).toString('hex'), generation: 1, deleting: false, start_instance_ts: null, time_to_stop_ts: null };
    assert.ok(await pods.create(spec(podId), desired));
    assert.equal((await pods.place(TENANT, podId, { nodeId: 'a', at: new Date().toISOString() }, { cpuMilli: 8000, memoryMb: 8192 })).result, 'placed');
  }

  /** What a user gets from the edge for a pod's URL. */
  async function through(podId: string): Promise<{ status: number; text: string }> {
    const res = await request(`${caddy.httpUrl}/`, { headers: { host: podHost(podId, 'default', TENANT, BASE_DOMAIN) }, reset: true });
    return { status: res.statusCode, text: await res.body.text() };
  }

  const served = (podId: string) => async () => (await through(podId)).text === `host a serves ${podHost(podId, 'default', TENANT, BASE_DOMAIN)}`;

  test('a pod placed is served through the edge, by a route added alone', async () => {
    await runPod('one');
    await waitFor('pod one through the edge', served('one'), 10_000, 50);
    const loads = edge.stats.loads;
    await runPod('two');
    await waitFor('pod two through the edge', served('two'), 10_000, 50);
    assert.ok(await served('one')(), 'pod one still served');
    assert.equal(edge.stats.loads, loads, 'no whole config was loaded for one pod');
    assert.ok(edge.stats.steps >= 1);
  });

  test('a pod stopped leaves the edge (404) while the others stay', async () => {
    const steps = edge.stats.steps;
    const loads = edge.stats.loads;
    await pods.update(TENANT, 'one', (cur) => ({ desired: { ...cur.desired, status_requested: 'OFF' } }));
    await waitFor('pod one to leave the edge', async () => (await through('one')).status === 404, 10_000, 50);
    assert.match((await through('one')).text, /^no pod is served at one\.pods\.edge\.example\.test/);
    assert.ok(await served('two')(), 'pod two still served');
    assert.equal(edge.stats.loads, loads);
    assert.equal(edge.stats.steps, steps + 1, 'one route removed');

    const rec = (await pods.get(TENANT, 'two'))!;
    await pods.delete(TENANT, 'two', rec.placement);
    await waitFor('pod two to leave the edge', async () => (await through('two')).status === 404, 10_000, 50);
  });

  test('an edge that restarted empty is loaded again, whole', async () => {
    await runPod('three');
    await waitFor('pod three through the edge', served('three'), 10_000, 50);
    const loads = edge.stats.loads;
    await caddy.restart();
    await waitFor('pod three through the edge again', served('three'), 15_000, 100);
    assert.ok(edge.stats.loads > loads);
  });
});
