// A tag nobody pinned is never pulled: the pod fails at once, saying why, and the host made no
// pull (no registry is reachable here, so an attempt would show as "pulling image" in its log).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { waitFor } from '../helpers/procs.js';
import { startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

describe('pull policy on a host', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.stop();
  });

  test('an unpinned tag that is not on the host fails without a pull; a present one runs', async () => {
    // The test image is allow-listed by name only.
    assert.equal((await s.api('POST', '/v3/pods', { body: { pod_id: 'nopull', image: `${TEST_IMAGE}:not-here` } })).status, 200);
    let last: unknown;
    const failed = await waitFor('nopull to fail', async () => {
      const p = (await s.api('GET', '/v3/pods/nopull')).body.result;
      last = p;
      return /may not be pulled/.test(JSON.stringify(p.status_container)) ? p : null;
    }, 30_000).catch((err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}\n${s.agent.output.slice(-2000)}`);
    });
    assert.notEqual(failed.status, 'RUNNING');
    assert.doesNotMatch(s.agent.output, /pulling image/);
    assert.equal((await s.api('POST', '/v3/pods', { body: { pod_id: 'present', image: TEST_IMAGE } })).status, 200);
    await s.waitStatus('present', 'RUNNING');
  });
});
