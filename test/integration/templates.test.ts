// The templates API and pods made from templates, against a real Redis on a real socket.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { DEFAULT_TEMPLATES_DIR, LOCAL_TEMPLATES_DIR, installBuiltinTemplates } from '../../coordinator/builtin-templates.js';
import { createLogger } from '../../shared/log.js';
import type { Stores } from '../../coordinator/stores.js';

const ADMIN = 'admin-token-0123456789abcdef';
const ALICE = 'alice-token-0123456789abcdef';

describe('templates', () => {
  let api: ApiServer;
  let base: string;
  let stores: Stores;

  before(async () => {
    api = await startApiServer(
      { PODS_ADMIN_TOKEN: ADMIN, PODS_REDIS_PREFIX: 'tpl:', PODS_EXTRA_TOKENS: JSON.stringify([{ token: ALICE, tenant: 'dev', username: 'alice' }]) },
      {
        // Twice, as two starts of the coordinator would.
        prepare: async (s, log) => {
          await installBuiltinTemplates(DEFAULT_TEMPLATES_DIR, s.templates, log);
          await installBuiltinTemplates(DEFAULT_TEMPLATES_DIR, s.templates, log);
        },
      },
    );
    base = api.base;
    stores = api.stores;
  });
  after(async () => {
    await api?.stop();
  });

  async function call(token: string, method: string, path: string, body?: unknown) {
    const headers: Record<string, string> = { 'x-tapis-token': token };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await request(`${base}${path}`, { method: method as 'GET', headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  }

  test('the built-in templates are installed once, however often the coordinator starts', async () => {
    const list = await call(ALICE, 'GET', '/v3/pods/templates');
    assert.equal(list.status, 200);
    const ids = list.body.result.map((t: { template_id: string }) => t.template_id);
    for (const id of ['jupyter', 'mariadb', 'neo4j', 'postgres', 'redis']) assert.ok(ids.includes(id));
    const tags = await call(ALICE, 'GET', '/v3/pods/templates/redis/tags');
    assert.deepEqual(tags.body.result.map((t: { tag: string }) => t.tag), ['7', 'latest'], 'a second start added no version');
    assert.match(tags.body.result[0].tag_timestamp, /^7@\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d$/);
    const all = await call(ALICE, 'GET', '/v3/pods/templates/tags');
    assert.ok(Array.isArray(all.body.result.neo4j));
  });

  test('every built-in template has a latest tag, the newest tag\'s definition', async () => {
    const all = await call(ALICE, 'GET', '/v3/pods/templates/tags?full=true');
    for (const [id, versions] of Object.entries(all.body.result as Record<string, Array<{ tag: string; pod_definition: unknown; commit_message: string }>>)) {
      const latest = versions.filter((t) => t.tag === 'latest');
      assert.equal(latest.length, 1, `${id} has one latest version`);
      const newest = versions.filter((t) => t.tag !== 'latest').at(-1)!;
      assert.deepEqual(latest[0]!.pod_definition, newest.pod_definition, `${id}:latest is ${id}:${newest.tag}`);
      assert.match(latest[0]!.commit_message, new RegExp(`^latest is tag ${newest.tag}: `));
    }
    const one = await call(ALICE, 'GET', '/v3/pods/templates/redis/tags/latest');
    assert.equal(one.status, 200);
    assert.equal(one.body.result[0].pod_definition.image, 'redis:7');
  });

  test('a pod from a template with no tag is made from its latest tag, as in Tapis', async () => {
    const r = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'notag', template: 'redis' });
    assert.equal(r.status, 200, r.body.message);
    assert.equal(r.body.result.image, 'redis:7');
    assert.equal(r.body.result.template, 'redis');
    assert.equal(r.body.result.networking.default.protocol, 'tcp');
    const actions = (await call(ALICE, 'GET', '/v3/pods/notag/logs')).body.result.action_logs as string[];
    assert.ok(actions.some((a) => /from template redis:latest@\d{4}-/.test(a)), actions.join('\n'));
    const older = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'oldertag', pod_template: 'postgres' });
    assert.equal(older.status, 200, older.body.message);
    assert.equal(older.body.result.image, 'postgres:16');
  });

  test("a site's local tags (templates/local/) become latest; without them latest is the public tag again", async () => {
    const log = createLogger('test', 'silent');
    await installBuiltinTemplates(DEFAULT_TEMPLATES_DIR, stores.templates, log, LOCAL_TEMPLATES_DIR);
    await installBuiltinTemplates(DEFAULT_TEMPLATES_DIR, stores.templates, log, LOCAL_TEMPLATES_DIR);
    const tags = await call(ALICE, 'GET', '/v3/pods/templates/redis/tags');
    assert.deepEqual(tags.body.result.map((t: { tag: string }) => t.tag), ['7', 'latest', 'local', 'latest'], 'one new latest version, once');
    const latest = (await call(ALICE, 'GET', '/v3/pods/templates/postgres/tags/latest')).body.result.at(-1);
    assert.equal(latest.pod_definition.image, 'pods-test/postgres:bookworm');
    assert.match(latest.commit_message, /^latest is tag local: /);

    const local = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'localcache', template: 'redis' });
    assert.equal(local.status, 200, local.body.message);
    assert.equal(local.body.result.image, 'pods-test/redis:bookworm');
    assert.equal((await call(ALICE, 'POST', '/v3/pods', { pod_id: 'publiccache', template: 'redis:7' })).body.result.image, 'redis:7', 'the public tag stays');

    await installBuiltinTemplates(DEFAULT_TEMPLATES_DIR, stores.templates, log);
    const back = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'backcache', template: 'redis' });
    assert.equal(back.body.result.image, 'redis:7');
    assert.equal((await call(ALICE, 'GET', '/v3/pods/localcache')).body.result.image, 'pods-test/redis:bookworm', 'a pod keeps what it was made from');
  });

  test("only site admins change the site's templates and tags; users add templates of their own", async () => {
    assert.equal((await call(ALICE, 'POST', '/v3/pods/templates', { template_id: 'mine' })).status, 200);
    assert.equal((await call(ADMIN, 'POST', '/v3/pods/templates', { template_id: 'web', description: 'a web server' })).status, 200);
    const dup = await call(ADMIN, 'POST', '/v3/pods/templates', { template_id: 'web' });
    assert.equal(dup.status, 400);
    assert.match(dup.body.message, /^template_id: /);
    assert.equal((await call(ALICE, 'POST', '/v3/pods/templates/web/tags', { tag: 'v1', pod_definition: { image: 'x/y' } })).status, 403);
    const bad = await call(ADMIN, 'POST', '/v3/pods/templates/web/tags', { tag: 'v1', pod_definition: { image: 'x/y', user: 'root' } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /^pod_definition\.user: templates may not run containers as root/);
    const put = await call(ADMIN, 'PUT', '/v3/pods/templates/web', { description: 'changed' });
    assert.equal(put.body.result.description, 'changed');
  });

  test('a pod from a template: id:tag picks the newest version, @timestamp an exact one; user fields win', async () => {
    const v1 = await call(ADMIN, 'POST', '/v3/pods/templates/web/tags', {
      tag: 'v1',
      commit_message: 'first',
      pod_definition: { image: 'pods-test/httpd', description: 'from template', environment_variables: { MODE: 'one', KEEP: 'yes' } },
    });
    assert.equal(v1.status, 200);
    const v1stamp = (v1.body.result.tag_timestamp as string).split('@')[1];
    const v2 = await call(ADMIN, 'POST', '/v3/pods/templates/web/tags', { tag: 'v1', pod_definition: { image: 'pods-test/httpd', environment_variables: { MODE: 'two' } } });
    assert.notEqual(v2.body.result.tag_timestamp, v1.body.result.tag_timestamp);

    const newest = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'fromnewest', template: 'web:v1' });
    assert.equal(newest.status, 200, newest.body.message);
    assert.equal(newest.body.result.environment_variables.MODE, 'two');
    const exact = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'fromexact', template: `web:v1@${v1stamp}`, environment_variables: { MODE: 'mine' } });
    assert.equal(exact.status, 200, exact.body.message);
    assert.deepEqual(exact.body.result.environment_variables, { MODE: 'mine', KEEP: 'yes' });
    assert.equal(exact.body.result.description, 'from template');
    const derived = await call(ALICE, 'GET', '/v3/pods/fromexact/derived');
    assert.equal(derived.body.result.image, 'pods-test/httpd');
    assert.equal(derived.body.result.template, `web:v1@${v1stamp}`);
  });

  test('template errors are 400s naming the template field', async () => {
    for (const [template, pattern] of [
      ['nosuch', /^template: template "nosuch" does not exist/],
      ['web:v9', /^template: template "web" has no tag "v9"; its tags: v1$/],
      ['web', /^template: template "web" has no tag "latest"; its tags: v1$/],
      ['web:v1@2020-01-01-00:00:00', /^template: template "web" has no tag "v1@2020-01-01-00:00:00"/],
      ['Web!', /^template: "Web!" is not of the form/],
    ] as const) {
      const r = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'tplerr', template });
      assert.equal(r.status, 400, template);
      assert.match(r.body.message, pattern);
    }
    const old = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'oldname', pod_template: 'web:v1' });
    assert.equal(old.status, 200, 'pod_template is the older name of template');
    const img = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'otherimage', template: 'web:v1', image: 'not/allowed' });
    assert.equal(img.status, 400, "the user's own image is checked against the allow-list");
    assert.match(img.body.message, /^image: /);
  });

  test('a redis pod gets a dedicated port in its URL only once it is dispatched; credentials are generated', async () => {
    const r = await call(ALICE, 'POST', '/v3/pods', { pod_id: 'cache1', template: 'redis:7' });
    assert.equal(r.status, 200, r.body.message);
    assert.equal(r.body.result.networking.default.protocol, 'tcp');
    assert.equal(r.body.result.networking.plain.dedicated_port, true);
    const creds = await call(ALICE, 'GET', '/v3/pods/cache1/credentials');
    assert.equal(creds.body.result.user_username, 'cache1');
    assert.equal(JSON.stringify(r.body.result).includes(creds.body.result.user_password), false, 'the password is not in the pod view');
    const ports = await stores.pods.allocatePorts('dev', 'cache1', ['plain'], [20000, 20001]);
    const again = await stores.pods.allocatePorts('dev', 'cache1', ['plain'], [20000, 20001]);
    assert.deepEqual(ports, again, 'allocation is idempotent');
    const got = await call(ALICE, 'GET', '/v3/pods/cache1');
    assert.equal(got.body.result.networking.plain.url, `cache1-plain.pods.dev.localhost:${ports.plain}`);
    await stores.pods.allocatePorts('dev', 'fromexact', ['x'], [20000, 20001]);
    await assert.rejects(stores.pods.allocatePorts('dev', 'fromnewest', ['x'], [20000, 20001]), /PORTS_EXHAUSTED/);
    await stores.pods.releasePorts('dev', 'cache1');
    assert.equal(Object.keys((await stores.pods.allocatePorts('dev', 'fromnewest', ['x'], [20000, 20001]))).length, 1, 'a released port is free again');
  });
});
