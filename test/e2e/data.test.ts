// Data that outlives containers, end to end with real dockerd, Redis, Caddy, coordinator and
// agent: a Postgres pod's rows across restart, stop/start and an agent kill -9; volumes uploaded
// to, mounted, served and snapshotted (on a schedule too); exec and files inside a pod; and the
// bad input a user (or an attacker) sends, refused without touching anything outside.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FormData, request } from 'undici';
import { unzipSync } from 'fflate';
import { LOCAL_TEMPLATES_DIR } from '../../coordinator/builtin-templates.js';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { run } from '../helpers/run.js';
import { startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

describe('data that outlives its container', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  let tlsPort: number;
  let dataRoot: string;

  before(async () => {
    tlsPort = await freePort();
    dataRoot = await mkdtemp(path.join(tmpdir(), 'pods-data-'));
    s = await startStack({
      agentEnv: { PODS_CADDY_TLS_LISTEN: `127.0.0.1:${tlsPort}`, PODS_DATA_ROOT: dataRoot },
      // The templates as `npm run up` serves them here: images built from Debian's packages.
      coordinatorEnv: { PODS_PUBLIC_TLS_PORT: String(tlsPort), PODS_TEMPLATES_LOCAL_DIR: LOCAL_TEMPLATES_DIR },
    });
  });
  after(async () => {
    await s?.stop();
    if (dataRoot) await rm(dataRoot, { recursive: true, force: true });
  });

  /** multipart/form-data upload, as tapipy sends it. */
  async function upload(p: string, name: string, content: Buffer | string, fields: Record<string, string> = {}, token = s.userToken) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append('file', new Blob([typeof content === 'string' ? content : new Uint8Array(content)]), name);
    const res = await request(`${s.apiUrl}${p}`, { method: 'POST', headers: { 'x-tapis-token': token }, body: form });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  }

  async function download(p: string, token = s.userToken) {
    const res = await request(`${s.apiUrl}${p}`, { headers: { 'x-tapis-token': token } });
    const buf = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, type: String(res.headers['content-type']), buf };
  }

  const exec = (podId: string, commands: unknown[], extra: object = {}) => s.api('POST', `/v3/pods/${podId}/exec`, { token: s.userToken, body: { commands, ...extra } });

  test('a postgres pod keeps its rows across restart, stop/start and an agent kill -9', async () => {
    const created = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'pgkeep', template: 'postgres' } });
    assert.equal(created.status, 200, created.body.message);
    assert.equal(created.body.result.data_dir, '/var/lib/pods/postgres', 'the template\'s data directory');
    const pod = await s.waitStatus('pgkeep', 'RUNNING', 90_000);
    const [host] = (pod.networking.default.url as string).split(':');
    const creds = (await s.api('GET', '/v3/pods/pgkeep/credentials', { token: s.userToken })).body.result;
    const psql = (sql: string) =>
      run('psql', [`hostaddr=127.0.0.1 host=${host} port=${tlsPort} user=${creds.user_username} dbname=pgkeep sslmode=require`, '-Atc', sql], {
        env: { PGPASSWORD: creds.user_password, PGCONNECT_TIMEOUT: '5' },
      });
    const untilAnswers = async (sql: string, want: string) => waitFor(`psql to answer ${want}`, async () => ((await psql(sql)).out.trim() === want ? true : null), 60_000, 250);

    await untilAnswers('SELECT 1', '1');
    assert.equal((await psql('CREATE TABLE t (x int); INSERT INTO t VALUES (42);')).code, 0);
    assert.equal((await psql('SELECT x FROM t')).out.trim(), '42');

    // restart: a new container, the same data
    const before = (await s.containers('pgkeep'))[0];
    await s.api('GET', '/v3/pods/pgkeep/restart', { token: s.userToken });
    await waitFor('a new instance', async () => (await s.containers('pgkeep')).some((c) => c !== before), 30_000);
    await s.waitStatus('pgkeep', 'RUNNING', 60_000);
    await untilAnswers('SELECT x FROM t', '42');

    // stop, then start
    await s.api('GET', '/v3/pods/pgkeep/stop', { token: s.userToken });
    await s.waitStatus('pgkeep', 'STOPPED', 30_000);
    assert.equal((await s.containers('pgkeep')).length, 0, 'no container while stopped');
    await s.api('GET', '/v3/pods/pgkeep/start', { token: s.userToken });
    await s.waitStatus('pgkeep', 'RUNNING', 60_000);
    await untilAnswers('SELECT x FROM t', '42');

    // the agent killed and back: the container and its data stay
    await s.agent.kill('SIGKILL');
    s.agent.start();
    await waitFor('the agent to reconnect', async () => s.agent.runOutput.includes('connected to coordinator'), 20_000);
    await untilAnswers('SELECT x FROM t', '42');

    // The data lives under the agent's data root, owned by the container's user, until the pod is deleted.
    const tenantDir = path.join(dataRoot, 'pods', s.tenant);
    const [dir] = await readdir(tenantDir);
    assert.match(dir!, /^pgkeep-[0-9a-f]+$/);
    assert.equal((await stat(path.join(tenantDir, dir!))).uid, 1000);
    assert.equal((await s.api('DELETE', '/v3/pods/pgkeep', { token: s.userToken })).status, 200);
    await waitFor('the pod to be gone', async () => (await s.api('GET', '/v3/pods/pgkeep', { token: s.userToken })).status === 404, 60_000);
    await waitFor('its data to be removed', async () => (await readdir(tenantDir)).length === 0, 20_000);
  });

  test('a redis pod from its template keeps its keys across a restart (in its data_dir)', async () => {
    const created = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'rkeep', template: 'redis' } });
    assert.equal(created.status, 200, created.body.message);
    await s.waitStatus('rkeep', 'RUNNING', 60_000);
    const { user_password: password } = (await s.api('GET', '/v3/pods/rkeep/credentials', { token: s.userToken })).body.result;
    const host = `rkeep.pods.${s.tenant}.${s.baseDomain}`;
    const cli = (...cmd: string[]) => run('redis-cli', ['--no-auth-warning', '--tls', '--sni', host, '--insecure', '-h', '127.0.0.1', '-p', String(tlsPort), '-a', password, ...cmd]);
    await waitFor('redis to answer', async () => ((await cli('PING')).out.trim() === 'PONG' ? true : null), 30_000, 250);
    assert.equal((await cli('SET', 'kept', 'across restarts')).out.trim(), 'OK');
    await s.api('GET', '/v3/pods/rkeep/restart', { token: s.userToken });
    await waitFor('the key after the restart', async () => ((await cli('GET', 'kept')).out.trim() === 'across restarts' ? true : null), 60_000, 250);
  });

  test('keep_data: a deleted pod\'s data becomes a volume named like the pod', async () => {
    const created = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'keeper', image: TEST_IMAGE, data_dir: '/data' } });
    assert.equal(created.status, 200, created.body.message);
    await s.waitStatus('keeper', 'RUNNING');
    const wrote = await exec('keeper', [['sh', '-c', 'echo precious > /data/result.txt']]);
    assert.equal(wrote.status, 200, wrote.body.message);
    assert.equal(wrote.body.result.successful_commands, 1);
    const del = await s.api('DELETE', '/v3/pods/keeper?keep_data=true', { token: s.userToken });
    assert.equal(del.status, 200, del.body.message);
    assert.match(del.body.message, /kept as volume keeper/);
    const vol = await s.api('GET', '/v3/pods/volumes/keeper', { token: s.userToken });
    assert.equal(vol.status, 200, vol.body.message);
    assert.equal(vol.body.result.status, 'AVAILABLE');
    const file = await download('/v3/pods/volumes/keeper/contents/result.txt');
    assert.equal(file.buf.toString(), 'precious\n');
  });

  test('a volume: uploaded to, mounted and served by a pod, written by exec, snapshotted', async () => {
    const v = await s.api('POST', '/v3/pods/volumes', { token: s.userToken, body: { volume_id: 'site', description: 'web root', size_limit: 2 } });
    assert.equal(v.status, 200, v.body.message);
    assert.equal(v.body.result.status, 'AVAILABLE');
    assert.equal((await upload('/v3/pods/volumes/site/upload/index.html', 'index.html', 'hello from a volume\n')).status, 200);
    const nested = await upload('/v3/pods/volumes/site/upload/docs/a/b.txt', 'b.txt', 'deep\n');
    assert.equal(nested.status, 200, nested.body.message);
    assert.equal(nested.body.result.path, 'docs/a/b.txt');

    const created = await s.api('POST', '/v3/pods', {
      token: s.userToken,
      body: { pod_id: 'web', image: TEST_IMAGE, command: ['/bin/sh', '-c', 'exec httpd -f -v -p 5000 -h /srv'], volume_mounts: { site: { type: 'tapisvolume', mount_path: '/srv' } } },
    });
    assert.equal(created.status, 200, created.body.message);
    await s.waitStatus('web', 'RUNNING');
    const host = `web.pods.${s.tenant}.${s.baseDomain}`;
    const res = await request(`${s.caddy.httpUrl}/index.html`, { headers: { host } });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'hello from a volume\n');

    const wrote = await exec('web', ['echo from-exec > /srv/fromexec.txt', ['cat', '/srv/index.html']]);
    assert.equal(wrote.status, 200, wrote.body.message);
    assert.equal(wrote.body.message, 'All commands completed.');
    assert.equal(wrote.body.result.execution_results[1].stdout, 'hello from a volume\n');
    const list = await s.api('GET', '/v3/pods/volumes/site/list', { token: s.userToken });
    assert.deepEqual(list.body.result.map((e: any) => e.name).sort(), ['docs', 'fromexec.txt', 'index.html']);
    const entry = list.body.result.find((e: any) => e.name === 'fromexec.txt');
    assert.equal(entry.type, 'file');
    assert.equal(entry.size, 'from-exec\n'.length);
    assert.match(entry.nativePermissions, /^[rwx-]{9}$/);

    // A folder comes back as a zip.
    const zip = await download('/v3/pods/volumes/site/contents/docs?zip=true');
    assert.equal(zip.status, 200);
    assert.equal(zip.type, 'application/zip');
    assert.equal(Buffer.from(unzipSync(new Uint8Array(zip.buf))['a/b.txt']!).toString(), 'deep\n');

    // A snapshot holds the same files and does not change when the volume does.
    const snap = await s.api('POST', '/v3/pods/snapshots', { token: s.userToken, body: { snapshot_id: 'sitecopy', source_volume_id: 'site', source_volume_path: '' } });
    assert.equal(snap.status, 200, snap.body.message);
    assert.equal(snap.body.result.status, 'AVAILABLE');
    assert.equal((await upload('/v3/pods/volumes/site/upload/later.txt', 'later.txt', 'after the snapshot\n')).status, 200);
    const snapList = await s.api('GET', '/v3/pods/snapshots/sitecopy/list', { token: s.userToken });
    assert.deepEqual(snapList.body.result.map((e: any) => e.name).sort(), ['docs', 'fromexec.txt', 'index.html']);
    assert.equal((await download('/v3/pods/snapshots/sitecopy/contents/index.html')).buf.toString(), 'hello from a volume\n');

    // Mounting needs READ on the volume; another tenant does not see it at all.
    assert.equal((await s.api('GET', '/v3/pods/volumes/site', { token: s.otherTenantToken })).status, 401);
    assert.equal((await s.api('GET', '/v3/pods/volumes/site', { token: s.adminToken })).status, 200, 'a site admin sees it');
    assert.equal((await s.api('DELETE', '/v3/pods/volumes/site', { token: s.userToken })).status, 409, 'a mounted volume is not deleted');
  });

  test('a scheduled snapshot is taken on time and its retention policy prunes old copies', async () => {
    assert.equal((await s.api('POST', '/v3/pods/volumes', { token: s.userToken, body: { volume_id: 'logs' } })).status, 200);
    assert.equal((await upload('/v3/pods/volumes/logs/upload/day.txt', 'day.txt', 'one\n')).status, 200);
    const bad = await s.api('POST', '/v3/pods/snapshots', { token: s.userToken, body: { snapshot_id: 'nightly', source_volume_id: 'logs', source_volume_path: '', cron: 'every night' } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /^cron: /);
    const r = await s.api('POST', '/v3/pods/snapshots', {
      token: s.userToken,
      body: { snapshot_id: 'nightly', source_volume_id: 'logs', source_volume_path: '', cron: '* * * * * *', retention_policy: '2' },
    });
    assert.equal(r.status, 200, r.body.message);
    const copies = async () => ((await s.api('GET', '/v3/pods/snapshots', { token: s.userToken })).body.result as any[]).filter((x) => /^nightly\d{14}$/.test(x.snapshot_id));
    await waitFor('two scheduled copies', async () => (await copies()).length >= 2, 15_000, 200);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const now = await copies();
      assert.ok(now.length <= 3, `retention keeps 2 (one more while a copy is made): ${now.map((c) => c.snapshot_id)}`);
      for (const c of now) seen.add(c.snapshot_id);
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.ok(seen.size >= 4, `copies keep coming, old ones go: saw ${[...seen]}`);
    const latest = (await copies()).sort((a, b) => a.snapshot_id.localeCompare(b.snapshot_id)).pop();
    assert.equal((await download(`/v3/pods/snapshots/${latest.snapshot_id}/contents/day.txt`)).buf.toString(), 'one\n');
    await s.api('PUT', '/v3/pods/snapshots/nightly', { token: s.userToken, body: { cron: '' } });
  });

  test('bad paths are refused with 400 and touch nothing outside; oversized uploads leave the volume as it was', async () => {
    assert.equal((await s.api('POST', '/v3/pods/volumes', { token: s.userToken, body: { volume_id: 'box', size_limit: 1 } })).status, 200);
    for (const p of ['..%2F..%2Fescape.txt', '%2Fetc%2Fpasswd', 'a%2F..%2F..%2Fb']) {
      const r = await upload(`/v3/pods/volumes/box/upload/${p}`, 'x', 'x');
      assert.equal(r.status, 400, `${p}: ${r.body.message}`);
      assert.match(r.body.message, /^path: /);
    }
    assert.equal((await download('/v3/pods/volumes/box/contents/..%2F..%2F..%2Fetc%2Fpasswd')).status, 400);

    // A symbolic link made inside the volume by a pod leads nowhere outside.
    const created = await s.api('POST', '/v3/pods', {
      token: s.userToken,
      body: { pod_id: 'linker', image: TEST_IMAGE, volume_mounts: { '/box': { type: 'tapisvolume', source_id: 'box', sub_path: '', read_only: false } } },
    });
    assert.equal(created.status, 200, created.body.message);
    await s.waitStatus('linker', 'RUNNING');
    const ln = await exec('linker', [['ln', '-s', '/', '/box/escape'], ['ln', '-s', '../../../../../../', '/box/up']]);
    assert.equal(ln.body.result.successful_commands, 2, JSON.stringify(ln.body.result));
    for (const p of ['escape/etc/passwd', 'up/etc/passwd']) {
      const got = await download(`/v3/pods/volumes/box/contents/${p}`);
      assert.ok(got.status === 400 || got.status === 404, `${p} answered ${got.status}: ${got.buf.toString().slice(0, 100)}`);
      assert.ok(!got.buf.toString().includes('root:'), 'never the host\'s files');
    }
    assert.equal((await upload('/v3/pods/volumes/box/upload/up/planted.txt', 'p', 'x')).status, 400);
    const outside = path.join(dataRoot, 'volumes', s.tenant, 'planted.txt');
    await assert.rejects(stat(outside), 'nothing written outside the volume');
    const snap = await s.api('POST', '/v3/pods/snapshots', { token: s.userToken, body: { snapshot_id: 'boxup', source_volume_id: 'box', source_volume_path: 'up' } });
    assert.equal(snap.status, 400, snap.body.message);
    assert.equal((await s.api('GET', '/v3/pods/snapshots/boxup', { token: s.userToken })).status, 404, 'a refused snapshot is not kept');
    const sub = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'subby', image: TEST_IMAGE, volume_mounts: { box: { mount_path: '/m', sub_path: '../other' } } } });
    assert.equal(sub.status, 400);
    assert.match(sub.body.message, /sub_path/);

    // 1 MB limit: a 2 MB upload is refused, and the volume is as it was.
    const before = (await s.api('GET', '/v3/pods/volumes/box/list', { token: s.userToken })).body.result;
    const big = await upload('/v3/pods/volumes/box/upload/big.bin', 'big.bin', Buffer.alloc(2 * 1024 * 1024, 7));
    assert.equal(big.status, 413, big.body.message);
    assert.deepEqual((await s.api('GET', '/v3/pods/volumes/box/list', { token: s.userToken })).body.result, before);
    const small = await upload('/v3/pods/volumes/box/upload/small.bin', 'small.bin', Buffer.alloc(600 * 1024, 7));
    assert.equal(small.status, 200, small.body.message);
    const second = await upload('/v3/pods/volumes/box/upload/small2.bin', 'small2.bin', Buffer.alloc(600 * 1024, 7));
    assert.equal(second.status, 413, 'the second one would pass the limit');
    assert.equal((await s.api('GET', '/v3/pods/volumes/box', { token: s.userToken })).body.result.size, 1);

    // Another tenant's or user's volume cannot be mounted; a missing one neither.
    const other = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'nosuch', image: TEST_IMAGE, volume_mounts: { ghost: { mount_path: '/g' } } } });
    assert.equal(other.status, 400);
    assert.match(other.body.message, /volume "ghost" was not found/);
  });

  test('exec and files inside a pod: upload_to_pod, list, download; exec on a stopped pod is a clear error', async () => {
    const created = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: 'shell', image: TEST_IMAGE } });
    assert.equal(created.status, 200, created.body.message);
    await s.waitStatus('shell', 'RUNNING');
    const up = await upload('/v3/pods/shell/upload_to_pod', 'notes.txt', 'uploaded into the pod\n', { dest_path: '/tmp/notes.txt' });
    assert.equal(up.status, 200, up.body.message);
    assert.equal(up.body.result.path, '/tmp/notes.txt');
    const cat = await exec('shell', [['cat', '/tmp/notes.txt'], ['ls', '-l', '/tmp/notes.txt']]);
    assert.equal(cat.body.result.execution_results[0].stdout, 'uploaded into the pod\n');
    assert.match(cat.body.result.execution_results[1].stdout, /pods\s+pods/, 'owned by the pod\'s user');
    const list = await s.api('GET', '/v3/pods/shell/files?path=/tmp', { token: s.userToken });
    assert.equal(list.status, 200, list.body.message);
    assert.ok(list.body.result.some((e: any) => e.path === '/tmp/notes.txt' && e.type === 'file' && e.size === 22));
    const got = await download('/v3/pods/shell/files/contents?path=/tmp/notes.txt');
    assert.equal(got.buf.toString(), 'uploaded into the pod\n');
    assert.equal((await download('/v3/pods/shell/files/contents?path=/tmp/../etc/passwd')).status, 400);
    assert.equal((await download('/v3/pods/shell/files/contents?path=/no/such/file')).status, 404);

    // Exit codes, stderr, a failure that stops the rest, a timeout.
    const mixed = await exec('shell', ['echo out; echo err >&2; exit 3', ['echo', 'never']]);
    assert.equal(mixed.status, 200);
    assert.equal(mixed.body.result.execution_results.length, 1, 'fail_on_non_success stops at the failure');
    assert.deepEqual(
      { stdout: mixed.body.result.execution_results[0].stdout, stderr: mixed.body.result.execution_results[0].stderr, exit: mixed.body.result.execution_results[0].exit_code, ok: mixed.body.result.execution_results[0].success },
      { stdout: 'out\n', stderr: 'err\n', exit: 3, ok: false },
    );
    assert.match(mixed.body.message, /failed with exit code 3/);
    const goOn = await exec('shell', [['false'], ['echo', 'still']], { fail_on_non_success: false });
    assert.equal(goOn.body.result.execution_results[1].stdout, 'still\n');
    assert.equal(goOn.body.result.successful_commands, 1);
    const t0 = Date.now();
    const slow = await exec('shell', [['sleep', '30']], { command_timeout: 1 });
    assert.ok(Date.now() - t0 < 10_000, 'the command is cut at its timeout');
    assert.equal(slow.body.result.execution_results[0].success, false);
    assert.match(slow.body.message, /timed out/);
    // An argv is not a shell command line: no injection through arguments.
    const argv = await exec('shell', [['echo', '$(id); rm -rf /tmp']]);
    assert.equal(argv.body.result.execution_results[0].stdout, '$(id); rm -rf /tmp\n');
    const logs = (await s.api('GET', '/v3/pods/shell/logs', { token: s.userToken })).body.result.action_logs as string[];
    assert.ok(logs.some((l) => /executed 1 of 1 command\(s\) \(echo\)/.test(l)), 'the action log names what ran');
    assert.ok(!logs.some((l) => l.includes('rm -rf')), 'but not its arguments');

    await s.api('GET', '/v3/pods/shell/stop', { token: s.userToken });
    await s.waitStatus('shell', 'STOPPED');
    const stopped = await exec('shell', [['true']]);
    assert.equal(stopped.status, 409);
    assert.match(stopped.body.message, /not running \(status STOPPED\)/);
  });
});

