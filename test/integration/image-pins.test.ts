// The image allow-list pins tags and digests; a name-only entry runs only what a host already
// has. Against a real Redis; what the agent does with it is in test/e2e/image-pull.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('image pins and pull policy', () => {
  let api: ApiServer;
  before(async () => {
    api = await startApiServer({ PODS_ADMIN_TOKEN: ADMIN, PODS_TENANT: 'dev', PODS_REDIS_PREFIX: 'pins:' });
  });
  after(async () => {
    await api?.stop();
  });
  async function call(method: string, path: string, body?: unknown) {
    const res = await request(`${api.base}${path}`, {
      method: method as 'GET',
      headers: { 'x-tapis-token': ADMIN, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  }
  const spec = async (podId: string) => (await api.stores.pods.get('dev', podId))!.spec;

  test('tags pins tags and digests; an entry without them pins none (a tag in image names the image only, as in Tapis)', async () => {
    const pinned = await call('POST', '/v3/pods/images', { image: 'lab/tool', tags: ['1.2', '1.3', '1.2'] });
    assert.equal(pinned.status, 200, pinned.body.message);
    assert.deepEqual(pinned.body.result.tags, ['1.2', '1.3']);
    const named = (await call('POST', '/v3/pods/images', { image: 'lab/any:5' })).body.result;
    assert.equal(named.image, 'lab/any');
    assert.deepEqual(named.tags, []);
    assert.deepEqual((await call('POST', '/v3/pods/images', { image: 'lab/dig', tags: [DIGEST] })).body.result.tags, [DIGEST]);
    const bad = await call('POST', '/v3/pods/images', { image: 'lab/bad', tags: ['no spaces'] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /^tags\.0: /);
  });

  test('only pinned tags of a pinning entry run, and hosts may pull them', async () => {
    assert.equal((await call('POST', '/v3/pods', { pod_id: 'pinok', image: 'lab/tool:1.2' })).status, 200);
    assert.equal((await spec('pinok')).image_pull, true);
    for (const image of ['lab/tool:2.0', 'lab/tool']) {
      const r = await call('POST', '/v3/pods', { pod_id: 'pinbad', image });
      assert.equal(r.status, 400, image);
      assert.match(r.body.message, /not a tag it pins/);
    }
    assert.equal((await call('POST', '/v3/pods', { pod_id: 'digok', image: `lab/dig@${DIGEST}` })).status, 200);
    assert.equal((await spec('digok')).image_pull, true);
    // Changing the image later is checked the same way.
    const put = await call('PUT', '/v3/pods/pinok', { image: 'lab/tool:9' });
    assert.equal(put.status, 400);
  });

  test('a name-only entry runs any tag, but never has it pulled', async () => {
    assert.equal((await call('POST', '/v3/pods', { pod_id: 'anytag', image: 'lab/any:whatever' })).status, 200);
    assert.equal((await spec('anytag')).image_pull, false);
    assert.equal((await call('PUT', '/v3/pods/pinok', { image: 'lab/any:other' })).status, 200);
    assert.equal((await spec('pinok')).image_pull, false);
  });
});
