// Database pods from templates, reached with their usual clients through Caddy's layer4 app:
// real dockerd, Redis, Caddy, coordinator, agent, redis-cli and psql. The coordinator serves the
// templates as `npm run up` does where no image registry answers: with templates/local/, whose
// images are built from Debian's packages, as the templates' latest, so no tag is needed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LOCAL_TEMPLATES_DIR } from '../../coordinator/builtin-templates.js';
import { skipWithoutCaddy, startCaddy, type RunningCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { run } from '../helpers/run.js';
import { startStack, type Stack } from '../helpers/stack.js';

describe('database pods over TCP', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  let tlsPort: number;
  let edge: RunningCaddy;
  let edgeTlsPort: number;

  before(async () => {
    tlsPort = await freePort();
    edgeTlsPort = await freePort();
    edge = await startCaddy();
    // Below the ephemeral range (32768+), so no outgoing connection or freePort() can hold one.
    const first = 20_000 + Math.floor(Math.random() * 12_000);
    s = await startStack({
      agentEnv: { PODS_CADDY_TLS_LISTEN: `127.0.0.1:${tlsPort}` },
      coordinatorEnv: {
        PODS_TCP_PORT_RANGE: `${first}-${first + 20}`,
        PODS_PUBLIC_TLS_PORT: String(tlsPort),
        // The edge passes TLS through by SNI to the host's Caddy, which ends it.
        PODS_EDGE_ADMIN_URL: edge.adminUrl,
        PODS_EDGE_HTTP_LISTEN: edge.httpListen,
        PODS_EDGE_TLS_LISTEN: `127.0.0.1:${edgeTlsPort}`,
        PODS_EDGE_TCP_HOST: '127.0.0.2',
        PODS_TEMPLATES_LOCAL_DIR: LOCAL_TEMPLATES_DIR,
      },
    });
  });
  after(async () => {
    await s?.stop();
    await edge?.stop();
  });

  const redisCli = (target: string[], password: string, ...cmd: string[]) =>
    run('redis-cli', ['--no-auth-warning', '-h', '127.0.0.1', ...target, '-a', password, ...cmd]);

  test('a redis pod: AUTH, PING, SET, GET through TLS by host name and through its dedicated port', async () => {
    const created = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'cache', template: 'redis' } });
    assert.equal(created.status, 200, created.body.message);
    const pod = await s.waitStatus('cache', 'RUNNING', 60_000);
    const host = `cache.pods.${s.tenant}.${s.baseDomain}`;
    assert.equal(pod.networking.default.url, `${host}:${tlsPort}`, 'the URL names the shared TLS port');
    const plain = pod.networking.plain.url as string;
    assert.match(plain, new RegExp(`^cache-plain\\.pods\\.${s.tenant}\\.${s.baseDomain}:\\d+$`));
    const dedicated = Number(plain.split(':')[1]);
    const { user_password: password } = (await s.api('GET', '/v3/pods/cache/credentials', { token: s.userToken })).body.result;
    assert.ok(password.length >= 30);

    const sni = ['--tls', '--sni', host, '--insecure', '-p', String(tlsPort)];
    assert.equal((await redisCli(sni, password, 'PING')).out.trim(), 'PONG');
    assert.equal((await redisCli(sni, password, 'SET', 'greeting', 'hello')).out.trim(), 'OK');
    assert.equal((await redisCli(sni, password, 'GET', 'greeting')).out.trim(), 'hello');
    assert.match((await redisCli(sni, 'not-the-password', 'PING')).out, /WRONGPASS|invalid password|NOAUTH/);

    const port = ['-p', String(dedicated)];
    const got = (await redisCli(port, password, 'GET', 'greeting')).out.trim();
    assert.equal(got, 'hello', `the same server on the dedicated port\n${s.agent.output.split('\n').filter((l) => /caddy|route|refused|warn/i.test(l)).slice(-15).join('\n')}`);
    assert.match((await redisCli(port, 'not-the-password', 'PING')).out, /WRONGPASS|invalid password|NOAUTH/);

    // And through the edge, the cluster's one entry point: TLS by SNI, and the dedicated port.
    const viaEdge = ['--tls', '--sni', host, '--insecure', '-p', String(edgeTlsPort)];
    await waitFor('the edge to route the pod', async () => (await redisCli(viaEdge, password, 'GET', 'greeting')).out.trim() === 'hello', 15_000);
    const edgePort = await waitFor('the edge port', async () => {
      const r = await run('redis-cli', ['--no-auth-warning', '-h', '127.0.0.2', '-p', String(dedicated), '-a', password, 'GET', 'greeting']);
      return r.out.trim() === 'hello';
    }, 15_000);
    assert.ok(edgePort);

    // Stopping closes both ways in, and gives the port back.
    await s.api('GET', '/v3/pods/cache/stop', { token: s.userToken });
    await s.waitStatus('cache', 'STOPPED');
    await waitFor('the dedicated port to close', async () => (await redisCli(port, password, 'PING')).out.trim() !== 'PONG');
    assert.notEqual((await redisCli(sni, password, 'PING')).out.trim(), 'PONG');
    assert.equal((await s.api('GET', '/v3/pods/cache', { token: s.userToken })).body.result.networking.plain.url, `cache-plain.pods.${s.tenant}.${s.baseDomain}`);
  });

  test('a postgres pod: psql with sslmode=require by the pod host name, generated credentials, SELECT 1', async () => {
    const created = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'pgdb', template: 'postgres' } });
    assert.equal(created.status, 200, created.body.message);
    const pod = await s.waitStatus('pgdb', 'RUNNING', 90_000);
    const [host, port] = (pod.networking.default.url as string).split(':');
    assert.equal(Number(port), tlsPort);
    const creds = (await s.api('GET', '/v3/pods/pgdb/credentials', { token: s.userToken })).body.result;
    const psql = (password: string) =>
      run('psql', [`hostaddr=127.0.0.1 host=${host} port=${tlsPort} user=${creds.user_username} dbname=pgdb sslmode=require`, '-Atc', 'SELECT 1'], {
        env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: '5' },
      });
    const ok = await psql(creds.user_password);
    assert.equal(ok.out.trim(), '1', ok.out);
    const viaEdge = () =>
      run('psql', [`hostaddr=127.0.0.1 host=${host} port=${edgeTlsPort} user=${creds.user_username} dbname=pgdb sslmode=require`, '-Atc', 'SELECT 1'], {
        env: { PGPASSWORD: creds.user_password, PGCONNECT_TIMEOUT: '5' },
      });
    await waitFor('psql through the edge', async () => (await viaEdge()).out.trim() === '1', 15_000);
    assert.match((await psql('wrong-password')).out, /password authentication failed/);
    await s.api('GET', '/v3/pods/pgdb/stop', { token: s.userToken });
    await s.waitStatus('pgdb', 'STOPPED');
    assert.notEqual((await psql(creds.user_password)).out.trim(), '1', 'the route is gone after stop');
  });
});
