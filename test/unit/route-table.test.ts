// The RouteTable against a real Caddy: the routes it serves, how many admin writes a burst of
// installs costs, and what a pod is told when one of its routes is refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { CaddyClient, type PodRoute, type TcpRoute } from '../../agent/caddy.js';
import { podRoutes, RouteTable } from '../../agent/route-table.js';
import { createLogger } from '../../shared/log.js';
import type { Assignment } from '../../shared/protocol.js';
import { skipWithoutCaddy, startCaddy, type RunningCaddy } from '../helpers/caddy.js';

const log = createLogger('test', 'silent');

/** The real client, counting the calls that write Caddy's config. */
class CountingCaddy extends CaddyClient {
  loads = 0;
  upserts = 0;
  removals = 0;
  override resync(routes: PodRoute[], tcp: TcpRoute[] = []) {
    this.loads++;
    return super.resync(routes, tcp);
  }
  override upsertRoute(route: PodRoute) {
    this.upserts++;
    return super.upsertRoute(route);
  }
  override removeRoute(id: string) {
    this.removals++;
    return super.removeRoute(id);
  }
}

const route = (i: number): PodRoute => ({ id: `pod-t-p${i}-default`, host: `p${i}.pods.t.localhost`, upstream: `127.0.0.1:${20000 + i}` });

/** The pod routes Caddy holds. Caddy restarts its admin server on every config change, so a read may be cut: ask again. */
async function servedIds(caddy: RunningCaddy): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await request(`${caddy.adminUrl}/config/apps/http/servers`);
      const text = await res.body.text();
      return [...text.matchAll(/"@id":"(pod-[^"]+)"/g)].map((m) => m[1]!).sort();
    } catch (err) {
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

let caddy: RunningCaddy;
const skip = skipWithoutCaddy();
before(async () => {
  if (!skip) caddy = await startCaddy();
});
after(async () => caddy?.stop());

test('installs that arrive together are written as one whole load, and every route is served', { skip }, async () => {
  const client = new CountingCaddy({ adminUrl: caddy.adminUrl, httpListen: caddy.httpListen, log });
  const table = new RouteTable({ caddy: client, log });
  await table.resync();
  const whys = await Promise.all(Array.from({ length: 50 }, (_, i) => table.install(`t/p${i}`, { http: [route(i)], tcp: [] })));
  assert.deepEqual(whys, Array(50).fill(null), 'every pod is told its routes are served');
  assert.deepEqual(await servedIds(caddy), Array.from({ length: 50 }, (_, i) => route(i).id).sort());
  // The first install goes alone; the 49 that piled up meanwhile go in one load.
  assert.ok(client.upserts <= 1, `${client.upserts} single-route writes`);
  assert.ok(client.loads <= 3, `${client.loads} whole loads for 50 installs`);

  // One change alone is a patch of that pod's route, not a reload of all.
  const loads = client.loads;
  assert.equal(await table.install('t/p50', { http: [route(50)], tcp: [] }), null);
  await table.remove('t/p0');
  assert.equal(client.loads, loads);
  const ids = await servedIds(caddy);
  assert.ok(ids.includes(route(50).id) && !ids.includes(route(0).id));
});

test('a route Caddy cannot serve is reported to its own pod only, in a whole load as in a single write', { skip }, async () => {
  const client = new CountingCaddy({ adminUrl: caddy.adminUrl, httpListen: caddy.httpListen, log });
  const table = new RouteTable({ caddy: client, log });
  // No shared TLS listener was configured: an SNI route cannot be served.
  const sni: TcpRoute = { kind: 'sni', id: 'pod-t-bad-default', host: 'bad.pods.t.localhost', upstream: '127.0.0.1:20999' };
  const [good, bad, other] = await Promise.all([
    table.install('t/good', { http: [route(1)], tcp: [] }),
    table.install('t/bad', { http: [], tcp: [sni] }),
    table.install('t/other', { http: [route(2)], tcp: [] }),
  ]);
  assert.equal(good, null);
  assert.equal(other, null);
  assert.match(bad ?? '', /route pod-t-bad-default not installed: /);
  assert.match((await table.install('t/bad', { http: [], tcp: [sni] })) ?? '', /route pod-t-bad-default not installed: /);
  assert.deepEqual(await servedIds(caddy), [route(1).id, route(2).id].sort());
});

test('a Caddy that restarted empty gets the whole table back at the next check', { skip }, async () => {
  const client = new CountingCaddy({ adminUrl: caddy.adminUrl, httpListen: caddy.httpListen, log });
  const table = new RouteTable({ caddy: client, log });
  await Promise.all([1, 2, 3].map((i) => table.install(`t/p${i}`, { http: [route(i)], tcp: [] })));
  await caddy.restart();
  assert.deepEqual(await servedIds(caddy), []);
  table.watch(100);
  try {
    const deadline = Date.now() + 10_000;
    while ((await servedIds(caddy)).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await servedIds(caddy), [1, 2, 3].map((i) => route(i).id));
  } finally {
    table.stop();
  }
});

test('a pod routes each published port by its protocol; local_only and unpublished ports get none', () => {
  const a: Assignment = {
    tenant: 't', podId: 'p', uid: 'u', generation: 1,
    spec: {
      image: 'x', pull: false, env: {}, mounts: [], cpuLimitMilli: 1, memLimitMb: 1, cpuRequestMilli: 1, memRequestMb: 1,
      ports: [
        { name: 'default', port: 5000, protocol: 'http', host: 'p.pods.t.localhost' },
        { name: 'db', port: 5432, protocol: 'postgres', host: 'p-db.pods.t.localhost', access: { ipAllow: ['10.0.0.0/8'] } },
        { name: 'raw', port: 7000, protocol: 'tcp', host: 'p-raw.pods.t.localhost', dedicatedPort: 7001 },
        { name: 'inside', port: 8000, protocol: 'local_only', host: '' },
        { name: 'late', port: 9000, protocol: 'http', host: 'p-late.pods.t.localhost' },
      ],
    },
  };
  const routes = podRoutes(a, { hostPorts: { default: 30001, db: 30002, raw: 30003, inside: 30004 } }, { publishHost: '127.0.0.1', tcpListenHost: '127.0.0.2', edgeSourceNetworks: ['192.0.2.0/24'] });
  assert.deepEqual(routes.http, [{ id: 'pod-t-p-default', host: 'p.pods.t.localhost', upstream: '127.0.0.1:30001' }]);
  assert.deepEqual(routes.tcp, [
    { kind: 'sni', id: 'pod-t-p-db', host: 'p-db.pods.t.localhost', upstream: '127.0.0.1:30002', protocol: 'postgres', ipAllow: ['10.0.0.0/8', '192.0.2.0/24'] },
    { kind: 'port', id: 'pod-t-p-raw', listen: '127.0.0.2:7001', upstream: '127.0.0.1:30003' },
  ]);
});
