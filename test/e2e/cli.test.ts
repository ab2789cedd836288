// The `pods` CLI end to end, as a user runs it: the built bin against a real coordinator, agent,
// Caddy and dockerd. Login with a real user (password on stdin), create with progress until
// RUNNING, ls, get, logs -f receiving lines live, events, exec, rm; and the failures a user
// meets, each one line on stderr with its own exit code.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { repoRoot, startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

const BIN = path.join(repoRoot(), 'dist/coordinator/cli/pods.js');
const USER = 'cliuser';
const PASSWORD = 'cli-password-1';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a user's shell would give: none of this machine's PODS_* settings, a config dir of the test's own. */
function userEnv(configHome: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('PODS_')) env[k] = v;
  return { ...env, XDG_CONFIG_HOME: configHome, ...extra };
}

/** A running `pods` process: its output so far, and its end. */
function start(args: string[], env: Record<string, string>, input = '') {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const ran: Ran = { code: null, stdout: '', stderr: '' };
  child.stdout.on('data', (c: Buffer) => (ran.stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (ran.stderr += c.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  const done = new Promise<Ran>((resolve) => child.once('close', (code) => resolve({ ...ran, code })));
  return { child, ran, done };
}

async function pods(args: string[], env: Record<string, string>, input = '', timeoutMs = 60_000): Promise<Ran> {
  const p = start(args, env, input);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  try {
    return await p.done;
  } finally {
    clearTimeout(timer);
  }
}

/** An error is one line on stderr, nothing on stdout. */
function assertOneLineError(r: Ran, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code ${r.code}, stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, `one line: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr.trimEnd(), pattern);
}

describe('the pods CLI', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  let configHome: string;
  let env: Record<string, string>;
  const sessionPath = () => path.join(configHome, 'pods', 'session.json');

  before(async () => {
    s = await startStack();
    await s.addUser(s.tenant, USER, PASSWORD);
    configHome = mkdtempSync(path.join(tmpdir(), 'pods-cli-'));
    env = userEnv(configHome);
  });
  after(async () => {
    await s?.stop();
    if (configHome) rmSync(configHome, { recursive: true, force: true });
  });

  test('the bin is the built CLI with a shebang, and says how to use it', async () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8'));
    assert.equal(path.join(repoRoot(), pkg.bin.pods), BIN);
    assert.match(readFileSync(BIN, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    const help = await pods(['help'], env);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^ {2}login /m);
    assert.match(help.stdout, /^ {2}admin user add /m);
    assert.match(help.stdout, /exit codes: 0 /);
    assertOneLineError(await pods(['frobnicate'], env), 2, /unknown command "frobnicate"/);
    assertOneLineError(await pods(['ls', '--no-such-option'], env), 2, /ls: Unknown option '--no-such-option'/);
    assertOneLineError(await pods(['get'], env), 2, /give the pod's id/);
  });

  test('before login: exit 4, one line', async () => {
    assertOneLineError(await pods(['ls'], env), 4, /^pods: not logged in: run `pods login`/);
  });

  test('a wrong password: exit 1, one line, nothing stored', async () => {
    const r = await pods(['login', '--url', s.apiUrl, '--user', USER], env, 'not-the-password\n');
    assertOneLineError(r, 1, /^pods: login to http:\/\/127\.0\.0\.1:\d+ failed: invalid username or password$/);
    assert.throws(() => statSync(sessionPath()), /ENOENT/);
  });

  test('an API that cannot be reached: exit 3, one line', async () => {
    const closed = await freePort();
    const r = await pods(['login', '--url', `http://127.0.0.1:${closed}`, '--user', USER], env, `${PASSWORD}\n`);
    assertOneLineError(r, 3, new RegExp(`^pods: cannot reach the API at http://127\\.0\\.0\\.1:${closed}: ECONNREFUSED$`));
    const ls = await pods(['ls'], userEnv(configHome, { PODS_TOKEN: s.userToken, PODS_BASE_URL: `http://127.0.0.1:${closed}` }));
    assertOneLineError(ls, 3, /cannot reach the API/);
  });

  test('login with the password on stdin keeps the token in the config dir, mode 600', async () => {
    const r = await pods(['login', '--url', `${s.apiUrl}/`, '--user', USER], env, `${PASSWORD}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^logged in to ${s.apiUrl} as ${USER} \\(tenant ${s.tenant}\\); the token is valid until `));
    assert.equal(statSync(sessionPath()).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(sessionPath())).mode & 0o777, 0o700);
    const stored = JSON.parse(readFileSync(sessionPath(), 'utf8'));
    assert.equal(stored.base_url, s.apiUrl);
    assert.equal(stored.access_token.split('.').length, 3, 'a JWT');
    const who = await pods(['whoami', '--json'], env);
    assert.equal(who.code, 0, who.stderr);
    assert.deepEqual({ ...JSON.parse(who.stdout), expires_at: null }, { base_url: s.apiUrl, username: USER, tenant: s.tenant, expires_at: null });
    // The same through the environment, as scripts (and var/up.env) give it; --json parses.
    const again = await pods(['login', '--json'], userEnv(configHome, { PODS_BASE_URL: s.apiUrl, PODS_USERNAME: USER, PODS_PASSWORD: PASSWORD }));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).username, USER);
    assert.equal(statSync(sessionPath()).mode & 0o777, 0o600);
  });

  test('create shows each status until RUNNING, and the URL answers then', async () => {
    const r = await pods(['create', 'web', '--image', TEST_IMAGE, '--description', 'from the CLI'], env);
    assert.equal(r.code, 0, r.stderr);
    const host = `web.pods.${s.tenant}.${s.baseDomain}`;
    assert.equal(r.stdout, `pod web is RUNNING at ${host}\n`);
    const statuses = r.stderr.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)[1]);
    assert.equal(statuses.at(-1), 'RUNNING', r.stderr);
    assert.ok(new Set(statuses).size === statuses.length, `each status once: ${r.stderr}`);
    assert.equal((await s.viaCaddy(host)).status, 200);

    const json = await pods(['create', 'ticker', '--image', TEST_IMAGE, '--json', '--', 'sh', '-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'], env);
    assert.equal(json.code, 0, json.stderr);
    const pod = JSON.parse(json.stdout);
    assert.equal(pod.status, 'RUNNING');
    assert.deepEqual(pod.command, ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.2; done']);
    assertOneLineError(await pods(['create', 'web', '--image', TEST_IMAGE], env), 1, /^pods: .*web/);
    assertOneLineError(await pods(['create', 'nothing'], env), 2, /exactly one of --image IMAGE and --template TEMPLATE/);
  });

  test('ls, get, events, creds, templates: human and --json', async () => {
    const ls = await pods(['ls'], env);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^POD_ID\s+STATUS\s+IMAGE \/ TEMPLATE\s+URL$/m);
    assert.match(ls.stdout, new RegExp(`^web\\s+RUNNING\\s+${TEST_IMAGE}\\s+web\\.pods\\.`, 'm'));
    const lsJson = JSON.parse((await pods(['ls', '--json'], env)).stdout);
    assert.deepEqual(lsJson.map((p: { pod_id: string }) => p.pod_id).sort(), ['ticker', 'web']);

    const get = await pods(['get', 'web'], env);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^status\s+RUNNING/m);
    assert.match(get.stdout, /^description\s+from the CLI$/m);
    assert.equal(JSON.parse((await pods(['--json', 'get', 'web'], env)).stdout).pod_id, 'web');
    assertOneLineError(await pods(['get', 'nosuchpod'], env), 1, /^pods: .*nosuchpod/);

    const events = await pods(['events', 'web'], env);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /^TIME\s+EVENT\s+NODE\s+MESSAGE$/m);
    assert.match(events.stdout, /\bcreated\b/);
    assert.ok(JSON.parse((await pods(['events', 'web', '--json'], env)).stdout).some((e: { type: string }) => e.type === 'started'));

    const creds = await pods(['creds', 'web', '--json'], env);
    assert.equal(creds.code, 0, creds.stderr);
    assert.equal(typeof JSON.parse(creds.stdout).user_password, 'string');

    const templates = await pods(['templates', '--json'], env);
    assert.equal(templates.code, 0, templates.stderr);
    assert.ok(JSON.parse(templates.stdout).some((t: { template_id: string }) => t.template_id === 'redis'));
  });

  test('logs -f prints new lines as the pod prints them, and ends when the pod stops', async () => {
    const before = await pods(['logs', 'ticker', '--json'], env);
    assert.equal(before.code, 0, before.stderr);
    const seen = Math.max(0, ...[...JSON.parse(before.stdout).logs.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
    const f = start(['logs', 'ticker', '-f', '--tail', '1'], env);
    const ticks = () => [...f.ran.stdout.matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1]));
    try {
      // A line printed after the follower started: it came live, not from the log's past.
      await waitFor('a live line', async () => ticks().some((n) => n > seen + 3), 20_000);
      const got = ticks();
      for (let i = 1; i < got.length; i++) assert.equal(got[i], got[i - 1]! + 1, `each line once, in order: ${got.join(',')}`);
      const stop = await pods(['stop', 'ticker'], env);
      assert.equal(stop.code, 0, stop.stderr);
      const end = await Promise.race([f.done, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
      assert.ok(end, `logs -f ended when the pod stopped; stderr: ${f.ran.stderr}`);
      assert.equal(end.code, 0, end.stderr);
      assert.match(end.stderr, /the pod was stopped/);
    } finally {
      f.child.kill('SIGKILL');
    }
    const tail = await pods(['logs', 'ticker', '--tail', '2'], env);
    assert.equal(tail.code, 0, tail.stderr);
    assert.equal(tail.stdout.split('\n').filter(Boolean).length, 2);
  });

  test('exec: an argv, a shell line, a failing command (exit 5)', async () => {
    const argv = await pods(['exec', 'web', '--', 'echo', 'hello from', 'the pod'], env);
    assert.equal(argv.code, 0, argv.stderr);
    assert.equal(argv.stdout, 'hello from the pod\n');
    const line = await pods(['exec', 'web', 'echo out; echo err >&2'], env);
    assert.equal(line.code, 0, line.stderr);
    assert.equal(line.stdout, 'out\n');
    assert.equal(line.stderr, 'err\n');
    const failed = await pods(['exec', 'web', 'exit 3'], env);
    assert.equal(failed.code, 5);
    assert.match(failed.stderr, /^pods: the command exited with code 3 in pod web\n$/);
    const json = await pods(['exec', 'web', '--json', '--', 'id', '-u'], env);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).execution_results[0].stdout, '1000\n');
    const leading = await pods(['--json', 'exec', 'web', '--', 'echo', '--json'], env);
    assert.equal(JSON.parse(leading.stdout).execution_results[0].stdout, '--json\n', 'a leading --json is not part of the command');
    assertOneLineError(await pods(['exec', 'ticker', 'true'], env), 1, /not running/);
  });

  test('restart, start and rm', async () => {
    const restart = await pods(['restart', 'web', '--json'], env);
    assert.equal(restart.code, 0, restart.stderr);
    assert.equal(JSON.parse(restart.stdout).pod_id, 'web');
    assert.equal((await pods(['start', 'ticker'], env)).code, 0);
    const rm = await pods(['rm', 'web'], env);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /^pod web: /);
    assertOneLineError(await pods(['get', 'web'], env), 1, /web/);
    assert.equal((await pods(['rm', 'ticker'], env)).code, 0);
  });

  test('an expired or revoked login: exit 4, one line', async () => {
    const stored = JSON.parse(readFileSync(sessionPath(), 'utf8'));
    const other = userEnv(mkdtempSync(path.join(tmpdir(), 'pods-cli-')));
    const write = (session: object) => {
      const file = path.join(other.XDG_CONFIG_HOME!, 'pods', 'session.json');
      rmSync(path.dirname(file), { recursive: true, force: true });
      return pods(['login', '--json'], userEnv(other.XDG_CONFIG_HOME!, { PODS_BASE_URL: s.apiUrl, PODS_USERNAME: USER, PODS_PASSWORD: PASSWORD })).then(() => writeFileSync(file, JSON.stringify(session)));
    };
    try {
      await write({ ...stored, expires_at: '2020-01-01T00:00:00.000Z' });
      assertOneLineError(await pods(['ls'], other), 4, /expired at 2020-01-01T00:00:00\.000Z: run `pods login`/);
      await write({ ...stored, access_token: `${stored.access_token.slice(0, -4)}AAAA` });
      assertOneLineError(await pods(['ls'], other), 4, /X-Tapis-Token is not valid: run `pods login`/);
    } finally {
      rmSync(other.XDG_CONFIG_HOME!, { recursive: true, force: true });
    }
  });

  test('pods admin: the site-admin commands, straight against Redis', async () => {
    const adminEnv = userEnv(configHome, { PODS_ADMIN_TOKEN: s.adminToken, PODS_REDIS_URL: s.redis.url, PODS_REDIS_PREFIX: s.redisPrefix, PODS_TENANT: s.tenant });
    const list = await pods(['admin', 'user', 'list'], adminEnv);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${USER}$`, 'm'));
    const add = await pods(['user', 'add', 'dora'], adminEnv, 'dora-password-1\n');
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, new RegExp(`user dora added to tenant ${s.tenant}`));
    const dora = await pods(['login', '--url', s.apiUrl, '--user', 'dora'], userEnv(path.join(configHome, 'dora')), 'dora-password-1\n');
    assert.equal(dora.code, 0, dora.stderr);
    assertOneLineError(await pods(['admin', 'frob'], adminEnv), 2, /admin: unknown or incomplete command/);
  });
});
