// Health checks: readiness keeps a pod out of RUNNING (and unrouted) until it passes; a failing
// liveness check restarts the container in place and says so as an event; bad checks are 400s.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { waitFor } from '../helpers/procs.js';
import { startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

describe('health checks', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.stop();
  });

  test('readiness keeps the pod CREATING, saying why, and its URL unrouted until the check passes', async () => {
    // /ready appears 4 s after the server starts.
    const command = ['sh', '-c', 'mkdir -p /tmp/www; echo hi > /tmp/www/index.html; (sleep 4; echo ok > /tmp/www/ready) & exec httpd -f -p 5000 -h /tmp/www'];
    const t0 = Date.now();
    const r = await s.api('POST', '/v3/pods', {
      body: { pod_id: 'slowready', image: TEST_IMAGE, command, healthchecks: { readiness: { http: { path: '/ready', port: 5000 }, period_seconds: 1 } } },
    });
    assert.equal(r.status, 200, r.body.message);
    assert.deepEqual(r.body.result.healthchecks.readiness.http, { path: '/ready', port: 5000 });
    const waiting = await waitFor('the readiness wait to show', async () => {
      const p = (await s.api('GET', '/v3/pods/slowready')).body.result;
      return /waiting for the readiness check: GET \/ready answered 404/.test(p.status_container?.reason ?? '') ? p : null;
    });
    assert.notEqual(waiting.status, 'RUNNING');
    assert.equal((await s.viaCaddy(`slowready.pods.${s.tenant}.${s.baseDomain}`)).status !== 200, true, 'not routed yet');
    await s.waitStatus('slowready', 'RUNNING');
    assert.ok(Date.now() - t0 >= 4000, 'RUNNING only after /ready exists');
    assert.equal((await s.viaCaddy(`slowready.pods.${s.tenant}.${s.baseDomain}`)).status, 200);
  });

  test('a failing liveness check restarts the container in place, with an event', async () => {
    // Alive for 3 s after each start: /tmp/alive is removed then.
    const command = ['sh', '-c', 'echo up > /tmp/alive; (sleep 3; rm /tmp/alive) & exec httpd -f -p 5000 -h /tmp'];
    const r = await s.api('POST', '/v3/pods', {
      body: { pod_id: 'mortal', image: TEST_IMAGE, command, healthchecks: { liveness: { exec: { command: ['cat', '/tmp/alive'] }, period_seconds: 1, failure_threshold: 2 } } },
    });
    assert.equal(r.status, 200, r.body.message);
    const running = await s.waitStatus('mortal', 'RUNNING');
    const restarted = await waitFor('a restarted event', async () => {
      const events = (await s.api('GET', '/v3/pods/mortal/events')).body.result as Array<{ type: string; message: string }>;
      return events.find((e) => e.type === 'restarted') ?? null;
    }, 30_000);
    assert.match(restarted.message, /liveness check failed 2 times: cat exited with code 1/);
    const after = await s.waitStatus('mortal', 'RUNNING');
    assert.equal(after.status_container.container_id, running.status_container.container_id, 'the same container, restarted');
    assert.equal((await s.viaCaddy(`mortal.pods.${s.tenant}.${s.baseDomain}`)).status, 404, 'served again (httpd answers; /index.html does not exist)');
  });

  test('bad checks are 400s naming the field', async () => {
    for (const [healthchecks, pattern] of [
      [{ readiness: { http: { path: '/', port: 5000 }, tcp: { port: 5000 } } }, /exactly one of http, tcp or exec/],
      [{ liveness: { tcp: { port: 6000 } } }, /^healthchecks\.liveness\.tcp\.port: must be one of the pod's networking ports \(5000\)/],
      [{ startup: { exec: { command: [] } } }, /^healthchecks\.startup\.exec\.command/],
      [{ readiness: { http: { path: 'no-slash', port: 5000 } } }, /^healthchecks\.readiness\.http\.path/],
      [{ sideways: {} }, /healthchecks/],
    ] as const) {
      const r = await s.api('POST', '/v3/pods', { body: { pod_id: 'badcheck', image: TEST_IMAGE, healthchecks } });
      assert.equal(r.status, 400, JSON.stringify(healthchecks));
      assert.match(r.body.message, pattern);
    }
  });
});
