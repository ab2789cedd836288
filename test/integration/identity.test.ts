// Tokens, sites and tenants against a real Redis, on a real socket.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { issueToken } from '../../coordinator/identity/jwt.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { repoRoot } from '../helpers/stack.js';

const ADMIN = 'admin-token-0123456789abcdef';

describe('identity: tokens, sites, tenants', () => {
  let api: ApiServer;
  let port: number;
  let primary: string;
  let other: string;

  before(async () => {
    port = await freePort();
    primary = `http://127.0.0.1:${port}`;
    other = `http://localhost:${port}`;
    api = await startApiServer({ PODS_ADMIN_TOKEN: ADMIN, PODS_TENANT: 'dev', PODS_PUBLIC_URL: primary, PODS_REDIS_PREFIX: 'id:' }, { port });
  });
  after(async () => {
    await api?.stop();
  });

  async function call(base: string, method: string, path: string, opts: { token?: string; body?: unknown; form?: Record<string, string> } = {}) {
    const headers: Record<string, string> = opts.token ? { 'x-tapis-token': opts.token } : {};
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    } else if (opts.form) {
      body = new URLSearchParams(opts.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await request(`${base}${path}`, { method: method as 'GET', headers, body });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  }
  const token = async (base: string, username: string, password: string) => {
    const r = await call(base, 'POST', '/v3/oauth2/tokens', { body: { username, password, grant_type: 'password' } });
    assert.equal(r.status, 200, r.body.message);
    return r.body.result.access_token.access_token as string;
  };

  /** The CLI, as run on the coordinator's host against its Redis. */
  const runCli = (args: string[], input?: string) =>
    spawnSync(process.execPath, [path.join(repoRoot(), 'dist/coordinator/cli.js'), ...args], {
      input,
      env: { ...process.env, PODS_ADMIN_TOKEN: ADMIN, PODS_NODE_TOKENS: 'n1=node-token-0123456789abcdef', PODS_REDIS_URL: api.redis.url, PODS_REDIS_PREFIX: 'id:', PODS_PUBLIC_URL: primary },
      encoding: 'utf8',
    });

  test('site admins add tenants and users; others cannot', async () => {
    assert.equal((await call(primary, 'POST', '/v3/admin/tenants', { token: ADMIN, body: { tenant_id: 'other', base_url: other } })).status, 200);
    const dup = await call(primary, 'POST', '/v3/admin/tenants', { token: ADMIN, body: { tenant_id: 'third', base_url: other } });
    assert.equal(dup.status, 400);
    assert.match(dup.body.message, /^base_url: /);
    for (const [tenant_id, username] of [['dev', 'alice'], ['dev', 'bob'], ['other', 'carol']]) {
      const r = await call(primary, 'POST', '/v3/admin/users', { token: ADMIN, body: { tenant_id, username, password: `${username}-secret-pw` } });
      assert.equal(r.status, 200);
      assert.equal(JSON.stringify(r.body).includes('secret-pw'), false, 'the password is never echoed');
    }
    const weak = await call(primary, 'POST', '/v3/admin/users', { token: ADMIN, body: { username: 'dave', password: 'short' } });
    assert.equal(weak.status, 400);
    assert.match(weak.body.message, /^password: /);
    const alice = await token(primary, 'alice', 'alice-secret-pw');
    const r = await call(primary, 'POST', '/v3/admin/users', { token: alice, body: { username: 'eve', password: 'long-enough-pw' } });
    assert.equal(r.status, 403);
  });

  test('sites and tenants answer without a token, as tapipy reads them', async () => {
    const sites = await call(primary, 'GET', '/v3/sites');
    assert.equal(sites.status, 200);
    assert.equal(sites.body.result[0].base_url, primary);
    assert.equal(sites.body.result[0].primary, true);
    const tenants = await call(primary, 'GET', '/v3/tenants');
    const byId = Object.fromEntries(tenants.body.result.map((t: { tenant_id: string }) => [t.tenant_id, t]));
    assert.equal(byId.dev.base_url, primary);
    assert.equal(byId.other.base_url, other);
    assert.equal(byId.dev.site_id, sites.body.result[0].site_id);
    assert.match(byId.dev.public_key, /^-----BEGIN PUBLIC KEY-----/);
  });

  test('password grant, JSON or form: a JWT with exp, jti and the tenant', async () => {
    const r = await call(primary, 'POST', '/v3/oauth2/tokens', { form: { username: 'alice', password: 'alice-secret-pw', grant_type: 'password' } });
    assert.equal(r.status, 200);
    const t = r.body.result.access_token;
    assert.equal(t.expires_in, 14400);
    const claims = JSON.parse(Buffer.from(t.access_token.split('.')[1], 'base64url').toString());
    assert.equal(claims['tapis/tenant_id'], 'dev');
    assert.equal(claims['tapis/username'], 'alice');
    assert.equal(claims.jti, t.jti);
    assert.equal(claims.exp - claims.iat, 14400);
    assert.equal(new Date(t.expires_at).getTime(), claims.exp * 1000);
    const bad = await call(primary, 'POST', '/v3/oauth2/tokens', { body: { username: 'alice', password: 'wrong', grant_type: 'password' } });
    assert.equal(bad.status, 401);
    assert.equal((await call(primary, 'POST', '/v3/oauth2/tokens', { body: { username: 'nobody', password: 'x', grant_type: 'password' } })).status, 401);
    const grant = await call(primary, 'POST', '/v3/oauth2/tokens', { body: { username: 'alice', password: 'x', grant_type: 'client_credentials' } });
    assert.equal(grant.status, 400);
    assert.match(grant.body.message, /^grant_type: /);
    // carol exists in "other" only: her password works on its base URL, not on dev's.
    assert.equal((await call(primary, 'POST', '/v3/oauth2/tokens', { body: { username: 'carol', password: 'carol-secret-pw', grant_type: 'password' } })).status, 401);
    await token(other, 'carol', 'carol-secret-pw');
  });

  test('the CLI adds users from the coordinator host, password on stdin', async () => {
    const cli = runCli(['user', 'add', 'frank', '--tenant', 'other'], 'frank-secret-pw\n');
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /user frank added to tenant other/);
    await token(other, 'frank', 'frank-secret-pw');
    const bad = runCli(['user', 'add', 'Bad Name'], 'whatever-long');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^username: /);
  });

  /** The users an admin sees through the API at a Host: those of the tenant that Host is, as tenant/username. */
  const usersAt = async (host: string) => {
    const res = await request(`${primary}/v3/admin/users`, { headers: { host, 'x-tapis-token': ADMIN } });
    assert.equal(res.statusCode, 200);
    const body = (await res.body.json()) as { result: Array<{ username: string; tenant_id: string }> };
    return body.result.map((u) => `${u.tenant_id}/${u.username}`);
  };

  test('a tenant added by another process (the CLI) is served by its host at once', async () => {
    // The coordinator keeps the tenants it has read in memory, and is told of every one added.
    const host = `late.example:${port}`;
    for (let i = 0; i < 2; i++) assert.ok((await usersAt(host)).includes('dev/alice'), 'an unknown host is the primary tenant');
    const cli = runCli(['tenant', 'add', 'late', `http://${host}`]);
    assert.equal(cli.status, 0, cli.stderr);
    assert.deepEqual(await usersAt(host), []);
    assert.ok((await usersAt(`127.0.0.1:${port}`)).includes('dev/alice'));
  });

  test('a tenant added after the coordinator lost and regained its subscription is served at once', async () => {
    const host = `relinked.example:${port}`;
    for (let i = 0; i < 2; i++) assert.ok((await usersAt(host)).includes('dev/alice'));
    const subscribers = async () => Number((await api.client.pubSubNumSub('id:tenant-added'))['id:tenant-added']);
    assert.equal(await subscribers(), 1);
    await api.client.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    await waitFor('the coordinator to subscribe again', async () => (await subscribers()) === 1, 10_000);
    const cli = runCli(['tenant', 'add', 'relinked', `http://${host}`]);
    assert.equal(cli.status, 0, cli.stderr);
    assert.deepEqual(await usersAt(host), []);
  });

  test('a tenant added through the API is served by its host at once, after the host was unknown', async () => {
    const host = `later.example:${port}`;
    for (let i = 0; i < 2; i++) assert.ok((await usersAt(host)).includes('dev/alice'), 'an unknown host is the primary tenant');
    assert.equal((await call(primary, 'POST', '/v3/admin/tenants', { token: ADMIN, body: { tenant_id: 'later', base_url: `http://${host}` } })).status, 200);
    assert.deepEqual(await usersAt(host), []);
  });

  test('hosts no tenant has are the primary tenant, and asking for more of them reads nothing from Redis', async () => {
    /** Commands Redis has run so far, but for INFO (this count's own). */
    const commandsRun = async () => {
      const stats = await api.client.info('commandstats');
      let calls = 0;
      for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') calls += Number(m[2]);
      return calls;
    };
    assert.ok((await usersAt(`nowhere-0.example:${port}`)).includes('dev/alice'));
    const before = await commandsRun();
    for (let i = 1; i <= 50; i++) {
      const res = await request(`${primary}/v3/healthcheck`, { headers: { host: `nowhere-${i}.example:${port}` } });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    }
    // Nothing, or once if the machine stalled past the seconds that every tenant read stays the answer.
    const read = (await commandsRun()) - before;
    assert.ok(read <= 1, `50 requests at unknown hosts made ${read} Redis commands`);
  });

  test('forged, expired and other-tenant tokens get 401; a good one works', async () => {
    const alice = await token(primary, 'alice', 'alice-secret-pw');
    assert.equal((await call(primary, 'GET', '/v3/pods', { token: alice })).status, 200);
    const [h, , s] = alice.split('.');
    const forgedBody = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(alice.split('.')[1]!, 'base64url').toString()), 'tapis/username': 'bob' })).toString('base64url');
    const tampered = await call(primary, 'GET', '/v3/pods', { token: `${h}.${forgedBody}.${s}` });
    assert.equal(tampered.status, 401);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const foreign = issueToken(privateKey, { issuer: 'x', tenant: 'dev', username: 'alice', ttlS: 3600 }).token;
    assert.equal((await call(primary, 'GET', '/v3/pods', { token: foreign })).status, 401);
    const keyPem = await api.client.get('id:signing-key');
    const { createPrivateKey } = await import('node:crypto');
    const expired = issueToken(createPrivateKey(keyPem!), { issuer: 'x', tenant: 'dev', username: 'alice', ttlS: 60, now: Date.now() - 3600_000 }).token;
    const exp = await call(primary, 'GET', '/v3/pods', { token: expired });
    assert.equal(exp.status, 401);
    assert.match(exp.body.message, /expired/);
    const carol = await token(other, 'carol', 'carol-secret-pw');
    const cross = await call(primary, 'GET', '/v3/pods', { token: carol });
    assert.equal(cross.status, 401);
    assert.match(cross.body.message, /tenant "other"/);
    assert.equal((await call(other, 'GET', '/v3/pods', { token: carol })).status, 200);
    assert.equal((await call(primary, 'GET', '/v3/pods', { token: 'not.a.jwt' })).status, 401);
  });
});
