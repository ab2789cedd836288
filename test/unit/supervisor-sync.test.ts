// A sync of N pods must not cost N full listings of the host's containers (each of which also
// inspects every container: N^2 Docker calls). The real Supervisor on the in-memory runtime.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NullCaddy, NullRuntime } from '../../agent/runtime/null.js';
import { Supervisor } from '../../agent/supervisor.js';
import { loadAgentConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import type { Assignment } from '../../shared/protocol.js';

const assignment = (i: number): Assignment => ({
  tenant: 'dev',
  podId: `pod${i}`,
  uid: `uid${i}`,
  generation: 1,
  spec: { image: 'pods-test/httpd', pull: true, env: {}, ports: [], mounts: [], cpuLimitMilli: 100, memLimitMb: 64, cpuRequestMilli: 100, memRequestMb: 64 },
});

test('a sync of 200 pods lists the whole host a constant number of times, however many pods it has', async () => {
  const config = loadAgentConfig({ PODS_COORDINATOR_URL: 'ws://127.0.0.1:1/v3/agents/connect', PODS_NODE_TOKEN: 'n'.repeat(20), PODS_NODE_ID: 'sync-test', PODS_POD_ISOLATION: 'off' });
  const log = createLogger('test', 'silent');
  const runtime = new NullRuntime();
  const supervisor = new Supervisor({ config, runtime, caddy: new NullCaddy(log), log, reporter: { status: () => true, logs: () => true } });
  const pods = Array.from({ length: 200 }, (_, i) => assignment(i));
  await supervisor.sync(pods);
  assert.equal(runtime.size, 200, 'every pod has its container');
  const first = runtime.listCalls;
  // Again, as after a reconnect: everything is adopted, nothing made twice.
  await supervisor.sync(pods);
  assert.equal(runtime.size, 200);
  assert.ok(runtime.listCalls - first <= 2, `a second sync listed the whole host ${runtime.listCalls - first} times`);
  assert.ok(first <= 2, `the first sync listed the whole host ${first} times`);
  supervisor.stop();
});
