import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PodQueue } from '../../agent/pod-queue.js';
import { createLogger } from '../../shared/log.js';

const tick = (ms = 5) => new Promise<void>((r) => setTimeout(r, ms));

test('jobs on one pod run one at a time in order; other pods do not wait; a failed job does not stop the next', async () => {
  const queue = new PodQueue(createLogger('test', 'silent'));
  const seen: string[] = [];
  const job = (name: string, ms: number, fail = false) => async () => {
    seen.push(`${name}+`);
    await tick(ms);
    seen.push(`${name}-`);
    if (fail) throw new Error('boom');
  };
  await Promise.all([queue.run('a', job('a1', 30, true)), queue.run('a', job('a2', 1)), queue.run('b', job('b1', 1))]);
  assert.deepEqual(seen, ['a1+', 'b1+', 'b1-', 'a1-', 'a2+', 'a2-']);
});

test('recordFinished names the pods on which a job finished since, and only those', async () => {
  const queue = new PodQueue(createLogger('test', 'silent'));
  await queue.run('before', async () => undefined);
  const running = queue.run('spanning', () => tick(20));
  const finished = queue.recordFinished();
  await queue.run('during', async () => undefined);
  await running;
  queue.stopRecording(finished);
  await queue.run('after', async () => undefined);
  assert.deepEqual([...finished].sort(), ['during', 'spanning']);
});
