// The path checks every user path inside a volume goes through, on a real filesystem with real
// symbolic links; the retention rules of scheduled snapshots; the two shapes of volume_mounts.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDirs, prepareWrite, resolveExisting, segmentsOf } from '../../agent/storage/paths.js';
import { checkRetention, toPrune } from '../../coordinator/snapshot-schedule.js';
import { checkMountPaths, podMounts, VolumeMounts } from '../../shared/mounts.js';
import { StorageError } from '../../shared/storage.js';

let dir: string;
let root: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pods-paths-'));
  root = path.join(dir, 'vol');
  await mkdir(path.join(root, 'sub'), { recursive: true });
  await writeFile(path.join(root, 'sub', 'in.txt'), 'inside');
  await writeFile(path.join(dir, 'secret.txt'), 'outside');
  await symlink('/', path.join(root, 'root'));
  await symlink('../secret.txt', path.join(root, 'up'));
  await symlink('sub/in.txt', path.join(root, 'ok'));
});
after(() => rm(dir, { recursive: true, force: true }));

const code = (e: unknown) => (e as StorageError).code;

test('user paths: relative, no "..", no NUL; "" and "/" are the root', () => {
  assert.deepEqual(segmentsOf(''), []);
  assert.deepEqual(segmentsOf('/'), []);
  assert.deepEqual(segmentsOf('a//b/./c/'), ['a', 'b', 'c']);
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a\0b']) assert.throws(() => segmentsOf(bad), (e) => code(e) === 'BAD_PATH', bad);
});

test('reads follow links only while they stay inside', async () => {
  assert.equal(await resolveExisting(root, 'ok'), path.join(root, 'sub', 'in.txt'));
  await assert.rejects(resolveExisting(root, 'root/etc/passwd'), (e) => code(e) === 'BAD_PATH');
  await assert.rejects(resolveExisting(root, 'up'), (e) => code(e) === 'BAD_PATH');
  await assert.rejects(resolveExisting(root, 'nope.txt'), (e) => code(e) === 'FILE_NOT_FOUND');
});

test('writes refuse any link on the way and make missing directories inside', async () => {
  assert.equal(await prepareWrite(root, 'new/deep/file.txt'), path.join(root, 'new', 'deep', 'file.txt'));
  await assert.rejects(prepareWrite(root, 'root/tmp/x'), (e) => code(e) === 'BAD_PATH');
  await assert.rejects(prepareWrite(root, 'up'), (e) => code(e) === 'BAD_PATH');
  await assert.rejects(prepareWrite(root, 'sub'), (e) => code(e) === 'BAD_PATH', 'a directory is not a file');
  await assert.rejects(prepareWrite(root, ''), (e) => code(e) === 'BAD_PATH');
  await assert.rejects(ensureDirs(root, ['sub', 'in.txt', 'x']), (e) => code(e) === 'BAD_PATH', 'a file is not a directory');
});

test('retention: keep the newest N, or drop what is older than an age', () => {
  const copies = [1, 2, 3, 4].map((n) => ({ id: `c${n}`, created: n * 1000 }));
  assert.deepEqual(toPrune(copies, checkRetention('2'), 5000), ['c2', 'c1']);
  assert.deepEqual(toPrune(copies, { maxAgeMs: 2500 }, 5000), ['c2', 'c1']);
  assert.deepEqual(checkRetention('7d'), { maxAgeMs: 7 * 86_400_000 });
  for (const bad of ['', '0', 'forever', '3y', '-1']) assert.throws(() => checkRetention(bad), /^Error|retention_policy/, bad);
});

test('volume_mounts: keyed by volume name or by mount path, one list either way', () => {
  const v = VolumeMounts.parse({ data: { type: 'tapisvolume', mount_path: '/data' }, '/snap': { type: 'tapissnapshot', source_id: 'nightly', sub_path: 'a' } });
  assert.deepEqual(podMounts(v), [
    { kind: 'volume', sourceId: 'data', subPath: '', mountPath: '/data', readOnly: false },
    { kind: 'snapshot', sourceId: 'nightly', subPath: 'a', mountPath: '/snap', readOnly: true },
  ]);
  assert.equal(VolumeMounts.safeParse({ data: { type: 'pvc' } }).success, false);
  assert.equal(VolumeMounts.safeParse({ '/': { source_id: 'data' } }).success, false);
  assert.match(checkMountPaths(podMounts(VolumeMounts.parse({ data: { mount_path: '/x' } })), '/x') ?? '', /mounted twice/);
  assert.match(checkMountPaths(podMounts(VolumeMounts.parse({ data: { mount_path: '/x', sub_path: '../y' } })), undefined) ?? '', /sub_path/);
});
