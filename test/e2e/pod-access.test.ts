// Who may reach a pod: ip_allow_list (HTTP and TCP, through the host's Caddy and through the
// edge), CORS, and tapis_auth's login in a real browser. Real dockerd, Redis, Caddy (host and
// edge), coordinator, agent and headless Chromium. Client addresses are loopback addresses
// bound on this machine: 127.0.0.2 is allowed, 127.0.0.3 is not; the edge reaches the host's
// Caddy from 127.0.0.1 (PODS_EDGE_SOURCE_NETWORKS) and serves dedicated ports on 127.0.0.4.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { skipWithoutCaddy, startCaddy, type RunningCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const ALLOWED = '127.0.0.2';
const REFUSED = '127.0.0.3';

/** GET through `base` (a Caddy's http://IP:PORT) with Host `host`, from local address `from`. */
async function get(base: string, host: string, from: string, headers: Record<string, string> = {}, method = 'GET') {
  const dispatcher = new Agent({ localAddress: from });
  try {
    const res = await request(`${base}/`, { method: method as 'GET', headers: { host, ...headers }, dispatcher });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  } finally {
    await dispatcher.close();
  }
}

/** Bytes a plain HTTP request gets back over a TCP or TLS connection from `from`; '' when the connection is closed on us. */
function rawHttp(opts: { port: number; from: string; tlsHost?: string; address?: string }): Promise<string> {
  return new Promise((resolve) => {
    const common = { host: opts.address ?? '127.0.0.1', port: opts.port, localAddress: opts.from };
    const sock = opts.tlsHost
      ? tlsConnect({ ...common, servername: opts.tlsHost, rejectUnauthorized: false })
      : tcpConnect(common);
    let out = '';
    const done = () => resolve(out);
    sock.setTimeout(5000, () => sock.destroy());
    sock.once(opts.tlsHost ? 'secureConnect' : 'connect', () => sock.write('GET / HTTP/1.0\r\n\r\n'));
    sock.on('data', (d) => (out += d.toString()));
    sock.on('error', done);
    sock.on('close', done);
  });
}

describe('pod access: ip_allow_list, CORS, tapis_auth', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  let edge: RunningCaddy;
  let tlsPort: number;
  let edgeTlsPort: number;
  let hostHttp: string;
  const host = (label: string) => `${label}.pods.${s.tenant}.${s.baseDomain}`;

  before(async () => {
    tlsPort = await freePort();
    edgeTlsPort = await freePort();
    edge = await startCaddy();
    const first = 20_000 + Math.floor(Math.random() * 12_000);
    s = await startStack({
      agentEnv: { PODS_CADDY_TLS_LISTEN: `127.0.0.1:${tlsPort}`, PODS_EDGE_SOURCE_NETWORKS: '127.0.0.1/32' },
      coordinatorEnv: {
        PODS_TCP_PORT_RANGE: `${first}-${first + 20}`,
        PODS_PUBLIC_TLS_PORT: String(tlsPort),
        PODS_EDGE_ADMIN_URL: edge.adminUrl,
        PODS_EDGE_HTTP_LISTEN: edge.httpListen,
        PODS_EDGE_TLS_LISTEN: `127.0.0.1:${edgeTlsPort}`,
        PODS_EDGE_TCP_HOST: '127.0.0.4',
      },
    });
    hostHttp = s.caddy.httpUrl;
  });
  after(async () => {
    await s?.stop();
    await edge?.stop();
  });

  test('every networking field of the spec is accepted, validated and shown back', async () => {
    const entry = {
      protocol: 'http', port: 5000,
      ip_allow_list: ['127.0.0.2/32', '10.1.0.0/16'],
      tapis_auth: true,
      tapis_auth_response_headers: { 'X-Tapis-User': '<<tapisusername>>@<<tapistenantid>>' },
      tapis_auth_allowed_users: ['alice', 'AUTHORIZED_ADMINS'],
      tapis_auth_return_path: '/cgi-bin/whoami',
      cors_allow_origins: ['https://app.example.org'], cors_allow_methods: ['GET'], cors_allow_headers: ['X-Custom'],
      cors_allow_credentials: true, cors_max_age: 600,
      tapis_ui_uri: '/lab', tapis_ui_uri_redirect: true, tapis_ui_uri_description: 'the notebook',
    };
    const made = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'fields', image: TEST_IMAGE, status_requested: 'OFF', networking: { default: entry } } });
    assert.equal(made.status, 200, made.body.message);
    const shown = (await s.api('GET', '/v3/pods/fields', { token: s.userToken })).body.result.networking.default;
    for (const [k, v] of Object.entries(entry)) assert.deepEqual(shown[k], v, k);

    const bad: Array<[object, RegExp]> = [
      [{ ip_allow_list: ['10.0.0.0/33'] }, /^networking\.default\.ip_allow_list\.0: must be an IP address or a CIDR/],
      [{ ip_allow_list: ['example.org'] }, /ip_allow_list\.0: must be an IP address/],
      [{ protocol: 'tcp', tapis_auth: true }, /tapis_auth: applies only to protocol "http"/],
      [{ protocol: 'tcp', cors_allow_origins: ['https://a.org'] }, /cors_allow_origins: applies only to protocol "http"/],
      [{ tapis_auth_return_path: '//evil.example/' }, /tapis_auth_return_path: must be a path/],
      [{ tapis_auth_return_path: 'https://evil.example/' }, /tapis_auth_return_path: must be a path/],
      [{ tapis_auth_response_headers: { 'Bad Header': 'x' } }, /tapis_auth_response_headers/],
      [{ tapis_auth_response_headers: { 'X-A': 'a\r\nSet-Cookie: x=1' } }, /tapis_auth_response_headers\.X-A: must be printable ASCII/],
      [{ tapis_auth_allowed_users: ['.*'] }, /tapis_auth_allowed_users\.0: entries are usernames/],
      [{ cors_allow_origins: ['javascript:alert(1)'] }, /cors_allow_origins\.0: entries are origins/],
      [{ cors_max_age: -1 }, /cors_max_age: must be 0 to 86400/],
      [{ tapis_auth: 'yes' }, /tapis_auth/],
    ];
    for (const [extra, message] of bad) {
      const r = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'badfields', image: TEST_IMAGE, networking: { default: { port: 5000, ...extra } } } });
      assert.equal(r.status, 400, JSON.stringify(extra));
      assert.equal(r.body.status, 'error');
      assert.match(r.body.message, message);
    }
  });

  test('ip_allow_list: an HTTP and two TCP entries refuse other addresses, at the host and at the edge', async () => {
    const allow = [`${ALLOWED}/32`];
    const r = await s.api('POST', '/v3/pods', {
      token: s.userToken,
      body: {
        pod_id: 'fenced', image: TEST_IMAGE,
        networking: {
          default: { protocol: 'http', port: 5000, ip_allow_list: allow },
          tls: { protocol: 'tcp', port: 5000, ip_allow_list: allow },
          raw: { protocol: 'tcp', port: 5000, dedicated_port: true, ip_allow_list: allow },
        },
      },
    });
    assert.equal(r.status, 200, r.body.message);
    const pod = await s.waitStatus('fenced', 'RUNNING', 60_000);
    const rawPort = Number(String(pod.networking.raw.url).split(':')[1]);

    // HTTP, through the host's Caddy.
    assert.equal((await get(hostHttp, host('fenced'), ALLOWED)).status, 200);
    const refused = await get(hostHttp, host('fenced'), REFUSED);
    assert.equal(refused.status, 403);
    assert.match(refused.body, /may not reach this pod/);
    // HTTP, through the edge: the edge checks the client's own address.
    await waitFor('the pod through the edge', async () => (await get(edge.httpUrl, host('fenced'), ALLOWED)).status === 200, 15_000);
    assert.equal((await get(edge.httpUrl, host('fenced'), REFUSED)).status, 403);

    // TCP by SNI on the host's TLS listener and on the edge's.
    assert.match(await rawHttp({ port: tlsPort, from: ALLOWED, tlsHost: host('fenced-tls') }), /hello from/);
    assert.equal(await rawHttp({ port: tlsPort, from: REFUSED, tlsHost: host('fenced-tls') }), '');
    await waitFor('TLS through the edge', async () => /hello from/.test(await rawHttp({ port: edgeTlsPort, from: ALLOWED, tlsHost: host('fenced-tls') })), 15_000);
    assert.equal(await rawHttp({ port: edgeTlsPort, from: REFUSED, tlsHost: host('fenced-tls') }), '');
    // TCP on a dedicated port: the host's Caddy listens on 127.0.0.1, the edge on PODS_EDGE_TCP_HOST.
    assert.match(await rawHttp({ port: rawPort, from: ALLOWED }), /hello from/);
    assert.equal(await rawHttp({ port: rawPort, from: REFUSED }), '');
    await waitFor('the dedicated port through the edge', async () => /hello from/.test(await rawHttp({ port: rawPort, from: ALLOWED, address: '127.0.0.4' })), 15_000);
    assert.equal(await rawHttp({ port: rawPort, from: REFUSED, address: '127.0.0.4' }), '');

    // An entry without a list still serves everyone.
    const open = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'unfenced', image: TEST_IMAGE } });
    assert.equal(open.status, 200, open.body.message);
    await s.waitStatus('unfenced', 'RUNNING', 60_000);
    assert.equal((await get(hostHttp, host('unfenced'), REFUSED)).status, 200);
  });

  test('CORS: preflights from an allowed and a refused origin; headers on a normal answer', async () => {
    const r = await s.api('POST', '/v3/pods', {
      token: s.userToken,
      body: {
        pod_id: 'corsy', image: TEST_IMAGE,
        networking: { default: { port: 5000, cors_allow_origins: ['https://app.example.org'], cors_allow_methods: ['GET', 'PUT'], cors_allow_headers: ['X-Custom'], cors_allow_credentials: true, cors_max_age: 600 } },
      },
    });
    assert.equal(r.status, 200, r.body.message);
    await s.waitStatus('corsy', 'RUNNING', 60_000);
    const preflight = (origin: string) => get(hostHttp, host('corsy'), ALLOWED, { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-custom' }, 'OPTIONS');

    const yes = await preflight('https://app.example.org');
    assert.equal(yes.status, 204);
    assert.equal(yes.headers['access-control-allow-origin'], 'https://app.example.org');
    assert.equal(yes.headers['access-control-allow-methods'], 'GET, PUT');
    assert.equal(yes.headers['access-control-allow-headers'], 'X-Custom');
    assert.equal(yes.headers['access-control-allow-credentials'], 'true');
    assert.equal(yes.headers['access-control-max-age'], '600');

    const no = await preflight('https://evil.example.org');
    assert.equal(no.status, 403);
    assert.equal(no.headers['access-control-allow-origin'], undefined);

    const normal = await get(hostHttp, host('corsy'), ALLOWED, { origin: 'https://app.example.org' });
    assert.equal(normal.status, 200);
    assert.match(normal.body, /hello from/);
    assert.equal(normal.headers['access-control-allow-origin'], 'https://app.example.org');
    assert.equal(normal.headers['access-control-allow-credentials'], 'true');
    const foreign = await get(hostHttp, host('corsy'), ALLOWED, { origin: 'https://evil.example.org' });
    assert.equal(foreign.status, 200);
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);
  });

  test('tapis_auth in a browser: login, wrong password, allowed users, headers to the pod, cookie per host', { skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM}` }, async () => {
    await s.addUser(s.tenant, 'alice', 'alice-password-1');
    await s.addUser(s.tenant, 'bob', 'bob-password-12');
    // busybox httpd with a CGI script that shows what it was sent.
    const script = [
      'mkdir -p /tmp/www/cgi-bin',
      'echo "pod home" > /tmp/www/index.html',
      "/bin/busybox printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"user=$HTTP_X_TAPIS_USER\"\\necho \"cookie=$HTTP_COOKIE\"\\n' > /tmp/www/cgi-bin/whoami",
      '/bin/busybox chmod 755 /tmp/www/cgi-bin/whoami',
      'exec httpd -f -p 5000 -h /tmp/www',
    ].join('; ');
    const authEntry = (extra: object) => ({
      port: 5000, tapis_auth: true, tapis_auth_return_path: '/cgi-bin/whoami',
      tapis_auth_response_headers: { 'X-Tapis-User': '<<tapisusername>>@<<tapistenantid>>' }, ...extra,
    });
    for (const [podId, users] of [['guarded', ['alice']], ['another', ['*']]] as const) {
      const r = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: podId, image: TEST_IMAGE, command: ['/bin/sh', '-c', script], networking: { default: authEntry({ tapis_auth_allowed_users: users }) } } });
      assert.equal(r.status, 200, r.body.message);
    }
    await s.waitStatus('guarded', 'RUNNING', 60_000);
    await s.waitStatus('another', 'RUNNING', 60_000);

    // Without a browser: no cookie is a redirect to the login page; a forged header never reaches the pod.
    const bare = await get(hostHttp, host('guarded'), ALLOWED, { 'x-tapis-user': 'root@admin' });
    assert.equal(bare.status, 302);
    assert.match(String(bare.headers.location), new RegExp(`/v3/pods/guarded/auth\\?rd=`));
    const forged = await get(hostHttp, host('guarded'), ALLOWED, { cookie: 'pods_auth=eyJ0eXAiOiJ4In0.AAAA' });
    assert.equal(forged.status, 302, 'a forged cookie is no cookie');

    const { chromium } = await import('playwright-core');
    const port = new URL(hostHttp).port;
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', `--host-resolver-rules=MAP *.localhost 127.0.0.1`],
    });
    try {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      const podUrl = `http://${host('guarded')}:${port}/`;
      await page.goto(podUrl);
      assert.match(page.url(), /\/v3\/pods\/guarded\/auth\?rd=/, 'the pod sends the browser to the login page');
      assert.match(await page.textContent('h1') ?? '', /Log in to guarded\./);

      await page.fill('input[name=username]', 'alice');
      await page.fill('input[name=password]', 'wrong-password');
      const wrong = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      assert.equal(wrong[0]?.status(), 401);
      assert.match(await page.content(), /Invalid username or password/);

      await page.fill('input[name=username]', 'alice');
      await page.fill('input[name=password]', 'alice-password-1');
      await Promise.all([page.waitForURL(`http://${host('guarded')}:${port}/cgi-bin/whoami`), page.click('button[type=submit]')]);
      const body = (await page.textContent('body')) ?? '';
      assert.match(body, new RegExp(`user=alice@${s.tenant}`), 'tapis_auth_response_headers reach the pod');
      const cookies = await ctx.cookies();
      const auth = cookies.find((c) => c.name === 'pods_auth');
      assert.ok(auth, 'the login set a cookie');
      assert.equal(auth.domain, host('guarded'), 'host-only');
      assert.equal(auth.httpOnly, true);
      assert.equal(auth.sameSite, 'Lax');
      assert.ok(auth.expires > 0 && auth.expires - Date.now() / 1000 <= 3600 + 5, 'short-lived');
      // Logged in, the pod's root answers with its content.
      const home = await page.goto(podUrl);
      assert.equal(home?.status(), 200);
      assert.match((await page.textContent('body')) ?? '', /pod home/);

      // The other pod's host never gets the cookie: it asks for a login of its own.
      await page.goto(`http://${host('another')}:${port}/cgi-bin/whoami`);
      assert.match(page.url(), /\/v3\/pods\/another\/auth\?rd=/);
      // The cookie of one pod, sent by hand to another pod's host, opens nothing.
      const replay = await get(hostHttp, host('another'), ALLOWED, { cookie: `pods_auth=${auth.value}` });
      assert.equal(replay.status, 302);

      // bob is a user of the tenant but not in guarded's list: a 403 page.
      const bobCtx = await browser.newContext();
      const bobPage = await bobCtx.newPage();
      await bobPage.goto(podUrl);
      await bobPage.fill('input[name=username]', 'bob');
      await bobPage.fill('input[name=password]', 'bob-password-12');
      const [denied] = await Promise.all([bobPage.waitForNavigation(), bobPage.click('button[type=submit]')]);
      assert.equal(denied?.status(), 403);
      assert.match(await bobPage.content(), /may not use/);
      assert.equal((await bobCtx.cookies()).filter((c) => c.name === 'pods_auth').length, 0);
    } finally {
      await browser.close();
    }

    // A login link that points the code at another host is refused before any password is asked.
    const evil = await request(`${s.apiUrl}/v3/pods/guarded/auth?rd=${encodeURIComponent('https://evil.example.org')}`);
    assert.equal(evil.statusCode, 400);
    await evil.body.dump();
  });
});
