// End to end, as a user would try it: real dockerd, Redis, Caddy, coordinator and agent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { waitFor } from '../helpers/procs.js';
import { docker, startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

describe('a custom pod, from one API call to a live URL', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.stop();
  });

  test('create answers REQUESTED with the pod URL, then RUNNING and served through Caddy', async () => {
    const created = await s.api('POST', '/v3/pods', { body: { pod_id: 'hello', image: `${TEST_IMAGE}:latest` } });
    assert.equal(created.status, 200);
    assert.equal(created.contentType, 'application/json');
    assert.equal(created.body.status, 'success');
    assert.equal(created.body.result.status, 'REQUESTED');
    const host = `hello.pods.${s.tenant}.${s.baseDomain}`;
    assert.equal(created.body.result.networking.default.url, host);
    assert.equal(created.body.result.url, host);

    const running = await s.waitStatus('hello', 'RUNNING');
    assert.equal(running.status_container.phase, 'running');
    assert.ok(Date.parse(running.status_container.start_time) > 0, 'start time is a timestamp');

    const page = await s.viaCaddy(host);
    assert.equal(page.status, 200);
    assert.match(page.body, new RegExp(`^hello from ${running.status_container.container_id}`));
  });

  test('the container runs unprivileged, limited, published on loopback only', async () => {
    const [id] = await s.containers('hello');
    assert.ok(id);
    const info = await docker('GET', `/containers/${id}/json`);
    assert.equal(info.Config.User, '1000:1000');
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.equal(info.HostConfig.Privileged, false);
    assert.ok(info.HostConfig.SecurityOpt.includes('no-new-privileges'));
    assert.equal(info.HostConfig.Memory, 3072 * 1024 * 1024);
    assert.equal(info.HostConfig.NanoCpus, 2_000_000_000);
    assert.equal(info.HostConfig.Binds, null);
    assert.deepEqual(info.HostConfig.PortBindings['5000/tcp'].map((b: { HostIp: string }) => b.HostIp), ['127.0.0.1']);
    assert.equal(info.Config.Labels['pods.pod_id'], 'hello');
    assert.equal(info.Config.Labels['pods.tenant'], s.tenant);
  });

  test('logs hold the container output and timestamped action lines', async () => {
    await s.viaCaddy(`hello.pods.${s.tenant}.${s.baseDomain}`);
    const logs = await waitFor('the request to show in the logs', async () => {
      const r = await s.api('GET', '/v3/pods/hello/logs');
      return r.body.result.logs.includes('response:200') ? r.body.result : null;
    });
    assert.match(logs.logs, /^pod starting\n/);
    assert.ok(logs.action_logs.length >= 3);
    for (const line of logs.action_logs) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z: /);
    assert.ok(logs.action_logs.some((l: string) => l.includes('container is running')));
  });

  test('stop removes container and route; start brings the same URL back; restart makes a new instance', async () => {
    const host = `hello.pods.${s.tenant}.${s.baseDomain}`;
    const before = (await s.api('GET', '/v3/pods/hello')).body.result.status_container.container_id;
    const stopped = await s.api('GET', '/v3/pods/hello/stop');
    assert.equal(stopped.status, 200);
    assert.equal(stopped.body.result.status_requested, 'OFF');
    assert.equal(stopped.body.result.status, 'DELETING');
    await s.waitStatus('hello', 'STOPPED');
    assert.deepEqual(await s.containers('hello'), []);
    const gone = await s.viaCaddy(host);
    assert.equal(gone.status, 404);
    assert.match(gone.body, /no pod is served/);

    assert.equal((await s.api('GET', '/v3/pods/hello/start')).status, 200);
    const again = await s.waitStatus('hello', 'RUNNING');
    assert.notEqual(again.status_container.container_id, before);
    assert.equal((await s.viaCaddy(host)).status, 200);

    assert.equal((await s.api('GET', '/v3/pods/hello/restart')).status, 200);
    const restarted = await waitFor('a new instance', async () => {
      const r = (await s.api('GET', '/v3/pods/hello')).body.result;
      return r.status === 'RUNNING' && r.status_container.container_id !== again.status_container.container_id ? r : null;
    });
    const page = await s.viaCaddy(host);
    assert.match(page.body, new RegExp(`^hello from ${restarted.status_container.container_id}`));
    assert.equal((await s.containers('hello')).length, 1);
  });

  test('PUT stores a change that takes effect on restart', async () => {
    const put = await s.api('PUT', '/v3/pods/hello', { body: { description: 'changed', environment_variables: { GREETING: 'hi' } } });
    assert.equal(put.status, 200);
    assert.equal(put.body.result.description, 'changed');
    const [oldId] = await s.containers('hello');
    const oldEnv: string[] = (await docker('GET', `/containers/${oldId}/json`)).Config.Env ?? [];
    assert.ok(!oldEnv.includes('GREETING=hi'), 'the running instance is unchanged');
    await s.api('GET', '/v3/pods/hello/restart');
    const newId = await waitFor('the restarted container', async () => {
      const ids = await s.containers('hello');
      const r = (await s.api('GET', '/v3/pods/hello')).body.result;
      return ids.length === 1 && ids[0] !== oldId && r.status === 'RUNNING' ? ids[0] : null;
    });
    const env: string[] = (await docker('GET', `/containers/${newId}/json`)).Config.Env;
    assert.ok(env.includes('GREETING=hi'));
  });

  test('GET /v3/pods lists the caller\'s pods', async () => {
    const list = await s.api('GET', '/v3/pods');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.result.map((p: { pod_id: string }) => p.pod_id), ['hello']);
  });

  test('an image tag that is not on the host ends in ERROR with a reason', async () => {
    const r = await s.api('POST', '/v3/pods', { body: { pod_id: 'badtag', image: `${TEST_IMAGE}:nosuchtag` } });
    assert.equal(r.status, 200, 'the tag is ignored by the allow-list');
    const failed = await s.waitStatus('badtag', 'ERROR');
    assert.match(failed.status_container.reason, /nosuchtag/);
    await s.api('DELETE', '/v3/pods/badtag');
  });

  test('time_to_stop turns the pod OFF when its time passes', async () => {
    await s.api('POST', '/v3/pods', { body: { pod_id: 'brief', image: TEST_IMAGE, time_to_stop_instance: 2 } });
    await s.waitStatus('brief', 'RUNNING');
    await s.waitStatus('brief', 'STOPPED', 20_000);
    const pod = (await s.api('GET', '/v3/pods/brief')).body.result;
    assert.equal(pod.status_requested, 'OFF');
    const logs = (await s.api('GET', '/v3/pods/brief/logs')).body.result.action_logs as string[];
    assert.ok(logs.some((l) => l.includes('time_to_stop passed')));
    assert.deepEqual(await s.containers('brief'), []);
  });

  test('DELETE removes pod, container, route and state', async () => {
    const host = `hello.pods.${s.tenant}.${s.baseDomain}`;
    const del = await s.api('DELETE', '/v3/pods/hello');
    assert.equal(del.status, 200);
    // Gone for users at once (as in Tapis); the container and route go right after.
    assert.equal((await s.api('GET', '/v3/pods/hello')).status, 404);
    await waitFor('the container to go', async () => (await s.containers('hello')).length === 0);
    await waitFor('the route to go', async () => (await s.viaCaddy(host)).status === 404);
    const logs = await s.api('GET', '/v3/pods/hello/logs');
    assert.equal(logs.status, 404);
    // The id is free again, and the new pod never adopts the old instance.
    assert.equal((await s.api('POST', '/v3/pods', { body: { pod_id: 'hello', image: TEST_IMAGE } })).status, 200);
    await s.waitStatus('hello', 'RUNNING');
    assert.equal((await s.containers('hello')).length, 1);
  });
});
