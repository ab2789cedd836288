// CaddyClient against a real Caddy process and real upstream servers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { stat } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { CaddyClient, CaddyError, type PodRoute } from '../../agent/caddy.js';
import { createLogger } from '../../shared/log.js';
import { skipWithoutCaddy, startCaddy, type RunningCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';

interface Upstream {
  dial: string;
  close(): Promise<void>;
}

/** An HTTP server on port 0 that answers "<name> <host header>" and echoes WebSocket messages. */
async function startUpstream(name: string): Promise<Upstream> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${name} ${req.headers.host}`);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => socket.on('message', (m) => socket.send(`${name}:${String(m)}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    dial: `127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `fromCaddy`: Caddy answered (status set, its error text in the message) rather than the client refusing. */
function expectCaddyError(code: CaddyError['code'], fromCaddy = false, text?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CaddyError, `expected CaddyError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(typeof err.status, fromCaddy ? 'number' : 'undefined');
    if (text) assert.match(err.message, text);
    return true;
  };
}

describe('CaddyClient with a real Caddy', { skip: skipWithoutCaddy(), timeout: 60_000 }, () => {
  const log = createLogger('caddy-test', process.env.PODS_LOG_LEVEL ?? 'silent');
  let caddy: RunningCaddy;
  let client: CaddyClient;
  let one: Upstream;
  let two: Upstream;
  let three: Upstream;

  const route = (id: string, upstream: Upstream | string): PodRoute => ({
    id,
    host: `${id}.pods.test`,
    upstream: typeof upstream === 'string' ? upstream : upstream.dial,
  });

  /** GET through Caddy's HTTP server with the given Host header. */
  async function get(host: string): Promise<{ status: number; body: string; type: string | undefined }> {
    const res = await request(`${caddy.httpUrl}/`, { headers: { host }, reset: true });
    const type = res.headers['content-type'];
    return { status: res.statusCode, body: await res.body.text(), type: Array.isArray(type) ? type[0] : type };
  }

  async function assertServed(id: string, by: Upstream | string): Promise<void> {
    const name = typeof by === 'string' ? by : by === one ? 'one' : by === two ? 'two' : 'three';
    const res = await get(`${id}.pods.test`);
    assert.equal(res.status, 200, `${id}: ${res.body}`);
    assert.equal(res.body, `${name} ${id}.pods.test`);
  }

  async function assertNotServed(id: string): Promise<void> {
    const res = await get(`${id}.pods.test`);
    assert.equal(res.status, 404);
    assert.equal(res.body, `no pod is served at ${id}.pods.test\n`);
    assert.match(res.type ?? '', /^text\/plain/);
  }

  /** The @ids in the routes subroute, as Caddy's admin API holds them. */
  async function routeIds(): Promise<string[]> {
    const res = await request(`${caddy.adminUrl}/id/pods-routes/handle/0/routes`, { reset: true });
    const routes = (await res.body.json()) as Array<{ '@id': string }>;
    return routes.map((r) => r['@id']);
  }

  before(async () => {
    [caddy, one, two, three] = await Promise.all([
      startCaddy(),
      startUpstream('one'),
      startUpstream('two'),
      startUpstream('three'),
    ]);
    client = new CaddyClient({ adminUrl: caddy.adminUrl, httpListen: caddy.httpListen, log });
  });

  after(async () => {
    await caddy?.stop();
    await Promise.all([one?.close(), two?.close(), three?.close()]);
  });

  test('resync serves its routes and answers an unknown host with a clear 404', async () => {
    assert.equal(await client.isConfigured(), false);
    await client.resync([route('alpha', one)]);
    assert.equal(await client.isConfigured(), true);

    await assertServed('alpha', one);
    await assertNotServed('nobody');
    assert.deepEqual(await routeIds(), ['alpha']);
  });

  test('upsertRoute adds a route and replaces the upstream of an existing one', async () => {
    await client.resync([route('alpha', one)]);

    await client.upsertRoute(route('beta', two));
    await assertServed('beta', two);
    await assertServed('alpha', one);

    await client.upsertRoute(route('alpha', three));
    await assertServed('alpha', three);
    assert.deepEqual(await routeIds(), ['alpha', 'beta']);

    // Concurrent upserts of one new id: serialized, so the second replaces the
    // first instead of both appending (which Caddy would refuse as a duplicate @id).
    await Promise.all([
      client.upsertRoute(route('gamma', one)),
      client.upsertRoute(route('gamma', two)),
      client.upsertRoute(route('delta', three)),
    ]);
    assert.deepEqual(await routeIds(), ['alpha', 'beta', 'gamma', 'delta']);
    await assertServed('gamma', two);
    await assertServed('delta', three);
  });

  test('removeRoute stops one host and leaves the others; a missing id is fine', async () => {
    await client.resync([route('alpha', one), route('beta', two)]);

    await client.removeRoute('beta');
    await assertNotServed('beta');
    await assertServed('alpha', one);

    await client.removeRoute('beta');
    await client.removeRoute('never-existed');
    assert.deepEqual(await routeIds(), ['alpha']);
  });

  test('an upstream that is down answers 502 at once', async () => {
    const closedPort = await freePort();
    await client.resync([route('down', `127.0.0.1:${closedPort}`)]);
    const res = await get('down.pods.test');
    assert.equal(res.status, 502);
  });

  test('after Caddy restarts empty, isConfigured is false and resync restores every route', async () => {
    await client.resync([route('alpha', one), route('beta', two)]);
    assert.equal(await client.isConfigured(), true);

    await caddy.restart();
    assert.equal(await client.isConfigured(), false);

    // An upsert on an empty Caddy writes nothing and says so: one route alone would hide the loss of the others.
    assert.equal(await client.upsertRoute(route('beta', two)), 'base-missing');
    assert.equal(await client.isConfigured(), false);

    await client.resync([route('alpha', one), route('beta', two)]);
    await assertServed('alpha', one);
    await assertServed('beta', two);
  });

  test('a route Caddy rejects leaves the running routes serving', async () => {
    await client.resync([route('alpha', one)]);

    // Caddy refuses this host while provisioning (invalid punycode, answered
    // 500) and keeps its last good config.
    await assert.rejects(
      client.upsertRoute({ id: 'bad', host: 'xn--55555555.example', upstream: two.dial }),
      expectCaddyError('CADDY_REJECTED', true, /idna/),
    );
    await assertServed('alpha', one);
    assert.deepEqual(await routeIds(), ['alpha']);

    // Caddy would accept this dial string and fail every request; the client refuses it unsent.
    await assert.rejects(
      client.upsertRoute({ id: 'bad', host: 'bad.pods.test', upstream: 'not a dial address:::' }),
      expectCaddyError('CADDY_REJECTED'),
    );
    await assert.rejects(client.resync([route('alpha', one), route('alpha', two)]), expectCaddyError('CADDY_REJECTED'));
    await assert.rejects(client.removeRoute('pods-routes'), expectCaddyError('CADDY_REJECTED'));
    assert.deepEqual(await routeIds(), ['alpha']);

    // Failed writes do not block the queue.
    await client.upsertRoute(route('beta', two));
    await assertServed('beta', two);
    await assertServed('alpha', one);
  });

  test('an admin endpoint that does not answer gives CADDY_UNREACHABLE', async () => {
    const nowhere = new CaddyClient({
      adminUrl: `http://127.0.0.1:${await freePort()}`,
      httpListen: caddy.httpListen,
      log,
    });
    await assert.rejects(nowhere.isConfigured(), expectCaddyError('CADDY_UNREACHABLE'));
    await assert.rejects(nowhere.upsertRoute(route('alpha', one)), expectCaddyError('CADDY_UNREACHABLE'));
  });

  test("a WebSocket through Caddy survives another pod's config change", { timeout: 10_000 }, async () => {
    await client.resync([route('alpha', one)]);
    const ws = new WebSocket(`ws://${caddy.httpListen}/`, { headers: { host: 'alpha.pods.test' } });
    const messages: string[] = [];
    let closed: number | undefined;
    ws.once('close', (code) => (closed = code));
    const next = () =>
      new Promise<string>((resolve, reject) => {
        if (closed !== undefined) return reject(new Error(`WebSocket closed with ${closed}`));
        ws.once('message', (m) => resolve(String(m)));
        ws.once('close', (code) => reject(new Error(`WebSocket closed with ${code}`)));
      });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      ws.send('a');
      messages.push(await next());

      await client.upsertRoute(route('beta', two));
      await assertServed('beta', two);

      ws.send('b');
      messages.push(await next());
      assert.deepEqual(messages, ['one:a', 'one:b']);
    } finally {
      ws.terminate();
    }
  });
});

describe('CaddyClient through a unix-socket admin API', { skip: skipWithoutCaddy(), timeout: 60_000 }, () => {
  const log = createLogger('test', 'silent');
  let caddy: RunningCaddy;
  let upstream: Upstream;
  before(async () => {
    [caddy, upstream] = await Promise.all([startCaddy({ adminSocket: true }), startUpstream('sock')]);
  });
  after(async () => {
    await caddy?.stop();
    await upstream?.close();
  });

  test('routes are written and served; the socket is writable by its owner only, and no TCP admin port is left open', async () => {
    const socket = caddy.adminUrl.slice('unix://'.length);
    assert.equal((await stat(socket)).mode & 0o777, 0o200);
    const client = new CaddyClient({ adminUrl: caddy.adminUrl, httpListen: caddy.httpListen, log });
    await client.resync([{ id: 'sockroute', host: 'sock.pods.test', upstream: upstream.dial }]);
    await client.upsertRoute({ id: 'sockroute2', host: 'sock2.pods.test', upstream: upstream.dial });
    for (const host of ['sock.pods.test', 'sock2.pods.test']) {
      const res = await request(`http://${caddy.httpListen}/`, { headers: { host } });
      assert.equal(await res.body.text(), `sock ${host}`);
    }
    // Our config keeps the admin API on the socket: Caddy's default TCP admin port is not served.
    const config = JSON.parse(await (await request('http://localhost/config/', { dispatcher: new Agent({ connect: { socketPath: socket } }) })).body.text());
    assert.equal(config.admin.listen, `unix/${socket}`);
    assert.throws(() => new CaddyClient({ adminUrl: 'unix://host/sock', httpListen: caddy.httpListen, log }), /unix:\/\/\/path/);
  });
});
