// Template permissions, templates of users and of the site, save_pod_as_template_tag, add_images
// and the Jupyter helpers, against a real Redis on a real socket (no agent: pods stay REQUESTED).
// Every attack here is a request that must fail; each of these operations answered 501 before.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FormData, request } from 'undici';
import { notebookPath } from '../../coordinator/api/jupyter.js';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { freePort } from '../helpers/ports.js';

const SITE = 'site-admin-token-0123456789abcdef';
const token = (name: string) => `${name}-token-0123456789abcdef`;
const IMAGE = 'pods-test/httpd';

describe('template permissions, saving pods as tags, bulk images, Jupyter', () => {
  let api: ApiServer;
  let dev: string;
  let t2: string;

  before(async () => {
    const port = await freePort();
    dev = `http://127.0.0.1:${port}`;
    t2 = `http://localhost:${port}`;
    const statics = [
      ...['alice', 'bob', 'carol', 'dave'].map((username) => ({ token: token(username), tenant: 'dev', username })),
      { token: token('dana'), tenant: 'dev', username: 'dana', admin: true },
      { token: token('eve'), tenant: 't2', username: 'eve' },
      { token: token('tina'), tenant: 't2', username: 'tina', admin: true },
    ];
    api = await startApiServer(
      { PODS_ADMIN_TOKEN: SITE, PODS_TENANT: 'dev', PODS_PUBLIC_URL: dev, PODS_REDIS_PREFIX: 'tplperm:', PODS_EXTRA_TOKENS: JSON.stringify(statics), PODS_JUPYTER_TEMPLATE: 'jupytertest' },
      { port },
    );
    assert.equal((await call('site', 'POST', '/v3/admin/tenants', { tenant_id: 't2', base_url: t2 })).status, 200);
    assert.equal((await call('site', 'POST', '/v3/pods/images', { image: IMAGE, tenants: ['dev', 't2'] })).status, 200);
    // A site template (a site admin's) with a tag, as the built-in ones are.
    assert.equal((await call('site', 'POST', '/v3/pods/templates', { template_id: 'web', description: 'the site web server' })).status, 200);
    const tag = await call('site', 'POST', '/v3/pods/templates/web/tags', { tag: 'v1', pod_definition: { image: IMAGE, environment_variables: { MODE: 'site', PASSWORD: '{{user_password}}' } } });
    assert.equal(tag.status, 200, tag.body.message);
  });
  after(async () => {
    await api?.stop();
  });

  /** A call as `who` (a name of the tokens above, or 'site'), in who's tenant. */
  async function call(who: string, method: string, path: string, body?: unknown, raw?: string) {
    const base = who === 'eve' || who === 'tina' ? t2 : dev;
    const headers: Record<string, string> = { 'x-tapis-token': who === 'site' ? SITE : token(who) };
    if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
    const res = await request(`${base}${path}`, { method: method as 'GET', headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  }
  const ids = (r: { body: { result: Array<{ template_id: string }> } }) => r.body.result.map((t) => t.template_id);
  const perms = async (who: string, id: string) => (await call(who, 'GET', `/v3/pods/templates/${id}/permissions`)).body.result?.permissions;

  test("a user's own template: its creator is ADMIN; others of the tenant do not see it until it is shared", async () => {
    const made = await call('alice', 'POST', '/v3/pods/templates', { template_id: 'alicetpl', description: 'mine' });
    assert.equal(made.status, 200, made.body.message);
    assert.deepEqual(Object.keys(made.body.result).sort(), ['added_by', 'archive_message', 'creation_ts', 'description', 'metatags', 'template_id', 'update_ts']);
    assert.deepEqual(await perms('alice', 'alicetpl'), ['alice:ADMIN']);
    assert.ok(ids(await call('alice', 'GET', '/v3/pods/templates')).includes('alicetpl'));
    assert.ok(ids(await call('alice', 'GET', '/v3/pods/templates')).includes('web'), "the site's templates are everyone's");

    const bobList = ids(await call('bob', 'GET', '/v3/pods/templates'));
    assert.ok(!bobList.includes('alicetpl') && bobList.includes('web'));
    assert.equal((await call('bob', 'GET', '/v3/pods/templates/alicetpl')).status, 403);
    assert.match((await call('bob', 'GET', '/v3/pods/templates/alicetpl')).body.message, /you need READ permission on template "alicetpl"/);
    assert.equal((await call('bob', 'GET', '/v3/pods/templates/tags')).body.result.alicetpl, undefined);
    assert.equal((await call('bob', 'GET', '/v3/pods/templates/alicetpl/tags')).status, 403);
    assert.equal((await call('site', 'GET', '/v3/pods/templates/alicetpl')).status, 200, 'site admins see every template');
  });

  test('READ gets and uses a template, USER also changes it and adds tags, ADMIN also shares and deletes it', async () => {
    assert.equal((await call('alice', 'POST', '/v3/pods/templates/alicetpl/tags', { tag: 'v1', pod_definition: { image: IMAGE, environment_variables: { MODE: 'alice' } } })).status, 200);
    const share = await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'bob', level: 'READ' });
    assert.equal(share.status, 200, share.body.message);
    assert.deepEqual(share.body.result.permissions, ['alice:ADMIN', 'bob:READ']);
    assert.equal((await call('bob', 'GET', '/v3/pods/templates/alicetpl')).status, 200);
    assert.equal((await call('bob', 'GET', '/v3/pods/templates/alicetpl/tags/v1')).status, 200);
    for (const [method, path, body] of [
      ['PUT', '/v3/pods/templates/alicetpl', { description: 'bob was here' }],
      ['POST', '/v3/pods/templates/alicetpl/tags', { tag: 'bob', pod_definition: { image: IMAGE } }],
      ['GET', '/v3/pods/templates/alicetpl/permissions', undefined],
      ['POST', '/v3/pods/templates/alicetpl/permissions', { user: 'bob', level: 'ADMIN' }],
      ['DELETE', '/v3/pods/templates/alicetpl', undefined],
    ] as const) {
      const r = await call('bob', method, path, body);
      assert.equal(r.status, 403, `${method} ${path} with READ: ${r.body.message}`);
    }
    await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'bob', level: 'USER' });
    assert.equal((await call('bob', 'PUT', '/v3/pods/templates/alicetpl', { description: 'bob was here' })).body.result.description, 'bob was here');
    assert.equal((await call('bob', 'POST', '/v3/pods/templates/alicetpl/tags', { tag: 'bob', pod_definition: { image: IMAGE } })).status, 200);
    assert.deepEqual(await perms('bob', 'alicetpl'), ['alice:ADMIN', 'bob:USER']);
    for (const [method, path, body] of [
      ['POST', '/v3/pods/templates/alicetpl/permissions', { user: 'bob', level: 'ADMIN' }],
      ['DELETE', '/v3/pods/templates/alicetpl/permissions/alice', undefined],
      ['DELETE', '/v3/pods/templates/alicetpl', undefined],
    ] as const) {
      assert.equal((await call('bob', method, path, body)).status, 403, `${method} ${path} with USER`);
    }

    const last = await call('alice', 'DELETE', '/v3/pods/templates/alicetpl/permissions/alice');
    assert.equal(last.status, 400);
    assert.match(last.body.message, /last ADMIN/);
    assert.equal((await call('alice', 'DELETE', '/v3/pods/templates/alicetpl/permissions/carol')).status, 404, 'carol has none to remove');
    const gone = await call('alice', 'DELETE', '/v3/pods/templates/alicetpl/permissions/bob');
    assert.deepEqual(gone.body.result.permissions, ['alice:ADMIN']);
    assert.equal((await call('bob', 'GET', '/v3/pods/templates/alicetpl')).status, 403);
  });

  test('TENANT shares with every user of the tenant (READ or USER); SITE only a site admin gives', async () => {
    assert.equal((await call('carol', 'GET', '/v3/pods/templates/alicetpl')).status, 403);
    const all = await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'TENANT', level: 'READ' });
    assert.deepEqual(all.body.result.permissions, ['alice:ADMIN', 'TENANT:READ']);
    assert.equal((await call('carol', 'GET', '/v3/pods/templates/alicetpl')).status, 200);
    assert.ok(ids(await call('carol', 'GET', '/v3/pods/templates')).includes('alicetpl'));
    assert.equal((await call('eve', 'GET', '/v3/pods/templates/alicetpl')).status, 404, 'TENANT is alice\'s tenant, not every tenant');

    const admins = await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'TENANT', level: 'ADMIN' });
    assert.equal(admins.status, 400);
    assert.match(admins.body.message, /^level: TENANT may have READ or USER/);
    const site = await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'SITE', level: 'READ' });
    assert.equal(site.status, 403);
    assert.match(site.body.message, /only site admins/);
    const bad = await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'Not A User!', level: 'READ' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /^user: /);
    assert.equal((await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'bob', level: 'OWNER' })).status, 400);
    assert.equal((await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'bob' })).status, 400);
    await call('alice', 'DELETE', '/v3/pods/templates/alicetpl/permissions/TENANT');
    assert.equal((await call('carol', 'GET', '/v3/pods/templates/alicetpl')).status, 403);
  });

  test("another tenant's users (its admin too) never see or touch a tenant's template: 404, as if absent", async () => {
    for (const who of ['eve', 'tina']) {
      assert.ok(!ids(await call(who, 'GET', '/v3/pods/templates')).includes('alicetpl'));
      assert.ok(ids(await call(who, 'GET', '/v3/pods/templates')).includes('web'), "the site's templates are every tenant's");
      assert.equal((await call(who, 'GET', '/v3/pods/templates/tags')).body.result.alicetpl, undefined);
      for (const [method, path, body] of [
        ['GET', '/v3/pods/templates/alicetpl', undefined],
        ['PUT', '/v3/pods/templates/alicetpl', { description: 'mine now' }],
        ['DELETE', '/v3/pods/templates/alicetpl', undefined],
        ['GET', '/v3/pods/templates/alicetpl/tags', undefined],
        ['GET', '/v3/pods/templates/alicetpl/tags/v1', undefined],
        ['POST', '/v3/pods/templates/alicetpl/tags', { tag: 'x', pod_definition: { image: IMAGE } }],
        ['GET', '/v3/pods/templates/alicetpl/permissions', undefined],
        ['POST', '/v3/pods/templates/alicetpl/permissions', { user: who, level: 'ADMIN' }],
        ['DELETE', '/v3/pods/templates/alicetpl/permissions/alice', undefined],
      ] as const) {
        const r = await call(who, method, path, body);
        assert.equal(r.status, 404, `${who}: ${method} ${path}: ${r.body.message}`);
        assert.equal(r.body.message, 'template "alicetpl" was not found');
      }
      const pod = await call(who, 'POST', '/v3/pods', { pod_id: `${who}frommine`, template: 'alicetpl:v1' });
      assert.equal(pod.status, 400);
      assert.match(pod.body.message, /^template: template "alicetpl" does not exist/, 'the same answer as for a template that does not exist');
      const based = await call(who, 'POST', '/v3/pods/templates', { template_id: `${who}based` });
      assert.equal(based.status, 200);
      const onMine = await call(who, 'POST', `/v3/pods/templates/${who}based/tags`, { tag: 'v1', pod_definition: { template: 'alicetpl:v1' } });
      assert.equal(onMine.status, 400, "a tag cannot be based on another tenant's template");
      assert.match(onMine.body.message, /^pod_definition\.template: template "alicetpl" does not exist/);
    }
    const taken = await call('eve', 'POST', '/v3/pods/templates', { template_id: 'alicetpl' });
    assert.equal(taken.status, 400, 'template ids are unique on the site, as in Tapis');
    assert.equal(taken.body.message, 'template_id: "alicetpl" is already taken on this site; choose another');
    assert.equal((await call('alice', 'GET', '/v3/pods/templates/alicetpl')).body.result.description, 'bob was here', 'nothing of it changed');
  });

  test("a tenant admin administers its tenant's templates, not the site's", async () => {
    assert.deepEqual(await perms('dana', 'alicetpl'), ['alice:ADMIN']);
    assert.equal((await call('dana', 'PUT', '/v3/pods/templates/alicetpl', { archive_message: 'kept by dana' })).status, 200);
    assert.equal((await call('dana', 'PUT', '/v3/pods/templates/web', { description: 'dana was here' })).status, 403);
    assert.equal((await call('dana', 'POST', '/v3/pods/templates/web/tags', { tag: 'v2', pod_definition: { image: 'evil/miner' } })).status, 403);
    assert.equal((await call('alice', 'POST', '/v3/pods/templates/web/tags', { tag: 'v2', pod_definition: { image: 'evil/miner' } })).status, 403);
    assert.equal((await call('alice', 'DELETE', '/v3/pods/templates/web')).status, 403);
    assert.equal((await call('tina', 'DELETE', '/v3/pods/templates/web')).status, 403);
    assert.deepEqual(await perms('site', 'web'), ['admin:ADMIN', 'SITE:READ'], "a site admin's template is the site's");
  });

  test('a pod from a template needs READ on it, and on every template it is based on', async () => {
    const denied = await call('carol', 'POST', '/v3/pods', { pod_id: 'carolpod', template: 'alicetpl:v1' });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.message, 'template: you need READ permission on template "alicetpl" to use it; it has not been shared with you');
    assert.equal((await call('carol', 'GET', '/v3/pods/carolpod')).status, 404, 'no pod was made');

    // carol's own template based on alice's: the tag is refused, and so is a pod through it.
    assert.equal((await call('carol', 'POST', '/v3/pods/templates', { template_id: 'caroltpl' })).status, 200);
    const nested = await call('carol', 'POST', '/v3/pods/templates/caroltpl/tags', { tag: 'v1', pod_definition: { template: 'alicetpl:v1' } });
    assert.equal(nested.status, 403);
    assert.match(nested.body.message, /^pod_definition\.template: you need READ permission on template "alicetpl"/);

    await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'carol', level: 'READ' });
    assert.equal((await call('carol', 'POST', '/v3/pods/templates/caroltpl/tags', { tag: 'v1', pod_definition: { template: 'alicetpl:v1', description: 'carol' } })).status, 200);
    const made = await call('carol', 'POST', '/v3/pods', { pod_id: 'carolpod', template: 'caroltpl:v1' });
    assert.equal(made.status, 200, made.body.message);
    assert.equal(made.body.result.environment_variables.MODE, 'alice');
    await call('alice', 'DELETE', '/v3/pods/templates/alicetpl/permissions/carol');
    const revoked = await call('carol', 'POST', '/v3/pods', { pod_id: 'carolpod2', template: 'caroltpl:v1' });
    assert.equal(revoked.status, 403, 'the base is checked each time a pod is made');
    assert.match(revoked.body.message, /"alicetpl"/);
  });

  test("a user's template cannot carry an image past the allow-list; the site's can", async () => {
    assert.equal((await call('alice', 'POST', '/v3/pods/templates/alicetpl/tags', { tag: 'miner', pod_definition: { image: 'evil/miner' } })).status, 200);
    const r = await call('alice', 'POST', '/v3/pods', { pod_id: 'minerpod', template: 'alicetpl:miner' });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /^image: "evil\/miner" is not on the image allow-list/);
    // Nor through a tag based on a site template: the image the user's tag sets is checked.
    assert.equal((await call('alice', 'POST', '/v3/pods/templates/alicetpl/tags', { tag: 'onweb', pod_definition: { template: 'web:v1', image: 'evil/miner' } })).status, 200);
    assert.equal((await call('alice', 'POST', '/v3/pods', { pod_id: 'minerpod', template: 'alicetpl:onweb' })).status, 400);
    // A site admin's tag with an image not on the list is trusted, as before.
    assert.equal((await call('site', 'POST', '/v3/pods/templates/web/tags', { tag: 'special', pod_definition: { image: 'site/special' } })).status, 200);
    const special = await call('alice', 'POST', '/v3/pods', { pod_id: 'specialpod', template: 'web:special' });
    assert.equal(special.status, 200, special.body.message);
    assert.equal(special.body.result.image, 'site/special');
  });

  test('a site admin can take a template off the site (SITE) and share one with it', async () => {
    assert.equal((await call('site', 'POST', '/v3/pods/templates', { template_id: 'sitebeta' })).status, 200);
    assert.ok(ids(await call('eve', 'GET', '/v3/pods/templates')).includes('sitebeta'));
    const off = await call('site', 'DELETE', '/v3/pods/templates/sitebeta/permissions/SITE');
    assert.equal(off.status, 200, off.body.message);
    assert.deepEqual(off.body.result.permissions, ['admin:ADMIN']);
    assert.equal((await call('eve', 'GET', '/v3/pods/templates/sitebeta')).status, 404);
    assert.equal((await call('bob', 'GET', '/v3/pods/templates/sitebeta')).status, 403);
    const on = await call('site', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'SITE', level: 'READ' });
    assert.deepEqual(on.body.result.permissions, ['alice:ADMIN', 'SITE:READ']);
    assert.equal((await call('eve', 'GET', '/v3/pods/templates/alicetpl')).status, 200);
    await call('site', 'DELETE', '/v3/pods/templates/alicetpl/permissions/SITE');
    assert.equal((await call('eve', 'GET', '/v3/pods/templates/alicetpl')).status, 404);
  });

  test('save_pod_as_template_tag: the pod\'s own fields over its template, with no secret in it', async () => {
    const made = await call('alice', 'POST', '/v3/pods', { pod_id: 'savedpod', template: 'web:v1', environment_variables: { MODE: 'mine' }, resources: { mem_limit: 1024 } });
    assert.equal(made.status, 200, made.body.message);
    const { user_password: password } = (await call('alice', 'GET', '/v3/pods/savedpod/credentials')).body.result;
    assert.ok(password.length >= 16);
    // The user pastes the generated password, and a secret of their own, into the pod.
    const put = await call('alice', 'PUT', '/v3/pods/savedpod', {
      environment_variables: { MODE: 'mine', PASSWORD: '{{user_password}}', DB_URL: `postgres://savedpod:${password}@db:5432/x`, API_TOKEN: 'tok-7f3a9c1e5b', GREETING: 'hello' },
      command: ['sh', '-c', `echo ${password}`],
    });
    assert.equal(put.status, 200, put.body.message);

    const saved = await call('alice', 'POST', '/v3/pods/savedpod/save_pod_as_template_tag', { template_id: 'alicetpl', commit_message: 'from my pod', tag: 'frompod' });
    assert.equal(saved.status, 200, saved.body.message);
    const tag = saved.body.result;
    assert.equal(tag.tag, 'frompod');
    assert.equal(tag.template_id, 'alicetpl');
    assert.equal(tag.added_by, 'alice');
    assert.deepEqual(tag.pod_definition, {
      template: 'web:v1',
      environment_variables: { MODE: 'mine', DB_URL: 'postgres://savedpod:{{user_password}}@db:5432/x', API_TOKEN: '{{user_password}}', GREETING: 'hello' },
      command: ['sh', '-c', 'echo {{user_password}}'],
      resources: { mem_limit: 1024 },
    }, 'only what differs from web:v1 (its image and PASSWORD are the template\'s)');
    assert.match(saved.body.message, /secrets replaced by placeholders in: DB_URL, API_TOKEN/);
    const stored = JSON.stringify((await call('alice', 'GET', '/v3/pods/templates/alicetpl/tags/frompod')).body);
    for (const secret of [password, 'tok-7f3a9c1e5b']) assert.ok(!stored.includes(secret), 'no secret value is stored in the tag');

    // A pod made from the tag is the same pod, with a password of its own.
    const again = await call('alice', 'POST', '/v3/pods', { pod_id: 'fromsaved', template: 'alicetpl:frompod' });
    assert.equal(again.status, 200, again.body.message);
    assert.equal(again.body.result.image, IMAGE);
    assert.equal(again.body.result.environment_variables.DB_URL, 'postgres://savedpod:{{user_password}}@db:5432/x');
    assert.equal(again.body.result.resources.mem_limit, 1024);
  });

  test('save_pod_as_template_tag needs READ on the pod and USER on the template; other tenants get 404', async () => {
    const body = { template_id: 'alicetpl', commit_message: 'x', tag: 'stolen' };
    assert.equal((await call('bob', 'POST', '/v3/pods/savedpod/save_pod_as_template_tag', body)).status, 403, 'bob cannot read the pod');
    await call('alice', 'POST', '/v3/pods/savedpod/permissions', { user: 'bob', level: 'READ' });
    const noUser = await call('bob', 'POST', '/v3/pods/savedpod/save_pod_as_template_tag', body);
    assert.equal(noUser.status, 403, 'bob has no USER on alicetpl');
    assert.match(noUser.body.message, /you need USER permission on template "alicetpl"/);
    assert.equal((await call('bob', 'POST', '/v3/pods/savedpod/save_pod_as_template_tag', { ...body, template_id: 'web' })).status, 403, "nor on the site's template");
    await call('alice', 'POST', '/v3/pods/templates/alicetpl/permissions', { user: 'bob', level: 'USER' });
    assert.equal((await call('bob', 'POST', '/v3/pods/savedpod/save_pod_as_template_tag', body)).status, 200);
    assert.equal((await call('eve', 'POST', '/v3/pods/savedpod/save_pod_as_template_tag', body)).status, 404);
    assert.equal((await call('eve', 'POST', '/v3/pods/templates', { template_id: 'evetpl' })).status, 200);
    assert.equal((await call('alice', 'POST', '/v3/pods/savedpod/save_pod_as_template_tag', { ...body, template_id: 'evetpl' })).status, 404, "not into another tenant's template");
    for (const bad of [{}, { template_id: 'alicetpl' }, { ...body, tag: 'no spaces' }, { ...body, extra: 1 }]) {
      const r = await call('alice', 'POST', '/v3/pods/savedpod/save_pod_as_template_tag', bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.status, 'error');
    }
  });

  test('add_images: all or nothing, unless skip_duplicates; a tenant admin only for its own tenant', async () => {
    const first = await call('site', 'POST', '/v3/pods/images/bulk', [{ image: 'lib/one', tenants: ['*'] }, { image: 'lib/two:1.0', description: 'two' }]);
    assert.equal(first.status, 200, first.body.message);
    assert.deepEqual(first.body.result.map((i: { image: string }) => i.image), ['lib/one', 'lib/two']);
    assert.deepEqual(first.body.result[1].tenants, ['dev']);

    const dup = await call('site', 'POST', '/v3/pods/images/bulk?skip_duplicates=false', [{ image: 'lib/three' }, { image: 'lib/one' }]);
    assert.equal(dup.status, 400);
    assert.match(dup.body.message, /^image: "lib\/one" is already on the allow-list; nothing was added/);
    assert.equal((await call('site', 'GET', '/v3/pods/images/lib/three')).status, 404, 'nothing was added');
    const dupDefault = await call('site', 'POST', '/v3/pods/images/bulk', [{ image: 'lib/three' }, { image: 'lib/two' }]);
    assert.equal(dupDefault.status, 400, 'skip_duplicates is false by default');

    const skipped = await call('site', 'POST', '/v3/pods/images/bulk?skip_duplicates=true', [{ image: 'lib/three' }, { image: 'lib/one' }]);
    assert.equal(skipped.status, 200, skipped.body.message);
    assert.deepEqual(skipped.body.result.map((i: { image: string }) => i.image), ['lib/three']);
    assert.match(skipped.body.message, /skipped 1 already on the allow-list: lib\/one/);
    assert.deepEqual((await call('site', 'GET', '/v3/pods/images/lib/one')).body.result.tenants, ['*'], 'a skipped image is left as it was');
    const none = await call('site', 'POST', '/v3/pods/images/bulk?skip_duplicates=true', [{ image: 'lib/one' }]);
    assert.deepEqual(none.body.result, []);

    assert.equal((await call('alice', 'POST', '/v3/pods/images/bulk', [{ image: 'lib/four' }])).status, 403, 'users do not change the allow-list');
    const other = await call('dana', 'POST', '/v3/pods/images/bulk', [{ image: 'lib/four' }, { image: 'lib/five', tenants: ['t2'] }]);
    assert.equal(other.status, 403, "a tenant admin adds no image for another tenant");
    assert.equal((await call('site', 'GET', '/v3/pods/images/lib/four')).status, 404, 'and nothing of the request was added');
    const own = await call('dana', 'POST', '/v3/pods/images/bulk', [{ image: 'lib/four' }]);
    assert.equal(own.status, 200, own.body.message);
    assert.deepEqual(own.body.result[0].tenants, ['dev']);
    assert.equal((await call('tina', 'POST', '/v3/pods/images/bulk', [{ image: 'lib/six', tenants: ['dev'] }])).status, 403);

    for (const [body, pattern] of [
      [{ image: 'lib/x' }, /list of images/],
      [[], /at least one image/],
      [[{ image: 'Bad Name' }], /^0\.image: /],
      [[{ image: 'lib/x' }, { image: 'lib/x:2' }], /"lib\/x" is given twice/],
      [[{ image: 'lib/x', owner: 'me' }], /^0\.owner: unknown field/],
    ] as const) {
      const r = await call('site', 'POST', '/v3/pods/images/bulk', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.message, pattern);
    }
    assert.equal((await call('site', 'POST', '/v3/pods/images/bulk', undefined, 'not json')).status, 400);
    assert.equal((await call('site', 'POST', '/v3/pods/images/bulk?skip_duplicates=maybe', [{ image: 'lib/y' }])).status, 400);
    const pythonTrue = await call('site', 'POST', '/v3/pods/images/bulk?skip_duplicates=True', [{ image: 'lib/one' }, { image: 'lib/seven' }]);
    assert.equal(pythonTrue.status, 200, 'tapipy sends Python booleans as True and False');
    assert.deepEqual(pythonTrue.body.result.map((i: { image: string }) => i.image), ['lib/seven']);
  });

  test('ensure_jupyter_pod: the caller\'s pod from the Jupyter template, made once, started when stopped', async () => {
    const missing = await call('alice', 'GET', '/v3/pods/jupyter/ensure');
    assert.equal(missing.status, 400, 'the configured template does not exist yet');
    assert.match(missing.body.message, /^template: template "jupytertest" does not exist/);

    assert.equal((await call('site', 'POST', '/v3/pods/templates', { template_id: 'jupytertest' })).status, 200);
    assert.equal((await call('site', 'POST', '/v3/pods/templates/jupytertest/tags', { pod_definition: { image: IMAGE, data_dir: '/srv/notebooks', environment_variables: { JUPYTER_TOKEN: '{{user_password}}' } } })).status, 200);
    const made = await call('alice', 'GET', '/v3/pods/jupyter/ensure');
    assert.equal(made.status, 200, made.body.message);
    assert.equal(made.body.result.pod_id, 'alicejupyter');
    assert.equal(made.body.result.url, 'alicejupyter.pods.dev.localhost');
    assert.equal(made.body.message, 'Created new Jupyter pod successfully.');
    const again = await call('alice', 'GET', '/v3/pods/jupyter/ensure');
    assert.equal(again.body.result.pod_id, 'alicejupyter');
    assert.equal(again.body.message, 'Retrieved existing Jupyter pod successfully.');
    assert.equal((await call('alice', 'GET', '/v3/pods/alicejupyter')).body.result.template, 'jupytertest');

    await call('alice', 'GET', '/v3/pods/alicejupyter/stop');
    const started = await call('alice', 'GET', '/v3/pods/jupyter/ensure');
    assert.equal(started.body.result.pod_id, 'alicejupyter');
    assert.equal(started.body.result.status_requested, 'ON');
    assert.equal(started.body.message, 'Started existing Jupyter pod successfully.');

    // Someone else's pod named like dave's Jupyter is not dave's: he gets the next id.
    assert.equal((await call('carol', 'POST', '/v3/pods', { pod_id: 'davejupyter', image: IMAGE })).status, 200);
    const dave = await call('dave', 'GET', '/v3/pods/jupyter/ensure');
    assert.equal(dave.body.result.pod_id, 'davejupyter2');
    assert.equal((await call('eve', 'GET', '/v3/pods/jupyter/ensure')).body.result.pod_id, 'evejupyter', 'each tenant its own');
  });

  test('upload_to_jupyter: USER on a Jupyter pod that runs; a path inside its notebook directory', async () => {
    const form = new FormData();
    form.append('file', new Blob(['{"cells": []}']), 'a.ipynb');
    form.append('path', 'work/a.ipynb');
    const upload = async (who: string, podId: string) => {
      const res = await request(`${dev}/v3/pods/jupyter/${podId}/upload`, { method: 'POST', headers: { 'x-tapis-token': token(who) }, body: form });
      return { status: res.statusCode, body: (await res.body.json()) as any };
    };
    const notRunning = await upload('alice', 'alicejupyter');
    assert.equal(notRunning.status, 409, 'no host runs it here');
    assert.match(notRunning.body.message, /is not running/);
    assert.equal((await upload('bob', 'alicejupyter')).status, 403);
    assert.equal((await upload('alice', 'savedpod')).status, 400, 'not a Jupyter pod');
    assert.equal((await upload('alice', 'nosuchpod')).status, 404);

    assert.equal(notebookPath('work/a.ipynb', 'x'), 'work/a.ipynb');
    assert.equal(notebookPath('/a.ipynb', 'x'), 'a.ipynb');
    assert.equal(notebookPath('', 'b.csv'), 'b.csv');
    assert.equal(notebookPath('data/', 'b.csv'), 'data/b.csv');
    for (const bad of ['../etc/passwd', 'a/../../b', 'a//b', './a']) assert.throws(() => notebookPath(bad, 'x'), /path: /, bad);
    assert.throws(() => notebookPath('data/', '../x'), /path: /);
    assert.throws(() => notebookPath(undefined, 'x'), /path: give the destination/);
  });
});
