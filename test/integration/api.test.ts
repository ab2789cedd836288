// The REST API against a real Redis, served on a real socket (no agent: pods stay REQUESTED).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { repoRoot } from '../helpers/root.js';

const ADMIN = 'admin-token-0123456789abcdef';
const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdef0';
const OTHER = 'other-tenant-token-0123456789';

describe('REST API', () => {
  let api: ApiServer;
  let base: string;
  const kicked: string[] = [];

  before(async () => {
    api = await startApiServer(
      {
        PODS_ADMIN_TOKEN: ADMIN,
        PODS_TENANT: 'dev',
        PODS_REDIS_PREFIX: 'api:',
        PODS_MAX_BODY_BYTES: '4096',
        PODS_EXTRA_TOKENS: JSON.stringify([
          { token: ALICE, tenant: 'dev', username: 'alice' },
          { token: BOB, tenant: 'dev', username: 'bob' },
          { token: OTHER, tenant: 'other', username: 'mallory' },
        ]),
      },
      { kick: (t, p) => kicked.push(`${t}/${p}`) },
    );
    base = api.base;
  });
  after(async () => {
    await api?.stop();
  });

  async function call(method: string, path: string, opts: { token?: string | null; body?: unknown; raw?: string; type?: string; host?: string } = {}) {
    const token = opts.token === undefined ? ADMIN : opts.token;
    const headers: Record<string, string> = token ? { 'x-tapis-token': token } : {};
    if (opts.host) headers.host = opts.host;
    let body = opts.raw;
    if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined) headers['content-type'] = opts.type ?? 'application/json';
    const res = await request(`${base}${path}`, { method: method as 'GET', headers, body });
    const text = await res.body.text();
    return { status: res.statusCode, type: res.headers['content-type'], body: JSON.parse(text) };
  }

  const expectError = async (p: Promise<{ status: number; type: unknown; body: any }>, status: number, pattern: RegExp) => {
    const r = await p;
    assert.equal(r.status, status, `status of ${JSON.stringify(r.body)}`);
    assert.equal(r.type, 'application/json');
    assert.equal(r.body.status, 'error');
    assert.equal(r.body.result, null);
    assert.equal(typeof r.body.version, 'string');
    assert.deepEqual(r.body.metadata, {});
    assert.match(r.body.message, pattern);
  };

  test('healthcheck needs no token and answers in the envelope', async () => {
    const r = await call('GET', '/v3/pods/healthcheck', { token: null });
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    assert.deepEqual(Object.keys(r.body).sort(), ['message', 'metadata', 'result', 'status', 'version']);
  });

  test('no token or a wrong token is a 401', async () => {
    await expectError(call('GET', '/v3/pods', { token: null }), 401, /X-Tapis-Token/);
    await expectError(call('GET', '/v3/pods', { token: 'not-a-real-token-at-all' }), 401, /not valid/);
  });

  test('only admins change the image allow-list', async () => {
    await expectError(call('POST', '/v3/pods/images', { token: ALICE, body: { image: 'pods-test/httpd' } }), 403, /only admins of tenant "dev"/);
    const added = await call('POST', '/v3/pods/images', { body: { image: 'pods-test/httpd:v1', description: 'test' } });
    assert.equal(added.status, 200);
    assert.equal(added.body.result.image, 'pods-test/httpd', 'stored without its tag');
    await expectError(call('POST', '/v3/pods/images', { body: { image: 'pods-test/httpd' } }), 400, /already on the allow-list/);
    const list = await call('GET', '/v3/pods/images', { token: ALICE });
    assert.deepEqual(list.body.result.map((i: { image: string }) => i.image), ['pods-test/httpd']);
    assert.equal((await call('POST', '/v3/pods/images', { body: { image: 'gone/image' } })).status, 200);
    await expectError(call('DELETE', '/v3/pods/images/gone%2Fimage', { token: ALICE }), 403, /only admins of tenant "dev"/);
    assert.equal((await call('DELETE', '/v3/pods/images/gone%2Fimage')).status, 200);
    await expectError(call('GET', '/v3/pods/images/gone%2Fimage'), 404, /not on the allow-list/);
  });

  test('create: a valid pod is stored as REQUESTED and handed to the reconciler', async () => {
    const r = await call('POST', '/v3/pods', { token: ALICE, body: { pod_id: 'alicepod', image: 'pods-test/httpd:any-tag', description: 'mine' } });
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    assert.equal(r.body.result.status, 'REQUESTED');
    assert.equal(r.body.result.url, 'alicepod.pods.dev.localhost');
    assert.deepEqual(r.body.result.resources, { cpu_request: 250, cpu_limit: 2000, mem_request: 256, mem_limit: 3072, gpus: 0 });
    assert.deepEqual(r.body.result.networking, { default: { protocol: 'http', port: 5000, url: 'alicepod.pods.dev.localhost' } });
    assert.ok(kicked.includes('dev/alicepod'));
  });

  test('validation errors are 400s whose message names the field', async () => {
    const post = (body: unknown) => call('POST', '/v3/pods', { body });
    await expectError(post({ pod_id: 'Bad_Id', image: 'pods-test/httpd' }), 400, /^pod_id: /);
    await expectError(post({ pod_id: 'ab', image: 'pods-test/httpd' }), 400, /^pod_id: .*3 to 64/);
    await expectError(post({ pod_id: 'images', image: 'pods-test/httpd' }), 400, /^pod_id: .*reserved/);
    await expectError(post({ image: 'pods-test/httpd' }), 400, /^pod_id: /);
    await expectError(post({ pod_id: 'okpod', image: 'pods-test/httpd', colour: 'red' }), 400, /^colour: unknown field/);
    await expectError(post({ pod_id: 'okpod', image: 'pods-test/httpd', networking: { default: { protocol: 'udp', port: 5000 } } }), 400, /^networking\.default\.protocol: /);
    await expectError(post({ pod_id: 'okpod', image: 'pods-test/httpd', networking: { default: { port: 70000 } } }), 400, /^networking\.default\.port: /);
    await expectError(post({ pod_id: 'okpod', image: 'pods-test/httpd', networking: { a: {}, b: {}, c: {}, d: {} } }), 400, /^networking: .*at most 3/);
    await expectError(post({ pod_id: 'okpod', image: 'pods-test/httpd', resources: { cpu_request: 3000, cpu_limit: 1000 } }), 400, /^resources\.cpu_request: .*cpu_limit/);
    await expectError(post({ pod_id: 'okpod', image: 'pods-test/httpd', resources: { mem_limit: 999999 } }), 400, /^resources\.mem_limit: /);
    await expectError(post({ pod_id: 'okpod', image: 'pods-test/httpd', time_to_stop_default: 10 }), 400, /^time_to_stop_default: /);
    await expectError(post({ pod_id: 'okpod', image: 'pods-test/httpd', environment_variables: { 'BAD-NAME': 'x' } }), 400, /^environment_variables\.BAD-NAME: environment variable names must match/);
    await expectError(post({ pod_id: 'okpod', image: 'not/allowed' }), 400, /^image: .*allow-list/);
    await expectError(post({ pod_id: 'okpod' }), 400, /^image: .*image or a template/);
    await expectError(post({ pod_id: 'okpod', pod_template: 'neo4j' }), 400, /^template: /);
    await expectError(post({ pod_id: 'alicepod', image: 'pods-test/httpd' }), 400, /^pod_id: .*already exists/);
    await expectError(call('POST', '/v3/pods', { raw: '{"pod_id": ' }), 400, /not valid JSON/);
    await expectError(call('POST', '/v3/pods', { raw: '[1,2]' }), 400, /JSON object/);
    await expectError(call('POST', '/v3/pods', { raw: 'pod_id=x', type: 'application/x-www-form-urlencoded' }), 415, /JSON/);
    await expectError(call('POST', '/v3/pods', { body: { pod_id: 'big', description: 'x'.repeat(5000) } }), 413, /larger than/);
    // Sent in chunks, with no Content-Length to refuse it by: stopped at the limit all the same.
    const chunks = async function* () {
      for (let i = 0; i < 10; i++) yield Buffer.from(i ? 'x'.repeat(1000) : '{"pod_id": "big", "description": "');
    };
    const chunked = await request(`${base}/v3/pods`, { method: 'POST', headers: { 'x-tapis-token': ADMIN, 'content-type': 'application/json' }, body: Readable.from(chunks()) });
    const chunkedText = await chunked.body.text();
    await expectError(Promise.resolve({ status: chunked.statusCode, type: chunked.headers['content-type'], body: JSON.parse(chunkedText) }), 413, /larger than/);
    const list = await call('GET', '/v3/pods');
    assert.deepEqual(list.body.result.map((p: { pod_id: string }) => p.pod_id), ['alicepod'], 'nothing was stored by a bad request');
  });

  test('permissions: other users get 403, other tenants cannot see the pod at all', async () => {
    await expectError(call('GET', '/v3/pods/alicepod', { token: BOB }), 403, /READ/);
    await expectError(call('GET', '/v3/pods/alicepod/stop', { token: BOB }), 403, /ADMIN/);
    await expectError(call('DELETE', '/v3/pods/alicepod', { token: BOB }), 403, /ADMIN/);
    // A token of another tenant is refused here; on its own tenant's URL the pod does not exist.
    await expectError(call('GET', '/v3/pods/alicepod', { token: OTHER }), 401, /is for tenant "other", not "dev"/);
    assert.equal((await call('POST', '/v3/admin/tenants', { body: { tenant_id: 'other', base_url: 'http://other.test' } })).status, 200);
    await expectError(call('GET', '/v3/pods/alicepod', { token: OTHER, host: 'other.test' }), 404, /not found/);
    assert.deepEqual((await call('GET', '/v3/pods', { token: BOB })).body.result, []);
    assert.deepEqual((await call('GET', '/v3/pods', { token: OTHER, host: 'other.test' })).body.result, []);
    assert.equal((await call('GET', '/v3/pods/alicepod', { token: ALICE })).status, 200);
    await expectError(call('GET', '/v3/pods/nosuchpod'), 404, /not found/);
  });

  test('PUT stores changes, validates them, and leaves the pod unchanged on error', async () => {
    const r = await call('PUT', '/v3/pods/alicepod', { token: ALICE, body: { description: 'updated', resources: { cpu_limit: 500, cpu_request: 100 } } });
    assert.equal(r.status, 200);
    assert.equal(r.body.result.description, 'updated');
    assert.equal(r.body.result.resources.cpu_limit, 500);
    assert.equal(r.body.result.resources.mem_limit, 3072);
    await expectError(call('PUT', '/v3/pods/alicepod', { token: ALICE, body: { resources: { cpu_request: 900 } } }), 400, /^resources\.cpu_request/);
    await expectError(call('PUT', '/v3/pods/alicepod', { token: ALICE, body: { image: 'not/allowed' } }), 400, /^image: /);
    await expectError(call('PUT', '/v3/pods/alicepod', { token: ALICE, body: { pod_id: 'rename' } }), 400, /pod_id/);
    const now = await call('GET', '/v3/pods/alicepod', { token: ALICE });
    assert.equal(now.body.result.resources.cpu_request, 100);
    assert.equal(now.body.result.image, 'pods-test/httpd:any-tag');
  });

  test('stop, start and restart are GETs that change the desired state', async () => {
    const stop = await call('GET', '/v3/pods/alicepod/stop', { token: ALICE });
    assert.equal(stop.status, 200);
    assert.equal(stop.body.result.status_requested, 'OFF');
    assert.equal(stop.body.result.status, 'STOPPED', 'never placed, so nothing to stop');
    const start = await call('GET', '/v3/pods/alicepod/start', { token: ALICE });
    assert.equal(start.body.result.status_requested, 'ON');
    assert.equal(start.body.result.status, 'REQUESTED');
    const logs = await call('GET', '/v3/pods/alicepod/logs', { token: ALICE });
    assert.deepEqual(Object.keys(logs.body.result).sort(), ['action_logs', 'logs']);
    assert.ok(logs.body.result.action_logs.some((l: string) => /stop requested by alice/.test(l)));
  });

  test('operations not built yet answer 501 in the envelope; unknown paths 404', async () => {
    await expectError(call('GET', '/v3/traefik-config'), 501, /Traefik configuration/);
    // pod_auth is built: a pod without tapis_auth has no login (404 in the envelope).
    await expectError(call('GET', '/v3/pods/alicepod/auth'), 404, /tapis_auth/);
    await expectError(call('GET', '/v3/pods/alicepod/nothing-here'), 404, /no such endpoint/);
  });

  test('exec and files need a running pod; volumes wait for a host, and bad input names the field', async () => {
    await expectError(call('POST', '/v3/pods/alicepod/exec', { token: ALICE, body: { commands: [['ls']] } }), 409, /not running/);
    await expectError(call('POST', '/v3/pods/alicepod/exec', { token: ALICE, body: { commands: [] } }), 400, /^commands: /);
    await expectError(call('POST', '/v3/pods/alicepod/exec', { token: ALICE, body: { commands: [['ls']], command_timeout: 0 } }), 400, /^command_timeout: /);
    const v = await call('POST', '/v3/pods/volumes', { token: ALICE, body: { volume_id: 'vol1', size_limit: 10 } });
    assert.equal(v.status, 200);
    assert.deepEqual({ id: v.body.result.volume_id, status: v.body.result.status, size: v.body.result.size, limit: v.body.result.size_limit }, { id: 'vol1', status: 'REQUESTED', size: 0, limit: 10 });
    await expectError(call('POST', '/v3/pods/volumes', { token: ALICE, body: { volume_id: 'vol1' } }), 400, /already exists/);
    await expectError(call('POST', '/v3/pods/volumes', { token: ALICE, body: { volume_id: 'Bad_Id' } }), 400, /^volume_id: /);
    await expectError(call('POST', '/v3/pods/volumes', { token: ALICE, body: { volume_id: 'vol2', size_limit: 0 } }), 400, /size_limit/);
    await expectError(call('GET', '/v3/pods/volumes/vol1', { token: BOB }), 404, /not found/);
    await expectError(call('GET', '/v3/pods/volumes/vol1/list', { token: ALICE }), 503, /no host/);
    await expectError(call('POST', '/v3/pods/snapshots', { token: ALICE, body: { snapshot_id: 'snap1', source_volume_id: 'nope' } }), 404, /^source_volume_id: /);
    await expectError(call('POST', '/v3/pods/snapshots', { token: ALICE, body: { snapshot_id: 'snap1', source_volume_id: 'vol1' } }), 409, /REQUESTED/);
    await expectError(call('POST', '/v3/pods', { token: ALICE, body: { pod_id: 'mounter', image: 'busybox', volume_mounts: { vol1: { type: 'pvc' } } } }), 400, /^volume_mounts\.vol1\.type: /);
    await expectError(call('POST', '/v3/pods', { token: ALICE, body: { pod_id: 'mounter', image: 'busybox', volume_mounts: { '/data': { source_id: 'vol1', sub_path: '../x' } } } }), 400, /sub_path/);
    const perms = await call('POST', '/v3/pods/volumes/vol1/permissions', { token: ALICE, body: { user: 'bob', level: 'READ' } });
    assert.deepEqual(perms.body.result, { permissions: ['alice:ADMIN', 'bob:READ'] });
    assert.equal((await call('GET', '/v3/pods/volumes/vol1', { token: BOB })).status, 200, 'READ may get');
    await expectError(call('DELETE', '/v3/pods/volumes/vol1', { token: BOB }), 403, /ADMIN/);
    assert.deepEqual((await call('GET', '/v3/pods/volumes', { token: BOB })).body.result.map((x: { volume_id: string }) => x.volume_id), ['vol1']);
    assert.equal((await call('DELETE', '/v3/pods/volumes/vol1', { token: ALICE })).status, 200);
    await expectError(call('GET', '/v3/pods/volumes/vol1', { token: ALICE }), 404, /not found/);
  });

  test('credentials: generated per pod, for USER and above', async () => {
    const r = await call('GET', '/v3/pods/alicepod/credentials', { token: ALICE });
    assert.equal(r.status, 200);
    assert.equal(r.body.result.user_username, 'alicepod');
    assert.match(r.body.result.user_password, /^[A-Za-z0-9]{32}$/);
    await expectError(call('GET', '/v3/pods/alicepod/credentials', { token: BOB }), 403, /USER/);
    const derived = await call('GET', '/v3/pods/alicepod/derived', { token: ALICE });
    assert.equal(derived.body.result.pod_id, 'alicepod');
  });

  test('permissions: READ < USER < ADMIN, and one ADMIN always remains', async () => {
    const list = await call('GET', '/v3/pods/alicepod/permissions', { token: ALICE });
    assert.deepEqual(list.body.result, { permissions: ['alice:ADMIN'] });
    const set = await call('POST', '/v3/pods/alicepod/permissions', { token: ALICE, body: { user: 'bob', level: 'READ' } });
    assert.deepEqual(set.body.result, { permissions: ['alice:ADMIN', 'bob:READ'] });
    assert.equal((await call('GET', '/v3/pods/alicepod', { token: BOB })).status, 200, 'READ may get');
    assert.equal((await call('GET', '/v3/pods/alicepod/logs', { token: BOB })).status, 200, 'READ may read logs');
    await expectError(call('GET', '/v3/pods/alicepod/permissions', { token: BOB }), 403, /USER/);
    await expectError(call('PUT', '/v3/pods/alicepod', { token: BOB, body: { description: 'bob was here' } }), 403, /USER/);
    await expectError(call('POST', '/v3/pods/alicepod/permissions', { token: BOB, body: { user: 'bob', level: 'ADMIN' } }), 403, /ADMIN/);
    await call('POST', '/v3/pods/alicepod/permissions', { token: ALICE, body: { user: 'bob', level: 'USER' } });
    assert.equal((await call('PUT', '/v3/pods/alicepod', { token: BOB, body: { description: 'bob was here' } })).status, 200, 'USER may update');
    await expectError(call('GET', '/v3/pods/alicepod/restart', { token: BOB }), 403, /ADMIN/);
    await expectError(call('POST', '/v3/pods/alicepod/permissions', { token: ALICE, body: { user: 'bob', level: 'OWNER' } }), 400, /^level: /);
    await expectError(call('DELETE', '/v3/pods/alicepod/permissions/alice', { token: ALICE }), 400, /last ADMIN/);
    await expectError(call('POST', '/v3/pods/alicepod/permissions', { token: ALICE, body: { user: 'alice', level: 'READ' } }), 400, /last ADMIN/);
    await expectError(call('DELETE', '/v3/pods/alicepod/permissions/carol', { token: ALICE }), 404, /no permission/);
    assert.deepEqual((await call('DELETE', '/v3/pods/alicepod/permissions/bob', { token: ALICE })).body.result, { permissions: ['alice:ADMIN'] });
    await expectError(call('GET', '/v3/pods/alicepod', { token: BOB }), 403, /READ/);
  });

  test('the served OpenAPI document lists the built operations under the reference\'s operationIds', async () => {
    const r = await call('GET', '/v3/pods/openapi.json', { token: null });
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    assert.match(r.body.openapi, /^3\./);
    const ops = Object.values(r.body.paths as Record<string, Record<string, { operationId: string }>>).flatMap((m) => Object.values(m).map((o) => o.operationId));
    // tapipy's own pods spec, kept in the repository with its licence (test/compat/reference/README.md).
    const reference = await readFile(path.join(repoRoot(), 'test', 'compat', 'reference', 'tapis-pods-openapi-v3.yml'), 'utf8');
    const known = new Set([...reference.matchAll(/operationId: (\w+)/g)].map((m) => m[1]));
    for (const op of ops) assert.ok(known.has(op), `${op} is an operationId of the reference`);
    for (const op of ['create_pod', 'get_pod', 'get_pod_logs', 'get_pod_credentials', 'set_pod_permission', 'restart_pod']) assert.ok(ops.includes(op), op);
    assert.equal(ops.includes('pod_auth'), false, 'operations that answer 501 are not listed');
    const create = r.body.paths['/pods'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(create.required, ['pod_id']);
    assert.equal(create.properties.pod_id.pattern, '^[a-z][a-z0-9]+$');
  });

  test('DELETE needs ADMIN; as in Tapis it answers an empty result and the pod is gone for users at once', async () => {
    const r = await call('DELETE', '/v3/pods/alicepod', { token: ALICE });
    assert.equal(r.status, 200);
    assert.equal(r.body.result, '');
    assert.equal(r.body.message, 'Pod deleted successfully.');
    // No agent here: its teardown waits, out of sight.
    assert.equal((await call('GET', '/v3/pods/alicepod', { token: ALICE })).status, 404);
    assert.ok(!(await call('GET', '/v3/pods', { token: ALICE })).body.result.some((p: { pod_id: string }) => p.pod_id === 'alicepod'));
    assert.equal((await call('DELETE', '/v3/pods/alicepod', { token: ALICE })).status, 404);
  });
});
