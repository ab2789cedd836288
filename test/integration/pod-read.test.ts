// GET /v3/pods/{id} and the list GET /v3/pods remember each pod's view (see PodViewCache);
// whatever they remember, every answer is the pods as stored at that moment, for a caller allowed
// at that moment. Real Redis, real HTTP, users with real JWTs; no agent, so the pods stay as the
// API and the test leave them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { podResponse } from '../../coordinator/view.js';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { freePort } from '../helpers/ports.js';

const ADMIN = 'admin-token-0123456789abcdef';

describe('GET /v3/pods/{id} and GET /v3/pods: the pods as stored now, for a caller allowed now', () => {
  let api: ApiServer;
  let owner: string;
  let reader: string;
  /** Whose each token is (the site admin's: null). */
  const userOf = new Map<string, string | null>([[ADMIN, null]]);

  async function login(username: string, password: string): Promise<string> {
    const r = await api.call('', 'POST', '/v3/oauth2/tokens', { username, password, grant_type: 'password' });
    assert.equal(r.status, 200, r.text);
    const token = r.body.result.access_token.access_token;
    userOf.set(token, username);
    return token;
  }

  /**
   * The list's bytes as made from the records in Redis without anything remembered: every pod
   * of the tenant not being deleted on which the token's user has a permission, in id order.
   */
  async function expectedList(token: string): Promise<string> {
    const username = userOf.get(token);
    assert.notEqual(username, undefined, 'a token of this test');
    const shown = [];
    for (const podId of await api.stores.pods.listIds('dev')) {
      const rec = await api.stores.pods.get('dev', podId);
      const perms = await api.stores.pods.perms('dev', podId);
      if (rec && !rec.desired.deleting && (username === null || perms[username!])) shown.push(podResponse(rec, api.config.baseDomain, () => false, api.config.publicTlsPort));
    }
    const metadata = { total: shown.length, skip: 0, limit: null };
    return JSON.stringify({ status: 'success', message: 'Pods retrieved successfully.', result: shown, version: api.config.version, metadata });
  }

  /** GET /v3/pods twice (the second answer comes from what the first remembered) and check both; the pods listed, by id. */
  async function listTwice(token: string): Promise<Map<string, any>> {
    const want = await expectedList(token);
    for (let i = 0; i < 2; i++) {
      const r = await api.call(token, 'GET', '/v3/pods');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, want);
    }
    return new Map(JSON.parse(want).result.map((p: any) => [p.pod_id, p]));
  }

  /** The answer's bytes as made from the record in Redis without anything remembered. */
  async function expected(podId: string): Promise<string> {
    const rec = (await api.stores.pods.get('dev', podId))!;
    const view = podResponse(rec, api.config.baseDomain, () => false, api.config.publicTlsPort);
    return JSON.stringify({ status: 'success', message: 'Pod retrieved successfully.', result: view, version: api.config.version, metadata: {} });
  }

  /**
   * List the pods twice, then GET the pod twice (the second answer of each comes from what the
   * first remembered, the GETs' from what the list remembered) and check every answer.
   */
  async function getTwice(token: string, podId: string): Promise<any> {
    const listed = (await listTwice(token)).get(podId);
    const want = await expected(podId);
    assert.deepEqual(listed, JSON.parse(want).result, `${podId} is listed as GET shows it`);
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
    assert.equal((await listTwice(reader)).has('shared'), false, 'a pod no longer shared is not listed');
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
    assert.equal((await listTwice(owner)).has('reborn'), false, 'a deleted pod is not listed');
    // No agent: the reconciler's part of a delete (its tombstone removed) is done here.
    await api.stores.pods.delete('dev', 'reborn', null);
    assert.equal((await api.call(owner, 'POST', '/v3/pods', { pod_id: 'reborn', image: 'pods-test/httpd', description: 'new' })).status, 200);
    assert.equal((await getTwice(owner, 'reborn')).description, 'new');
  });

  test('a page of the list is that part of the whole list, byte for byte', async () => {
    const whole = JSON.parse(await expectedList(owner));
    assert.ok(whole.result.length >= 3, 'the pods the tests before made');
    await listTwice(owner);
    const page = await api.call(owner, 'GET', '/v3/pods?limit=2&skip=1');
    assert.equal(page.status, 200, page.text);
    assert.equal(page.text, JSON.stringify({ ...whole, result: whole.result.slice(1, 3), metadata: { total: whole.result.length, skip: 1, limit: 2 } }));
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
