// The access rules in front of a pod's routes, as JSON (agent/caddy-config.ts); what they do
// with real Caddy, the edge and a browser is tested in test/e2e/pod-access.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addTcp, buildHttpRoute, emptyTcp } from '../../agent/caddy-config.js';
import { CaddyError } from '../../agent/caddy-error.js';

const listeners = { admin: '127.0.0.1:2019', http: '127.0.0.1:8080', tls: '127.0.0.1:8443' };
const base = { id: 'r1', host: 'p.pods.dev.localhost', upstream: '127.0.0.1:5000' };

test('a route without access rules is the plain proxy it always was', () => {
  const r = buildHttpRoute(base);
  assert.equal((r.handle as Array<{ handler: string }>)[0]!.handler, 'reverse_proxy');
});

test('ip_allow_list: a 403 for other addresses, the edge admitted, before anything else', () => {
  const r = buildHttpRoute({ ...base, access: { ipAllow: ['10.0.0.0/8'] } }, { edgeSources: ['192.168.0.1/32'] });
  const routes = (r.handle as Array<{ routes: Array<Record<string, any>> }>)[0]!.routes;
  assert.deepEqual(routes[0]!.match, [{ not: [{ remote_ip: { ranges: ['10.0.0.0/8', '192.168.0.1/32'] } }] }]);
  assert.equal(routes[0]!.handle[0].status_code, 403);
  assert.equal(routes.at(-1)!.handle[0].handler, 'reverse_proxy');
});

test('tapis_auth: the callback goes to the coordinator, client copies of the headers are dropped, then forward-auth', () => {
  const r = buildHttpRoute(
    { ...base, access: { auth: { path: '/v3/pods/p/auth', headers: ['X-Tapis-User'] } } },
    { coordinator: { dial: '10.0.0.5:8000', tls: false }, edgeSources: [] },
  );
  const [callback, drop, check] = (r.handle as Array<{ routes: Array<Record<string, any>> }>)[0]!.routes;
  assert.deepEqual(callback!.match, [{ path: ['/v3/pods/p/auth/callback'] }]);
  assert.deepEqual(drop!.handle[0].request.delete, ['X-Tapis-User']);
  assert.equal(check!.handle[0].rewrite.uri, '/v3/pods/p/auth');
  assert.deepEqual(check!.handle[0].upstreams, [{ dial: '10.0.0.5:8000' }]);
  assert.throws(() => buildHttpRoute({ ...base, access: { auth: { path: '/v3/pods/p/auth', headers: [] } } }), CaddyError, 'no coordinator, no route');
});

test('TCP routes match only allowed addresses; a bad range is refused before Caddy sees it', () => {
  const state = emptyTcp();
  addTcp(state, { kind: 'sni', id: 't1', host: 'db.pods.dev.localhost', upstream: '127.0.0.1:5432', ipAllow: ['127.0.0.2/32'] }, listeners);
  addTcp(state, { kind: 'port', id: 't2', listen: '127.0.0.1:20001', upstream: '127.0.0.1:3306', ipAllow: ['127.0.0.2'] }, listeners);
  assert.deepEqual(state.sni[0]!.match, [{ tls: { sni: ['db.pods.dev.localhost'] }, remote_ip: { ranges: ['127.0.0.2/32'] } }]);
  assert.deepEqual((state.ports.get('pods-port-t2')!.routes as Array<Record<string, unknown>>)[0]!.match, [{ remote_ip: { ranges: ['127.0.0.2'] } }]);
  assert.throws(() => addTcp(emptyTcp(), { kind: 'port', id: 't3', listen: '127.0.0.1:20002', upstream: '127.0.0.1:1', ipAllow: ['{http.request.host}'] }, listeners), CaddyError);
});
