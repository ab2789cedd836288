// Site admins and tenant admins, user lifecycle and login limits, against a real Redis on a
// real socket. Each attack here worked before roles were split: a tenant admin of one tenant
// set a new password for a user of another and logged in as that user.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { freePort } from '../helpers/ports.js';

const ADMIN = 'admin-token-0123456789abcdef';
const WINDOW_S = 10;

describe('roles: site admins, tenant admins, users', () => {
  let api: ApiServer;
  let dev: string;
  let t2: string;

  before(async () => {
    const port = await freePort();
    dev = `http://127.0.0.1:${port}`;
    t2 = `http://localhost:${port}`;
    api = await startApiServer(
      {
        PODS_ADMIN_TOKEN: ADMIN,
        PODS_TENANT: 'dev',
        PODS_PUBLIC_URL: dev,
        PODS_REDIS_PREFIX: 'roles:',
        PODS_LOGIN_MAX_FAILURES_PER_USER_ADDRESS: '3',
        PODS_LOGIN_WINDOW_S: String(WINDOW_S),
        PODS_LOGIN_MAX_ATTEMPTS_PER_ADDRESS: '40',
      },
      { port },
    );
    assert.equal((await call(dev, 'POST', '/v3/admin/tenants', { token: ADMIN, body: { tenant_id: 't2', base_url: t2 } })).status, 200);
    for (const [base, tenant_id, username, admin] of [
      [dev, 'dev', 'demo', false],
      [dev, 'dev', 'devadmin', true],
      [t2, 't2', 'eve', true],
      [t2, 't2', 'tom', false],
    ] as const) {
      const r = await call(base, 'POST', '/v3/admin/users', { token: ADMIN, body: { tenant_id, username, password: `${username}-password`, admin } });
      assert.equal(r.status, 200, r.body.message);
    }
  });
  after(async () => {
    await api?.stop();
  });

  async function call(base: string, method: string, path: string, opts: { token?: string; body?: unknown; from?: Agent } = {}) {
    const headers: Record<string, string> = opts.token ? { 'x-tapis-token': opts.token } : {};
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const res = await request(`${base}${path}`, { method: method as 'GET', headers, body, ...(opts.from ? { dispatcher: opts.from } : {}) });
    return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as any };
  }
  const login = (base: string, username: string, password: string, from?: Agent) =>
    call(base, 'POST', '/v3/oauth2/tokens', { body: { username, password, grant_type: 'password' }, ...(from ? { from } : {}) });
  const token = async (base: string, username: string, password = `${username}-password`) => {
    const r = await login(base, username, password);
    assert.equal(r.status, 200, r.body.message);
    return r.body.result.access_token.access_token as string;
  };

  test("a tenant admin cannot create, change or list another tenant's users", async () => {
    const eve = await token(t2, 'eve');
    // The attack: eve (admin of t2) sets a new password for dev's demo, then logs in as demo.
    const take = await call(t2, 'POST', '/v3/admin/users', { token: eve, body: { tenant_id: 'dev', username: 'demo', password: 'taken-over-pw' } });
    assert.equal(take.status, 403);
    assert.match(take.body.message, /own tenant \("t2"\)/);
    const put = await call(t2, 'PUT', '/v3/admin/users/demo?tenant_id=dev', { token: eve, body: { password: 'taken-over-pw' } });
    assert.equal(put.status, 403);
    assert.equal((await login(dev, 'demo', 'taken-over-pw')).status, 401);
    await token(dev, 'demo');
    assert.equal((await call(t2, 'GET', '/v3/admin/users?tenant_id=dev', { token: eve })).status, 403);
    assert.equal((await call(t2, 'DELETE', '/v3/admin/users/demo?tenant_id=dev', { token: eve })).status, 403);
    // Her own tenant is hers to manage.
    const mine = await call(t2, 'GET', '/v3/admin/users', { token: eve });
    assert.equal(mine.status, 200);
    assert.deepEqual(mine.body.result.map((u: { username: string }) => u.username), ['eve', 'tom']);
    assert.equal((await call(t2, 'POST', '/v3/admin/users', { token: eve, body: { username: 'ted', password: 'ted-password' } })).status, 200);
    await token(t2, 'ted');
  });

  test('creating a user that exists is a 409 and changes nothing', async () => {
    const again = await call(dev, 'POST', '/v3/admin/users', { token: ADMIN, body: { username: 'demo', password: 'another-password' } });
    assert.equal(again.status, 409);
    assert.match(again.body.message, /already exists/);
    assert.equal((await login(dev, 'demo', 'another-password')).status, 401);
    await token(dev, 'demo');
  });

  test('only site admins make or touch site admins, tenants and nodes', async () => {
    const devadmin = await token(dev, 'devadmin');
    const grant = await call(dev, 'POST', '/v3/admin/users', { token: devadmin, body: { username: 'root2', password: 'root2-password', site_admin: true } });
    assert.equal(grant.status, 403);
    assert.equal((await call(dev, 'PUT', '/v3/admin/users/devadmin', { token: devadmin, body: { site_admin: true } })).status, 403);
    assert.equal((await call(dev, 'POST', '/v3/admin/tenants', { token: devadmin, body: { tenant_id: 't3', base_url: 'http://t3.example' } })).status, 403);
    // A site admin made by the site admin: the tenant admin of the same tenant cannot take it over.
    assert.equal((await call(dev, 'POST', '/v3/admin/users', { token: ADMIN, body: { username: 'ops', password: 'ops-password', site_admin: true } })).status, 200);
    assert.equal((await call(dev, 'PUT', '/v3/admin/users/ops', { token: devadmin, body: { password: 'mine-now-pw' } })).status, 403);
    assert.equal((await call(dev, 'DELETE', '/v3/admin/users/ops', { token: devadmin })).status, 403);
    const ops = await token(dev, 'ops');
    assert.equal((await call(dev, 'POST', '/v3/admin/tenants', { token: ops, body: { tenant_id: 't3', base_url: 'http://t3.example' } })).status, 200);
    assert.equal((await call(dev, 'GET', '/v3/admin/users?tenant_id=t2', { token: ops })).status, 200);
  });

  test("a tenant admin changes only its own tenant's images", async () => {
    const eve = await token(t2, 'eve');
    assert.equal((await call(t2, 'POST', '/v3/pods/images', { token: eve, body: { image: 'team/tool:1' } })).status, 200);
    const everyone = await call(t2, 'POST', '/v3/pods/images', { token: eve, body: { image: 'team/other', tenants: ['*'] } });
    assert.equal(everyone.status, 403);
    assert.equal((await call(dev, 'POST', '/v3/pods/images', { token: ADMIN, body: { image: 'site/base', tenants: ['*'] } })).status, 200);
    assert.equal((await call(t2, 'DELETE', '/v3/pods/images/site/base', { token: eve })).status, 403);
    assert.equal((await call(t2, 'DELETE', '/v3/pods/images/team/tool', { token: eve })).status, 200);
    const tom = await token(t2, 'tom');
    assert.equal((await call(t2, 'POST', '/v3/pods/images', { token: tom, body: { image: 'team/tool:2' } })).status, 403);
  });

  test("a password change, a disable or a delete ends the user's tokens at once", async () => {
    const before = await token(dev, 'demo');
    assert.equal((await call(dev, 'GET', '/v3/pods', { token: before })).status, 200);
    assert.equal((await call(dev, 'PUT', '/v3/admin/users/demo', { token: ADMIN, body: { password: 'demo-password-2' } })).status, 200);
    const revoked = await call(dev, 'GET', '/v3/pods', { token: before });
    assert.equal(revoked.status, 401);
    assert.match(revoked.body.message, /revoked/);
    const fresh = await token(dev, 'demo', 'demo-password-2');
    assert.equal((await call(dev, 'GET', '/v3/pods', { token: fresh })).status, 200);

    const devadmin = await token(dev, 'devadmin');
    const off = await call(dev, 'PUT', '/v3/admin/users/demo', { token: devadmin, body: { disabled: true } });
    assert.equal(off.status, 200);
    assert.equal(off.body.result.disabled, true);
    assert.equal((await call(dev, 'GET', '/v3/pods', { token: fresh })).status, 401);
    assert.equal((await login(dev, 'demo', 'demo-password-2')).status, 401);
    assert.equal((await call(dev, 'PUT', '/v3/admin/users/demo', { token: devadmin, body: { disabled: false } })).status, 200);
    const back = await token(dev, 'demo', 'demo-password-2');
    assert.equal((await call(dev, 'DELETE', '/v3/admin/users/demo', { token: devadmin })).status, 200);
    assert.equal((await call(dev, 'GET', '/v3/pods', { token: back })).status, 401);
    assert.equal((await call(dev, 'GET', '/v3/admin/users/demo', { token: devadmin })).status, 404);
  });

  test('guessing a password is cut off with 429 and Retry-After; the real login works after the window', async () => {
    assert.equal((await call(dev, 'POST', '/v3/admin/users', { token: ADMIN, body: { username: 'target', password: 'target-password' } })).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await login(dev, 'target', `guess-${i}`)).status, 401);
    const limited = await login(dev, 'target', 'guess-3');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.status, 'error');
    const wait = Number(limited.headers['retry-after']);
    assert.ok(wait >= 1 && wait <= WINDOW_S, `Retry-After: ${wait}`);
    // Even the right password waits: the limit is checked before the password is.
    assert.equal((await login(dev, 'target', 'target-password')).status, 429);
    // Another user is not affected (from another address: this one's attempts are counted too).
    const elsewhere = new Agent({ connect: { localAddress: '127.0.0.3' } });
    try {
      assert.equal((await login(dev, 'devadmin', 'devadmin-password', elsewhere)).status, 200);
    } finally {
      await elsewhere.close();
    }
    await sleep(wait * 1000 + 200);
    await token(dev, 'target');
  });

  test('a flood of logins from one address is cut off there and queues behind the hash cap; a real login from elsewhere gets through', async () => {
    assert.equal((await call(dev, 'POST', '/v3/admin/users', { token: ADMIN, body: { username: 'real', password: 'real-password' } })).status, 200);
    // The flood comes from 127.0.0.2, the real user from 127.0.0.1.
    const attacker = new Agent({ connect: { localAddress: '127.0.0.2' }, connections: 70 });
    try {
      const flood = Array.from({ length: 60 }, (_, i) => login(dev, `nobody${i}`, 'whatever-pw', attacker));
      const real = login(dev, 'real', 'real-password');
      const results = await Promise.all(flood);
      const count = (s: number) => results.filter((r) => r.status === s).length;
      assert.equal(count(401) + count(429), 60, results.map((r) => r.status).join(','));
      assert.ok(count(429) >= 20, `at most 40 attempts per window from one address: ${count(401)} were checked`);
      assert.equal((await real).status, 200);
    } finally {
      await attacker.close();
    }
  });
});
