import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineWatch } from '../../agent/engine-watch.js';
import { NullRuntime } from '../../agent/runtime/null.js';
import type { ContainerEvent } from '../../agent/runtime/runtime.js';
import type { Assignment } from '../../shared/protocol.js';
import { createLogger } from '../../shared/log.js';

const assignment = (podId: string): Assignment => ({
  tenant: 't', podId, uid: 'u', generation: 1,
  spec: { image: 'x', pull: false, env: {}, ports: [], mounts: [], cpuLimitMilli: 1, memLimitMb: 1, cpuRequestMilli: 1, memRequestMb: 1 },
});

async function until(ok: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok());
}

test('events are passed on; after the feed ends the watch subscribes again and says the engine is back', async () => {
  const runtime = new NullRuntime();
  const events: ContainerEvent[] = [];
  let back = 0;
  const watch = new EngineWatch({ runtime, log: createLogger('test', 'silent'), onEvent: (e) => events.push(e), onEngineBack: () => back++ });
  watch.start();
  const [a, b] = [await runtime.createAndStart(assignment('a')), await runtime.createAndStart(assignment('b'))];
  await until(() => runtime.subscriptions === 1);
  await runtime.remove(a.id);
  await until(() => events.length === 1);
  assert.equal(back, 0, 'the first subscription is not a return');
  runtime.endEvents();
  await until(() => runtime.subscriptions === 2 && back === 1);
  await runtime.remove(b.id);
  await until(() => events.length === 2);
  assert.deepEqual(events, [{ containerId: a.id, kind: 'removed' }, { containerId: b.id, kind: 'removed' }]);
  watch.stop();
});
