// The permission matrix: every pod endpoint, at every level, from both tenants. Real Redis,
// real HTTP; no agent, so pods stay where the API leaves them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const tok = (u: string) => `${u}-token-0123456789abcdef`;
const LEVELS = ['none', 'READ', 'USER', 'ADMIN'] as const;
type Level = (typeof LEVELS)[number];

// endpoint -> the lowest level that may use it (TAPIS-NOTES).
const MATRIX: Array<{ name: string; method: string; path: (pod: string) => string; body?: unknown; need: Exclude<Level, 'none'> }> = [
  { name: 'get', method: 'GET', path: (p) => `/v3/pods/${p}`, need: 'READ' },
  { name: 'logs', method: 'GET', path: (p) => `/v3/pods/${p}/logs`, need: 'READ' },
  { name: 'derived', method: 'GET', path: (p) => `/v3/pods/${p}/derived`, need: 'READ' },
  { name: 'update', method: 'PUT', path: (p) => `/v3/pods/${p}`, body: { description: 'x' }, need: 'USER' },
  { name: 'credentials', method: 'GET', path: (p) => `/v3/pods/${p}/credentials`, need: 'USER' },
  { name: 'list permissions', method: 'GET', path: (p) => `/v3/pods/${p}/permissions`, need: 'USER' },
  { name: 'set permission', method: 'POST', path: (p) => `/v3/pods/${p}/permissions`, body: { user: 'zed', level: 'READ' }, need: 'ADMIN' },
  { name: 'delete permission', method: 'DELETE', path: (p) => `/v3/pods/${p}/permissions/read`, need: 'ADMIN' },
  { name: 'stop', method: 'GET', path: (p) => `/v3/pods/${p}/stop`, need: 'ADMIN' },
  { name: 'start', method: 'GET', path: (p) => `/v3/pods/${p}/start`, need: 'ADMIN' },
  { name: 'restart', method: 'GET', path: (p) => `/v3/pods/${p}/restart`, need: 'ADMIN' },
  { name: 'delete', method: 'DELETE', path: (p) => `/v3/pods/${p}`, need: 'ADMIN' },
];
const RANK: Record<Level, number> = { none: 0, READ: 1, USER: 2, ADMIN: 3 };

describe('permission matrix', () => {
  let api: ApiServer;
  let base: string;

  before(async () => {
    api = await startApiServer({
      PODS_ADMIN_TOKEN: ADMIN,
      PODS_TENANT: 'dev',
      PODS_REDIS_PREFIX: 'perm:',
      PODS_EXTRA_TOKENS: JSON.stringify([
        ...['owner', 'none', 'READ', 'USER', 'ADMIN'].map((u) => ({ token: tok(u), tenant: 'dev', username: u.toLowerCase() })),
        { token: tok('stranger'), tenant: 'other', username: 'owner' },
      ]),
    });
    base = api.base;
    await call(ADMIN, 'POST', '/v3/pods/images', { image: 'pods-test/httpd' });
    await call(ADMIN, 'POST', '/v3/admin/tenants', { tenant_id: 'other', base_url: 'http://other.test' });
  });
  after(async () => {
    await api?.stop();
  });

  async function call(token: string, method: string, path: string, body?: unknown, host?: string) {
    const headers: Record<string, string> = { 'x-tapis-token': token, ...(host ? { host } : {}) };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await request(`${base}${path}`, { method: method as 'GET', headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  }

  /** A fresh pod owned by "owner", with users read/user/admin at those levels. */
  async function podWithGrants(podId: string) {
    assert.equal((await call(tok('owner'), 'POST', '/v3/pods', { pod_id: podId, image: 'pods-test/httpd' })).status, 200);
    for (const level of ['READ', 'USER', 'ADMIN'] as const) {
      assert.equal((await call(tok('owner'), 'POST', `/v3/pods/${podId}/permissions`, { user: level.toLowerCase(), level })).status, 200);
    }
  }

  let n = 0;
  for (const e of MATRIX) {
    test(`${e.name}: ${e.need} and above may; below gets 403; another tenant gets 401 here and 404 at home`, async () => {
      for (const level of LEVELS) {
        const podId = `pm${n++}`;
        await podWithGrants(podId);
        const r = await call(tok(level), e.method, e.path(podId), e.body);
        if (RANK[level] >= RANK[e.need]) assert.equal(r.status, 200, `${level} on ${e.name}: ${r.body.message}`);
        else {
          assert.equal(r.status, 403, `${level} on ${e.name}`);
          assert.match(r.body.message, new RegExp(`need ${e.need} permission`));
        }
      }
      const podId = `pm${n++}`;
      await podWithGrants(podId);
      assert.equal((await call(tok('stranger'), e.method, e.path(podId), e.body)).status, 401);
      assert.equal((await call(tok('stranger'), e.method, e.path(podId), e.body, 'other.test')).status, 404);
    });
  }

  test('site admins have ADMIN on every pod of the tenant; list shows only readable pods', async () => {
    await podWithGrants('listed');
    assert.equal((await call(ADMIN, 'GET', '/v3/pods/listed/credentials')).status, 200);
    const ids = (t: string) => call(tok(t), 'GET', '/v3/pods').then((r) => (r.body.result as Array<{ pod_id: string }>).map((p) => p.pod_id));
    assert.ok((await ids('READ')).includes('listed'));
    assert.ok(!(await ids('none')).includes('listed'));
    assert.deepEqual(await call(tok('stranger'), 'GET', '/v3/pods', undefined, 'other.test').then((r) => r.body.result), []);
  });
});
