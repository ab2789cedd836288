// Data on one host of the cluster: a volume lives on the host it was made on, a pod that mounts
// it runs there, and when that host is cut off past lost_after the pod waits, saying why, rather
// than start elsewhere on empty data. When the host is back, the pod serves the same files. A
// pod's own data directory survives dockerd being killed on its host.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FormData, request } from 'undici';
import { skipWithoutCluster, startCluster, waitFor, TEST_IMAGE, type Cluster } from './harness.js';

describe('cluster data', { skip: skipWithoutCluster() }, () => {
  let c: Cluster;

  before(async () => {
    c = await startCluster({ hosts: 2, coordinatorEnv: { PODS_LOST_AFTER_S: '3' } });
  });
  after(async () => {
    await c?.stop();
  });

  test('a pod with a volume on a host that is cut off waits for it, then serves its data again', async () => {
    try {
      const v = await c.api('POST', '/v3/pods/volumes', { body: { volume_id: 'pinned' } });
      assert.equal(v.status, 200, v.body.message);
      assert.equal(v.body.result.status, 'AVAILABLE');
      const form = new FormData();
      form.append('file', new Blob(['kept on its host\n']), 'index.html');
      const up = await request(`${c.apiUrl}/v3/pods/volumes/pinned/upload/index.html`, { method: 'POST', headers: { 'x-tapis-token': c.adminToken }, body: form });
      assert.equal(up.statusCode, 200, await up.body.text());

      const created = await c.api('POST', '/v3/pods', {
        body: { pod_id: 'reader', image: TEST_IMAGE, command: ['/bin/sh', '-c', 'exec httpd -f -v -p 5000 -h /srv'], volume_mounts: { pinned: { mount_path: '/srv' } } },
      });
      assert.equal(created.status, 200, created.body.message);
      const pod = await c.waitStatus('reader', 'RUNNING', 30_000);
      const home = c.host(pod.status_container.node);
      assert.equal((await home.viaCaddy(c.podHost('reader'))).body, 'kept on its host\n');

      await home.cutLink();
      try {
        // Past lost_after the pod is not moved: it waits, and says for what.
        const waiting = await waitFor('the pod to say it waits for its host', async () => {
          const p = await c.pod('reader');
          return /holds this pod's data/.test(p.status_container.message ?? '') ? p : null;
        }, 30_000, 200);
        assert.equal(waiting.status_container.node, home.nodeId);
        await new Promise((r) => setTimeout(r, 2000));
        const everywhere = await c.containersOf('reader');
        assert.deepEqual(everywhere.map((x) => x.node), [home.nodeId], 'never started elsewhere on empty data');
      } finally {
        await home.restoreLink();
      }
      await waitFor('the pod to be served again', async () => {
        const p = await c.pod('reader');
        return p.status === 'RUNNING' && p.status_container.node_reachable ? p : null;
      }, 30_000, 200);
      assert.equal((await home.viaCaddy(c.podHost('reader'))).body, 'kept on its host\n');
      assert.equal((await c.containersOf('reader')).length, 1);
    } catch (err) {
      if (err instanceof Error) err.message += `\n${c.diagnostics()}`;
      throw err;
    }
  });

  test('a pod\'s data directory survives a dockerd kill -9 and a restart of the pod after it', async () => {
    try {
      const created = await c.api('POST', '/v3/pods', { body: { pod_id: 'diary', image: TEST_IMAGE, data_dir: '/data' } });
      assert.equal(created.status, 200, created.body.message);
      const pod = await c.waitStatus('diary', 'RUNNING', 30_000);
      const h = c.host(pod.status_container.node);
      const exec = (cmd: string[]) => c.api('POST', '/v3/pods/diary/exec', { body: { commands: [cmd] } });
      const wrote = await exec(['sh', '-c', 'echo day one >> /data/diary.txt']);
      assert.equal(wrote.body.result?.successful_commands, 1, JSON.stringify(wrote.body));

      await h.killDockerd('SIGKILL');
      await h.startDockerd();
      await waitFor(`the agent on ${h.nodeId} to re-check its pods`, async () => (h.agent?.count('docker is back; checking every pod') ?? 0) > 0, 30_000);
      await c.waitStatus('diary', 'RUNNING', 30_000);
      const first = (await h.containers({ 'pods.pod_id': 'diary' }))[0]!.Id;
      assert.equal((await c.api('GET', '/v3/pods/diary/restart')).status, 200);
      await waitFor('a new container', async () => {
        const now = await h.containers({ 'pods.pod_id': 'diary' });
        return now.length === 1 && now[0]!.Id !== first && now[0]!.State === 'running';
      }, 30_000, 200);
      await c.waitStatus('diary', 'RUNNING', 30_000);
      const read = await waitFor('the diary to be read back', async () => {
        const r = await exec(['cat', '/data/diary.txt']);
        return r.body.result?.successful_commands === 1 ? r : null;
      }, 20_000, 250);
      assert.equal(read.body.result.execution_results[0].stdout, 'day one\n');
    } catch (err) {
      if (err instanceof Error) err.message += `\n${c.diagnostics()}`;
      throw err;
    }
  });
});
