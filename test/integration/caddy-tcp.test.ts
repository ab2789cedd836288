// TCP routes of CaddyClient (Caddy's layer4 app) against a real Caddy, real Redis and
// PostgreSQL containers (the local Debian images) and the real clients, redis-cli and psql.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import Docker from 'dockerode';
import { request } from 'undici';
import { CaddyClient, CaddyError, type PodRoute, type TcpRoute } from '../../agent/caddy.js';
import { createLogger } from '../../shared/log.js';
import { skipWithoutCaddy, startCaddy, type RunningCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { run, type Ran } from '../helpers/run.js';

const REDIS_IMAGE = 'pods-test/redis:bookworm';
const POSTGRES_IMAGE = 'pods-test/postgres:bookworm';
const LABELS = { 'pods.test': 'caddy-tcp' };
const docker = new Docker();

function skipReason(): string | false {
  const noCaddy = skipWithoutCaddy();
  if (noCaddy) return noCaddy;
  // In CI a missing piece is a failure, never a quiet skip.
  if (process.env.CI) return false;
  try {
    execFileSync('docker', ['image', 'inspect', REDIS_IMAGE, POSTGRES_IMAGE], { stdio: 'ignore' });
  } catch {
    return `no Docker, or no ${REDIS_IMAGE} / ${POSTGRES_IMAGE} (as root: ops/images/build-template-images.sh)`;
  }
  for (const cli of ['redis-cli', 'psql']) {
    try {
      execFileSync(cli, ['--version'], { stdio: 'ignore' });
    } catch {
      return `no ${cli} (apt-get install redis-tools postgresql-client)`;
    }
  }
  return false;
}

/** A database container run as the agent runs pods: uid 1000, no capabilities, tini, loopback-published port. */
async function startDb(image: string, port: number, env: Record<string, string>): Promise<string> {
  const container = await docker.createContainer({
    Image: image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    User: '1000:1000',
    Labels: LABELS,
    ExposedPorts: { [`${port}/tcp`]: {} },
    HostConfig: {
      PortBindings: { [`${port}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: '' }] },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
    },
  });
  await container.start();
  const info = await container.inspect();
  const published = info.NetworkSettings.Ports[`${port}/tcp`]?.[0]?.HostPort;
  assert.ok(published, `${image}: port ${port} not published`);
  return `127.0.0.1:${published}`;
}

async function removeTestContainers(): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: ['pods.test=caddy-tcp'] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

interface Echo {
  dial: string;
  close(): Promise<void>;
}

/** A TCP server that answers each chunk with "<name>:<chunk>". */
async function startEcho(name: string): Promise<Echo> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('data', (d) => socket.write(`${name}:${d.toString()}`));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    dial: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Send one message, wait for one reply. */
function exchange(socket: net.Socket, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      cleanup();
      resolve(d.toString());
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('connection closed'));
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('close', onEnd);
      socket.off('error', onEnd);
    };
    socket.on('data', onData);
    socket.once('close', onEnd);
    socket.once('error', onEnd);
    socket.write(message);
  });
}

function connectPlain(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

function expectRefused(fromCaddy = false, text?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CaddyError, `expected CaddyError, got ${String(err)}`);
    assert.equal(err.code, 'CADDY_REJECTED');
    assert.equal(typeof err.status, fromCaddy ? 'number' : 'undefined', err.message);
    if (text) assert.match(err.message, text);
    return true;
  };
}

describe('TCP routes through Caddy layer4, with real databases and clients', { skip: skipReason(), timeout: 180_000 }, () => {
  const log = createLogger('caddy-tcp-test', process.env.PODS_LOG_LEVEL ?? 'silent');
  const redisPassword = randomBytes(24).toString('base64url');
  const pg = { user: 'pods_user', password: randomBytes(24).toString('base64url'), db: 'appdb' };
  let caddy: RunningCaddy;
  let client: CaddyClient;
  let tlsPort: number;
  let redis: string; // 127.0.0.1:PORT of the container
  let postgres: string;
  let one: Echo;
  let two: Echo;
  let tmp: string;
  let rootCert: string; // Caddy's internal root CA, PEM file

  const sni = (id: string, upstream: string, protocol?: 'tcp' | 'postgres'): TcpRoute => ({
    kind: 'sni',
    id,
    host: `${id}.pods.test`,
    upstream,
    ...(protocol ? { protocol } : {}),
  });
  const port = (id: string, listenPort: number, upstream: string): TcpRoute => ({
    kind: 'port',
    id,
    listen: `127.0.0.1:${listenPort}`,
    upstream,
  });

  /** PING, SET, GET through redis-cli; the replies, one per line. */
  async function redisCli(target: string[], password = redisPassword): Promise<Ran> {
    const key = `k${randomBytes(4).toString('hex')}`;
    return run('redis-cli', ['--no-auth-warning', '-h', '127.0.0.1', ...target, '-a', password], {
      input: `PING\nSET ${key} hello\nGET ${key}\n`,
    });
  }
  const viaSni = (host: string) => ['--tls', '--sni', host, '--insecure', '-p', String(tlsPort)];

  /** PING, SET, GET answered (after a change, once the listener's reload is over). */
  async function assertRedisServed(target: string[]): Promise<void> {
    let last = '';
    await waitFor(`redis through ${target.join(' ')}`, async () => {
      last = (await redisCli(target)).out;
      return last.trim().split('\n').join(' ') === 'PONG OK hello';
    }, 10_000, 100).catch(() => undefined);
    assert.equal(last.trim().split('\n').join(' '), 'PONG OK hello', last);
  }

  function psql(conninfo: string, sql = 'SELECT 1'): Promise<Ran> {
    return run('psql', [conninfo, '-Atc', sql], { env: { PGPASSWORD: pg.password, PGCONNECT_TIMEOUT: '5' } });
  }
  /** libpq sends `host` as SNI only when it is a name; hostaddr keeps DNS out of it. */
  const pgVia = (host: string, sslmode = 'require') =>
    `hostaddr=127.0.0.1 host=${host} port=${tlsPort} user=${pg.user} dbname=${pg.db} sslmode=${sslmode}`;

  function connectTls(servername: string, alpn?: string[]): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: tlsPort,
        servername,
        ca: rootCert,
        ...(alpn ? { ALPNProtocols: alpn } : {}),
      });
      socket.once('secureConnect', () => resolve(socket));
      socket.once('error', reject);
    });
  }

  // A connection that races the listener's reload just after a config change is cut; the
  // first one after the reload gets through. Every "serves" check right after a change waits so.
  const settledTls = (host: string, alpn?: string[]) => waitFor(`a TLS handshake with ${host}`, () => connectTls(host, alpn), 10_000, 100);
  const settledPsql = (conninfo: string) =>
    waitFor(`psql through ${conninfo}`, async () => (await psql(conninfo)).out.trim() === '1', 10_000, 100);

  async function tlsNames(): Promise<string[]> {
    const res = await request(`${caddy.adminUrl}/config/apps/tls/automation/policies`, { reset: true });
    const policies = (await res.body.json()) as Array<{ subjects?: string[] }>;
    return policies.flatMap((p) => p.subjects ?? []);
  }

  async function layer4(): Promise<unknown> {
    const res = await request(`${caddy.adminUrl}/config/apps/layer4`, { reset: true });
    return res.body.json();
  }

  before(async () => {
    await removeTestContainers();
    tlsPort = await freePort();
    tmp = await mkdtemp(path.join(tmpdir(), 'pods-caddy-tcp-'));
    [caddy, one, two, redis, postgres] = await Promise.all([
      startCaddy(),
      startEcho('one'),
      startEcho('two'),
      startDb(REDIS_IMAGE, 6379, { REDIS_PASSWORD: redisPassword }),
      startDb(POSTGRES_IMAGE, 5432, { POSTGRES_USER: pg.user, POSTGRES_PASSWORD: pg.password, POSTGRES_DB: pg.db }),
    ]);
    client = new CaddyClient({ adminUrl: caddy.adminUrl, httpListen: caddy.httpListen, tlsListen: `127.0.0.1:${tlsPort}`, log });
    const redisPort = redis.split(':')[1];
    const pgPort = postgres.split(':')[1];
    await waitFor('redis in its container', async () => (await redisCli(['-p', redisPort!])).out.startsWith('PONG'), 30_000, 200);
    await waitFor(
      'postgres in its container',
      async () => (await psql(`host=127.0.0.1 port=${pgPort} user=${pg.user} dbname=${pg.db} sslmode=require`)).out.trim() === '1',
      60_000,
      250,
    );
    await client.resync([]);
    const ca = await request(`${caddy.adminUrl}/pki/ca/local`, { reset: true });
    rootCert = ((await ca.body.json()) as { root_certificate: string }).root_certificate;
    await writeFile(path.join(tmp, 'root.crt'), rootCert);
  });

  after(async () => {
    await caddy?.stop();
    await Promise.all([one?.close(), two?.close(), removeTestContainers()]);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('redis through the shared TLS port by SNI: AUTH, PING, SET, GET; a wrong password is refused', async () => {
    await client.resync([], [sni('redis-a', redis)]);
    await assertRedisServed(viaSni('redis-a.pods.test'));

    const wrong = await redisCli(viaSni('redis-a.pods.test'), 'not-the-password');
    assert.match(wrong.out, /WRONGPASS/);
    assert.doesNotMatch(wrong.out, /PONG/);

    // No route for this name: the handshake is cut, nothing reaches any pod.
    const unknown = await redisCli(viaSni('nobody.pods.test'));
    assert.match(unknown.out, /Could not connect to Redis.*SSL_connect failed/);
    assert.doesNotMatch(unknown.out, /PONG/);
  });

  test('redis through a dedicated port, plain TCP', async () => {
    const listenPort = await freePort();
    await client.resync([]);
    assert.equal(await client.upsertTcpRoute(port('redis-p', listenPort, redis)), 'written');
    await assertRedisServed(['-p', String(listenPort)]);
    const wrong = await redisCli(['-p', String(listenPort)], 'not-the-password');
    assert.match(wrong.out, /WRONGPASS/);
    assert.doesNotMatch(wrong.out, /PONG/);
  });

  test('psql with sslmode=require reaches the postgres pod by its host name, with a certificate for that name', async () => {
    await client.resync([]);
    await client.upsertTcpRoute(sni('redis-a', redis));
    assert.equal(await client.upsertTcpRoute(sni('pg-a', postgres, 'postgres')), 'written');

    const res = await psql(pgVia('pg-a.pods.test'), 'SELECT 1');
    assert.equal(res.code, 0, res.out);
    assert.equal(res.out.trim(), '1');

    // The certificate is Caddy's, from its internal CA, for exactly this host name.
    const verified = await psql(`${pgVia('pg-a.pods.test', 'verify-full')} sslrootcert=${path.join(tmp, 'root.crt')}`, 'SELECT current_user');
    assert.equal(verified.out.trim(), pg.user, verified.out);
    assert.deepEqual((await tlsNames()).sort(), ['pg-a.pods.test', 'redis-a.pods.test']);

    const unknown = await psql(pgVia('nobody.pods.test'));
    assert.notEqual(unknown.code, 0);
    // Redis on the same listener still answers beside it.
    await assertRedisServed(viaSni('redis-a.pods.test'));
  });

  test('a removed route is gone (connections refused or cut) and the others still serve', async () => {
    const listenPort = await freePort();
    await client.resync([], [sni('redis-a', redis), sni('pg-a', postgres, 'postgres'), port('redis-p', listenPort, redis)]);
    assert.equal((await psql(pgVia('pg-a.pods.test'))).out.trim(), '1');

    await client.removeRoute('pg-a');
    const gone = await psql(pgVia('pg-a.pods.test'));
    assert.notEqual(gone.code, 0, gone.out);
    assert.deepEqual(await tlsNames(), ['redis-a.pods.test']);

    await client.removeRoute('redis-p');
    await assert.rejects(connectPlain(listenPort), /ECONNREFUSED/);

    await client.removeRoute('redis-p');
    await client.removeRoute('never-existed');
    await assertRedisServed(viaSni('redis-a.pods.test'));
  });

  test('a bad TCP route is refused, here or by Caddy, and the running routes keep serving', async () => {
    const listenPort = await freePort();
    await client.resync([], [sni('alpha', one.dial), port('beta', listenPort, two.dial)]);
    const before = await layer4();

    const bad: Array<[TcpRoute, RegExp]> = [
      [{ kind: 'port', id: 'x', listen: `0.0.0.0:${listenPort + 1}`, upstream: one.dial }, /every interface/],
      [{ kind: 'port', id: 'x', listen: `:${listenPort + 1}`, upstream: one.dial }, /not IP:PORT/],
      [{ kind: 'port', id: 'x', listen: 'localhost:2000', upstream: one.dial }, /not IP:PORT/],
      [{ kind: 'port', id: 'x', listen: '127.0.0.1:70000', upstream: one.dial }, /not IP:PORT/],
      [{ kind: 'port', id: 'x', listen: `127.0.0.1:${tlsPort}`, upstream: one.dial }, /Caddy's own/],
      [{ kind: 'port', id: 'x', listen: `127.0.0.1:${listenPort}`, upstream: one.dial }, /port of route beta/],
      [{ kind: 'sni', id: 'x', host: 'alpha.pods.test', upstream: one.dial }, /served by route alpha/],
      [{ kind: 'sni', id: 'x', host: 'bad host', upstream: one.dial }, /not a hostname/],
      [{ kind: 'sni', id: 'x', host: '{http.request.host}', upstream: one.dial }, /not a hostname/],
      [{ kind: 'sni', id: 'x', host: 'x.pods.test', upstream: 'not a dial address:::' }, /not host:port/],
      [{ kind: 'sni', id: 'x', host: 'x.pods.test', upstream: one.dial, protocol: 'mysql' as 'tcp' }, /protocol/],
      [{ kind: 'udp', id: 'x', upstream: one.dial } as unknown as TcpRoute, /kind/],
      [{ kind: 'sni', id: 'pods-tls', host: 'x.pods.test', upstream: one.dial }, /not allowed/],
      [{ kind: 'sni', id: 'a/b', host: 'x.pods.test', upstream: one.dial }, /not allowed/],
    ];
    for (const [route, text] of bad) await assert.rejects(client.upsertTcpRoute(route), expectRefused(false, text));

    // Only Caddy can tell that the port is taken: it refuses, and keeps its last good config.
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const taken = (squatter.address() as AddressInfo).port;
    try {
      await assert.rejects(client.upsertTcpRoute(port('gamma', taken, one.dial)), expectRefused(true, /address already in use/));
    } finally {
      squatter.close();
    }
    assert.deepEqual(await layer4(), before);

    // An SNI route needs the TLS listener.
    const noTls = new CaddyClient({ adminUrl: caddy.adminUrl, httpListen: caddy.httpListen, log });
    await assert.rejects(noTls.upsertTcpRoute(sni('delta', one.dial)), expectRefused(false, /no TLS listener/));
    assert.throws(() => new CaddyClient({ ...{ adminUrl: caddy.adminUrl, httpListen: caddy.httpListen, log }, tlsListen: '0.0.0.0:8443' }), TypeError);

    const a = await connectTls('alpha.pods.test');
    const b = await connectPlain(listenPort);
    try {
      assert.equal(await exchange(a, 'ping'), 'one:ping');
      assert.equal(await exchange(b, 'ping'), 'two:ping');
    } finally {
      a.destroy();
      b.destroy();
    }
    // Failed writes do not block the queue.
    assert.equal(await client.upsertTcpRoute(sni('gamma', two.dial)), 'written');
  });

  test("an open TCP connection survives other routes' changes", async () => {
    const listenPort = await freePort();
    await client.resync([], [sni('alpha', one.dial), port('beta', listenPort, two.dial)]);
    const a = await connectTls('alpha.pods.test');
    const b = await connectPlain(listenPort);
    try {
      assert.equal(await exchange(a, '1'), 'one:1');
      assert.equal(await exchange(b, '1'), 'two:1');

      await client.upsertTcpRoute(sni('gamma', two.dial));
      await client.upsertTcpRoute(port('delta', await freePort(), one.dial));
      await client.removeRoute('gamma');
      await client.upsertRoute({ id: 'web', host: 'web.pods.test', upstream: one.dial });

      assert.equal(await exchange(a, '2'), 'one:2');
      assert.equal(await exchange(b, '2'), 'two:2');
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  test('ALPN: a postgres route selects "postgresql" (libpq 17+); a tcp route lets any client through', async () => {
    await client.resync([], [sni('alpha', one.dial), sni('pgish', two.dial, 'postgres')]);
    const pgClient = await settledTls('pgish.pods.test', ['postgresql']);
    const other = await settledTls('alpha.pods.test', ['h2', 'x-custom']);
    try {
      assert.equal(pgClient.alpnProtocol, 'postgresql');
      assert.equal(other.alpnProtocol, false);
      assert.equal(await exchange(other, 'hi'), 'one:hi');
    } finally {
      pgClient.destroy();
      other.destroy();
    }
  });

  test('a pod entry may change between HTTP and TCP under the same id', async () => {
    const web = http.createServer((_req, res) => res.end('web'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const webDial = `127.0.0.1:${(web.address() as AddressInfo).port}`;
    const get = async () => {
      const res = await request(`${caddy.httpUrl}/`, { headers: { host: 'switch.pods.test' }, reset: true });
      return res.statusCode + ' ' + (await res.body.text()).trim();
    };
    try {
      await client.resync([{ id: 'switch', host: 'switch.pods.test', upstream: webDial }]);
      assert.equal(await get(), '200 web');

      assert.equal(await client.upsertTcpRoute(sni('switch', one.dial)), 'written');
      assert.equal(await get(), '404 no pod is served at switch.pods.test');
      const a = await settledTls('switch.pods.test');
      assert.equal(await exchange(a, 'x'), 'one:x');
      a.destroy();

      assert.equal(await client.upsertRoute({ id: 'switch', host: 'switch.pods.test', upstream: webDial }), 'written');
      assert.equal(await get(), '200 web');
      await assert.rejects(connectTls('switch.pods.test'));
      assert.deepEqual(await tlsNames(), []);
    } finally {
      web.close();
    }
  });

  test('resync serves HTTP and TCP together, leaves out only the routes that fail, and restores all after Caddy restarts empty', async () => {
    const listenPort = await freePort();
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const taken = (squatter.address() as AddressInfo).port;
    const httpRoutes: PodRoute[] = [{ id: 'web', host: 'web.pods.test', upstream: '127.0.0.1:1' }];
    const tcpRoutes: TcpRoute[] = [
      sni('redis-a', redis),
      sni('pg-a', postgres, 'postgres'),
      port('redis-p', listenPort, redis),
      port('squatted', taken, one.dial), // Caddy cannot bind it
      { kind: 'sni', id: 'bad', host: 'bad host', upstream: one.dial }, // refused before sending
    ];
    try {
      const { refused } = await client.resync(httpRoutes, tcpRoutes);
      assert.deepEqual(refused.map((r) => r.id).sort(), ['bad', 'squatted']);
      assert.match(refused.find((r) => r.id === 'squatted')!.message, /address already in use/);

      await assertRedisServed(viaSni('redis-a.pods.test'));
      await assertRedisServed(['-p', String(listenPort)]);
      assert.ok(await settledPsql(pgVia('pg-a.pods.test')));
      const web = await request(`${caddy.httpUrl}/`, { headers: { host: 'web.pods.test' }, reset: true });
      await web.body.dump();
      assert.equal(web.statusCode, 502); // served by its route; the upstream is down on purpose

      // Ids are ids, whatever their kind: one appearing twice refuses the whole resync, unsent.
      await assert.rejects(client.resync(httpRoutes, [sni('web', one.dial)]), expectRefused(false, /twice/));

      await caddy.restart();
      assert.equal(await client.isConfigured(), false);
      assert.equal(await client.upsertTcpRoute(sni('redis-a', redis)), 'base-missing');
      assert.equal(await client.isConfigured(), false);

      squatter.close();
      const again = await client.resync(httpRoutes, tcpRoutes.slice(0, 4));
      assert.deepEqual(again.refused, []);
      assert.equal(await client.isConfigured(), true);
      await assertRedisServed(viaSni('redis-a.pods.test'));
      await assertRedisServed(['-p', String(listenPort)]);
      assert.ok(await settledPsql(pgVia('pg-a.pods.test')));
    } finally {
      squatter.close();
    }
  });
});
