// GET /v3/pods/{id} remembers each pod's view (see PodViewCache); whatever it remembers, every
// answer is the pod as stored at that moment, for a caller allowed at that moment. Real Redis,
// real HTTP, users with real JWTs; no agent, so the pods stay as the API and the test leave them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { podResponse } from '../../coordinator/view.js';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { freePort } from '../helpers/ports.js';

const ADMIN = 'admin-token-0123456789abcdef';

describe('GET /v3/pods/{id}: the pod as stored now, for a caller allowed now', () => {
  let api: ApiServer;
  let owner: string;
  let reader: string;

  async function login(username: string, password: string): Promise<string> {
    const r = await api.call('', 'POST', '/v3/oauth2/tokens', { username, password, grant_type: 'password' });
    assert.equal(r.status, 200, r.text);
    return r.body.result.access_token.access_token;
  }

  /** The answer's bytes as made from the record in Redis without anything remembered. */
  async function expected(podId: string): Promise<string> {
    const rec = (await api.stores.pods.get('dev', podId))!;
    const view = podResponse(rec, api.config.baseDomain, () => false, api.config.publicTlsPort);
    return JSON.stringify({ status: 'success', message: 'Pod retrieved successfully.', result: view, version: api.config.version, metadata: {} });
  }

  /** GET the pod twice (the second answer comes from what the first remembered) and check both. */
  async function getTwice(token: string, podId: string): Promise<any> {
    const want = await expected(podId);
    for (let i = 0; i < 2; i++) {
      const r = await api.call(token, 'GET', `/v3/pods/${podId}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, want);
    }
    return JSON.parse(want).result;
  }

  before(async () => {
    const port = await freePort();
    api = await startApiServer({ PODS_ADMIN_TOKEN: ADMIN, PODS_TENANT: 'dev', PODS_PUBLIC_URL: `http://127.0.0.1:${port}`, PODS_REDIS_PREFIX: 'read:' }, { port });
    assert.equal((await api.call(ADMIN, 'POST', '/v3/pods/images', { image: 'pods-test/httpd' })).status, 200);
    for (const username of ['owner', 'reader']) {
      assert.equal((await api.call(ADMIN, 'POST', '/v3/admin/users', { username, password: `${username}-password` })).status, 200);
    }
    owner = await login('owner', 'owner-password');
    reader = await login('reader', 'reader-password');
  });
  after(async () => {
    await api?.stop();
  });

  test('every change to the stored pod shows in the next answer, byte for byte', async () => {
    assert.equal((await api.call(owner, 'POST', '/v3/pods', { pod_id: 'changing', image: 'pods-test/httpd', description: 'first' })).status, 200);
    assert.equal((await getTwice(owner, 'changing')).description, 'first');

    // The API's own changes: spec, then desired state.
    assert.equal((await api.call(owner, 'PUT', '/v3/pods/changing', { description: 'second' })).status, 200);
    assert.equal((await getTwice(owner, 'changing')).description, 'second');
    assert.equal((await api.call(owner, 'GET', '/v3/pods/changing/stop')).status, 200);
    assert.equal((await getTwice(owner, 'changing')).status_requested, 'OFF');
    assert.equal((await api.call(owner, 'GET', '/v3/pods/changing/start')).status, 200);

    // The scheduler's and a host's changes, written straight to the store as they are.
    await api.stores.pods.setNote('dev', 'changing', 'no host has room');
    assert.equal((await getTwice(owner, 'changing')).status_container.message, 'Pod is waiting for a host: no host has room.');
    const at = new Date().toISOString();
    assert.equal((await api.stores.pods.place('dev', 'changing', { nodeId: 'n1', at }, { cpuMilli: 4000, memoryMb: 8192 })).result, 'placed');
    assert.equal((await getTwice(owner, 'changing')).status, 'SPAWNER_SETUP');
    const { desired } = (await api.stores.pods.get('dev', 'changing'))!;
    assert.notEqual(await api.stores.pods.setObserved('dev', 'changing', { nodeId: 'n1', uid: desired.uid, generation: desired.generation, phase: 'running', health: 'unknown', hostPorts: {}, at }), 'stale');
    const running = await getTwice(owner, 'changing');
    assert.equal(running.status, 'RUNNING');
    assert.equal(running.status_container.node, 'n1');
  });

  test('a permission removed is refused on the very next request', async () => {
    assert.equal((await api.call(owner, 'POST', '/v3/pods', { pod_id: 'shared', image: 'pods-test/httpd' })).status, 200);
    assert.equal((await api.call(reader, 'GET', '/v3/pods/shared')).status, 403);
    assert.equal((await api.call(owner, 'POST', '/v3/pods/shared/permissions', { user: 'reader', level: 'READ' })).status, 200);
    await getTwice(reader, 'shared');
    assert.equal((await api.call(owner, 'DELETE', '/v3/pods/shared/permissions/reader')).status, 200);
    const refused = await api.call(reader, 'GET', '/v3/pods/shared');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.result, null);
    // The owner still reads it, and so does an admin.
    await getTwice(owner, 'shared');
    await getTwice(ADMIN, 'shared');
  });

  test('a revoked token is refused on the very next request', async () => {
    assert.equal((await api.call(ADMIN, 'POST', '/v3/admin/users', { username: 'leaver', password: 'leaver-password' })).status, 200);
    const token = await login('leaver', 'leaver-password');
    assert.equal((await api.call(owner, 'POST', '/v3/pods/shared/permissions', { user: 'leaver', level: 'READ' })).status, 200);
    await getTwice(token, 'shared');
    assert.equal((await api.call(ADMIN, 'PUT', '/v3/admin/users/leaver', { password: 'another-password' })).status, 200);
    const revoked = await api.call(token, 'GET', '/v3/pods/shared');
    assert.equal(revoked.status, 401);
    assert.match(revoked.body.message, /revoked/);

    const fresh = await login('leaver', 'another-password');
    await getTwice(fresh, 'shared');
    assert.equal((await api.call(ADMIN, 'PUT', '/v3/admin/users/leaver', { disabled: true })).status, 200);
    assert.equal((await api.call(fresh, 'GET', '/v3/pods/shared')).status, 401);
  });

  test('a pod deleted is gone at once, and one made again under its id is the new one', async () => {
    assert.equal((await api.call(owner, 'POST', '/v3/pods', { pod_id: 'reborn', image: 'pods-test/httpd', description: 'old' })).status, 200);
    await getTwice(owner, 'reborn');
    assert.equal((await api.call(owner, 'DELETE', '/v3/pods/reborn')).status, 200);
    assert.equal((await api.call(owner, 'GET', '/v3/pods/reborn')).status, 404);
    // No agent: the reconciler's part of a delete (its tombstone removed) is done here.
    await api.stores.pods.delete('dev', 'reborn', null);
    assert.equal((await api.call(owner, 'POST', '/v3/pods', { pod_id: 'reborn', image: 'pods-test/httpd', description: 'new' })).status, 200);
    assert.equal((await getTwice(owner, 'reborn')).description, 'new');
  });

  test('another tenant cannot read the pod, whatever is remembered of it', async () => {
    assert.equal((await api.call(ADMIN, 'POST', '/v3/admin/tenants', { tenant_id: 'other', base_url: 'http://other.test' })).status, 200);
    await getTwice(owner, 'shared');
    const r = await api.call('', 'POST', '/v3/oauth2/tokens', { username: 'owner', password: 'owner-password', grant_type: 'password' });
    // The same username in the other tenant is another user: with the dev token, the other
    // tenant's host is refused; the other tenant's admin does not see dev's pod.
    const viaOther = (token: string) => request(`${api.base}/v3/pods/shared`, { headers: { 'x-tapis-token': token, host: 'other.test' } });
    const devToken = await viaOther(r.body.result.access_token.access_token);
    assert.equal(devToken.statusCode, 401);
    assert.match(((await devToken.body.json()) as any).message, /for tenant "dev", not "other"/);
    const admin = await viaOther(ADMIN);
    assert.equal(admin.statusCode, 404);
    await admin.body.dump();
  });
});
