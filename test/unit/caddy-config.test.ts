// The Caddy config the agent builds for TCP routes: validation, conflicts, and the
// certificate names that follow the SNI routes. The real Caddy: test/integration/caddy-tcp.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addTcp, baseConfig, dropTcp, emptyTcp, hasBase, readTcp, writeTcp, type Json, type SniRoute, type TcpRoute } from '../../agent/caddy-config.js';
import { CaddyError } from '../../agent/caddy-error.js';

const listeners = { admin: '127.0.0.1:2019', http: '127.0.0.1:8080', tls: '127.0.0.1:8443' };
const sni = (id: string, host = `${id}.pods.test`): SniRoute => ({ kind: 'sni', id, host, upstream: '127.0.0.1:30001' });
const port = (id: string, listen: string): TcpRoute => ({ kind: 'port', id, listen, upstream: '127.0.0.1:30002' });

function refusedWith(text: RegExp) {
  return (err: unknown) => err instanceof CaddyError && err.code === 'CADDY_REJECTED' && err.status === undefined && text.test(err.message);
}

function apps(config: Json): Json {
  return config.apps as Json;
}

test('a bad TCP route is refused before anything is built, and the state keeps its routes', () => {
  const state = emptyTcp();
  addTcp(state, sni('alpha'), listeners);
  addTcp(state, port('beta', '127.0.0.1:20001'), listeners);
  const cases: Array<[TcpRoute, RegExp]> = [
    [port('x', '0.0.0.0:20002'), /every interface/],
    [port('x', '[::]:20002'), /every interface/],
    [port('x', ':20002'), /not IP:PORT/],
    [port('x', '127.0.0.1:20001-20005'), /not IP:PORT/],
    [port('x', '999.0.0.1:20002'), /not IP:PORT/],
    [port('x', '127.0.0.1:8080'), /Caddy's own/],
    [port('x', '127.0.0.1:20001'), /port of route beta/],
    [sni('x', 'ALPHA.pods.test'), /served by route alpha/],
    [sni('x', 'a..b'), /not a hostname/],
    [{ ...sni('x'), upstream: '{upstream}' } as TcpRoute, /not host:port/],
    [sni('pods-tls-postgres'), /not allowed/],
  ];
  for (const [route, text] of cases) assert.throws(() => addTcp(state, route, listeners), refusedWith(text), route.id);
  assert.throws(() => addTcp(emptyTcp(), sni('x'), { admin: listeners.admin, http: listeners.http }), refusedWith(/no TLS listener/));
  assert.deepEqual(state.sni.map((r) => r['@id']), ['alpha']);
  assert.deepEqual([...state.ports.values()].map((s) => s['@id']), ['beta']);
});

test('a route replaces the one with its id, whatever its kind; its host and port are free again', () => {
  const state = emptyTcp();
  addTcp(state, sni('alpha'), listeners);
  addTcp(state, port('alpha', '127.0.0.1:20001'), listeners);
  assert.equal(state.sni.length, 0);
  addTcp(state, sni('beta', 'alpha.pods.test'), listeners);
  // A refused change changes nothing: alpha keeps its port.
  assert.throws(() => addTcp(state, sni('alpha'), listeners), refusedWith(/served by route beta/));
  assert.throws(() => addTcp(state, port('gamma', '127.0.0.1:20001'), listeners), refusedWith(/port of route alpha/));
  addTcp(state, port('alpha', '127.0.0.1:20001'), listeners); // the same again is no conflict with itself
  addTcp(state, sni('alpha', 'other.pods.test'), listeners);
  addTcp(state, port('gamma', '127.0.0.1:20001'), listeners);
  assert.equal(dropTcp(state, 'nobody'), false);
  assert.equal(dropTcp(state, 'beta'), true);
  assert.deepEqual(state.sni.map((r) => r['@id']), ['alpha']);
  assert.deepEqual([...state.ports.values()].map((s) => s['@id']), ['gamma']);
});

test('the config round-trips: read back what was written, with certificate names for exactly the SNI hosts', () => {
  const state = emptyTcp();
  addTcp(state, sni('beta', 'Beta.Pods.Test'), listeners);
  addTcp(state, { ...sni('alpha'), protocol: 'postgres' }, listeners);
  addTcp(state, port('gamma', '127.0.0.1:20001'), listeners);
  const config = apps(baseConfig(listeners, [], state));
  assert.ok(hasBase(config, listeners));

  const policies = (config.tls as { automation: { policies: Array<{ subjects?: string[]; on_demand?: boolean }> } }).automation.policies;
  assert.deepEqual(policies[0]?.subjects, ['alpha.pods.test', 'beta.pods.test']);
  assert.equal(policies[0]?.on_demand, true);
  assert.equal(policies.length, 2);
  assert.deepEqual((config.pki as Json).certificate_authorities, { local: { install_trust: false } });

  const back = readTcp(JSON.parse(JSON.stringify(config)) as Json);
  assert.deepEqual(back.sni, state.sni);
  assert.deepEqual([...back.ports], [...state.ports]);

  // The last SNI route gone: no on-demand policy is left (an empty subject list would mean every name).
  dropTcp(back, 'alpha');
  dropTcp(back, 'beta');
  const after = writeTcp(config, back, listeners);
  assert.deepEqual((after.tls as { automation: { policies: unknown[] } }).automation.policies, [{ issuers: [{ module: 'internal' }] }]);
  assert.equal(after.http, config.http);
});

test('without our layer4 app (an older base, or an empty Caddy) the base counts as missing', () => {
  const config = apps(baseConfig(listeners, [], emptyTcp()));
  assert.equal(hasBase(config, listeners), true);
  assert.equal(hasBase({ http: config.http }, listeners), false);
  assert.equal(hasBase(null, listeners), false);
  const noTls = apps(baseConfig({ admin: listeners.admin, http: listeners.http }, [], emptyTcp()));
  assert.equal(hasBase(noTls, listeners), false);
  // Without a TLS listener there are no certificates to make: Caddy keeps its own TLS defaults.
  assert.deepEqual(Object.keys(noTls).sort(), ['http', 'layer4']);
});
