// Quotas per user and per tenant, and lists a page at a time, against a real Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const CAROL = 'carol-token-0123456789abcdef';
const IMAGE = 'pods-test/httpd';

describe('quotas and pages', () => {
  let api: ApiServer;
  before(async () => {
    api = await startApiServer({
      PODS_ADMIN_TOKEN: ADMIN,
      PODS_TENANT: 'dev',
      PODS_REDIS_PREFIX: 'quota:',
      PODS_EXTRA_TOKENS: JSON.stringify([
        { token: ALICE, tenant: 'dev', username: 'alice' },
        { token: BOB, tenant: 'dev', username: 'bob' },
        { token: CAROL, tenant: 'dev', username: 'carol' },
      ]),
      PODS_QUOTAS: JSON.stringify({
        user: { pods: 2, running_pods: 1, volumes: 1, volume_mb: 100 },
        tenant: { pods: 5 },
        users: { 'dev/carol': { pods: 10, running_pods: 10, cpu_milli: 1000 } },
      }),
    });
    assert.equal((await call('POST', '/v3/pods/images', ADMIN, { image: IMAGE })).status, 200);
  });
  after(async () => {
    await api?.stop();
  });

  async function call(method: string, path: string, token: string, body?: unknown) {
    const res = await request(`${api.base}${path}`, {
      method: method as 'GET',
      headers: { 'x-tapis-token': token, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  }
  const pod = (token: string, pod_id: string, extra: Record<string, unknown> = {}) => call('POST', '/v3/pods', token, { pod_id, image: IMAGE, ...extra });
  const refused = async (p: ReturnType<typeof call>, quota: string) => {
    const r = await p;
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal(r.body.status, 'error');
    assert.match(r.body.message, new RegExp(`quota "${quota}"`));
  };

  test('a user past a pod, running-pod or volume quota gets a 403 naming it; stopping makes room', async () => {
    assert.equal((await pod(ALICE, 'alicepod1')).status, 200);
    await refused(pod(ALICE, 'alicepod2'), 'running_pods');
    assert.equal((await pod(ALICE, 'alicepod2', { status_requested: 'OFF' })).status, 200);
    await refused(pod(ALICE, 'alicepod3', { status_requested: 'OFF' }), 'pods');
    await refused(call('GET', '/v3/pods/alicepod2/start', ALICE), 'running_pods');
    assert.equal((await call('GET', '/v3/pods/alicepod1/stop', ALICE)).status, 200);
    assert.equal((await call('GET', '/v3/pods/alicepod2/start', ALICE)).status, 200);
    // Nothing refused was made.
    assert.equal((await call('GET', '/v3/pods/alicepod3', ALICE)).status, 404);

    assert.equal((await call('POST', '/v3/pods/volumes', ALICE, { volume_id: 'av1', size_limit: 50 })).status, 200);
    await refused(call('POST', '/v3/pods/volumes', ALICE, { volume_id: 'av2', size_limit: 10 }), 'volumes');
    await refused(call('POST', '/v3/pods/volumes', BOB, { volume_id: 'bv1', size_limit: 500 }), 'volume_mb');
  });

  test('a user override, CPU requested, and the tenant total', async () => {
    assert.equal((await pod(CAROL, 'carolpod1', { resources: { cpu_request: 500, cpu_limit: 1000 } })).status, 200);
    await refused(pod(CAROL, 'carolpod2', { resources: { cpu_request: 600, cpu_limit: 1000 } }), 'cpu_milli');
    assert.equal((await pod(CAROL, 'carolpod2', { resources: { cpu_request: 500, cpu_limit: 1000 } })).status, 200);
    // alice 2 + carol 2 = 4 of the tenant's 5.
    assert.equal((await pod(BOB, 'bobpod1', { status_requested: 'OFF' })).status, 200);
    const r = await pod(BOB, 'bobpod2', { status_requested: 'OFF' });
    assert.equal(r.status, 403);
    assert.match(r.body.message, /tenant dev may have at most 5 pods/);
    // Site admins are not counted.
    assert.equal((await pod(ADMIN, 'adminpod1', { status_requested: 'OFF' })).status, 200);
  });

  test('lists a page at a time with limit and skip; the envelope says the total', async () => {
    const all = await call('GET', '/v3/pods', ADMIN);
    assert.equal(all.body.result.length, 6);
    assert.deepEqual(all.body.metadata, { total: 6, skip: 0, limit: null });
    const page = await call('GET', '/v3/pods?limit=2&skip=2', ADMIN);
    assert.deepEqual(page.body.result.map((p: { pod_id: string }) => p.pod_id), all.body.result.slice(2, 4).map((p: { pod_id: string }) => p.pod_id));
    assert.deepEqual(page.body.metadata, { total: 6, skip: 2, limit: 2 });
    assert.equal((await call('GET', '/v3/pods?skip=10', ADMIN)).body.result.length, 0);
    for (const bad of ['limit=0', 'limit=abc', 'limit=1001', 'skip=-1']) {
      const r = await call('GET', `/v3/pods?${bad}`, ADMIN);
      assert.equal(r.status, 400, bad);
      assert.match(r.body.message, /^(limit|skip): must be a whole number/);
    }
    assert.equal((await call('GET', '/v3/pods/volumes?limit=1', ALICE)).body.result.length, 1);
  });
});
