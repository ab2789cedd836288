// routePodsApart: a request meets the routes one router of both would give it, in the same
// order, while a request for a pod skips the named routes; routes on the wrong side stop start-up.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Router from '@koa/router';
import Koa from 'koa';
import { request } from 'undici';
import { routePodsApart } from '../../coordinator/api/pod-routes-apart.js';

/** Routers whose handlers answer with their own name and the parameters they got. */
function routers() {
  const named = new Router();
  named.get('/v3/pods/images', (ctx) => (ctx.body = 'images'));
  named.get('/v3/pods/images/*image_id', (ctx) => (ctx.body = `image ${ctx.params.image_id}`));
  named.get('/v3/admin/nodes/:node_id', (ctx) => (ctx.body = `node ${ctx.params.node_id}`));
  const pods = new Router();
  pods.get('/v3/pods', (ctx) => (ctx.body = 'pod list'));
  pods.get('/v3/pods/:pod_id', (ctx) => (ctx.body = `pod ${ctx.params.pod_id}`));
  pods.put('/v3/pods/:pod_id', (ctx) => (ctx.body = `update ${ctx.params.pod_id}`));
  pods.get('/v3/pods/:pod_id/logs', (ctx) => (ctx.body = `logs ${ctx.params.pod_id}`));
  return { named, pods };
}

describe('routePodsApart', () => {
  let base: string;
  let close: () => void;

  before(async () => {
    const { named, pods } = routers();
    const app = new Koa();
    app.use(routePodsApart(named, pods));
    app.use((ctx) => {
      ctx.status = 404;
      ctx.body = 'no route';
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => server.close();
  });
  after(() => close?.());

  const answer = async (method: string, path: string) => {
    const res = await request(`${base}${path}`, { method: method as 'GET' });
    return `${res.statusCode} ${await res.body.text()}`;
  };

  test('each request reaches the route one router of both would give it', async () => {
    const cases: Array<[string, string, string]> = [
      ['GET', '/v3/pods', '200 pod list'],
      ['GET', '/v3/pods/', '200 pod list'],
      ['GET', '/v3/pods/web1', '200 pod web1'],
      ['GET', '/v3/pods/web1/logs', '200 logs web1'],
      ['GET', '/v3/pods/images', '200 images'],
      ['GET', '/V3/Pods/Images', '200 images'],
      ['GET', '/v3/pods/images/library/redis', '200 image library/redis'],
      // A name's path with no route of that name for the method: on to the pods' routes, as before.
      ['PUT', '/v3/pods/images', '200 update images'],
      ['GET', '/v3/admin/nodes/n1', '200 node n1'],
      ['GET', '/v3/admin/nothing', '404 no route'],
      ['GET', '/v3/pods/web1/nothing', '404 no route'],
    ];
    for (const [method, path, want] of cases) assert.equal(await answer(method, path), want, `${method} ${path}`);
  });

  test('a named route that could take a pod id, or a pod route under a fixed name, stops start-up', () => {
    const { named, pods } = routers();
    named.get('/v3/pods/:pod_id/files', () => undefined);
    assert.throws(() => routePodsApart(named, pods), /route \/v3\/pods\/:pod_id\/files can match a pod's path/);
    const again = routers();
    again.pods.get('/v3/pods/templates', () => undefined);
    assert.throws(() => routePodsApart(again.named, again.pods), /route \/v3\/pods\/templates is not one of a pod's/);
  });
});
