// The agent's usage ring (CPU from consecutive samples, restarts, an hour kept) and the API's
// view of it, with Docker's stats given by hand.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryInUse, UsageSampler, type DockerStats } from '../../agent/usage.js';
import type { PodContainer } from '../../agent/runtime/runtime.js';
import { usageView } from '../../coordinator/api/metrics.js';
import { createLogger } from '../../shared/log.js';

const log = createLogger('test', 'silent');

function container(id: string, startedAt: string): PodContainer {
  return { id, tenant: 't', podId: 'p', uid: 'u', generation: 1, state: 'running', startedAt, hostPorts: {} };
}

function stats(atMs: number, cpuNs: number, rx = 0): DockerStats {
  return {
    read: new Date(atMs).toISOString(),
    cpu_stats: { cpu_usage: { total_usage: cpuNs } },
    memory_stats: { usage: 50_000_000, limit: 100_000_000, stats: { inactive_file: 10_000_000 } },
    networks: { eth0: { rx_bytes: rx, tx_bytes: 1 } },
  };
}

test('CPU is the rate between samples of one run; a new container counts as a restart; an hour is kept', async () => {
  let c = container('a', '2026-01-01T00:00:00Z');
  let next: DockerStats = stats(0, 0);
  const sampler = new UsageSampler({ source: { list: async () => [c], stats: async () => next }, intervalMs: 600_000, log });
  assert.equal(sampler.capacity, 6);
  const t0 = Date.now();
  next = stats(t0, 0, 100);
  await sampler.sample();
  next = stats(t0 + 1000, 500_000_000, 300); // half a core for a second
  await sampler.sample();
  let u = sampler.usage({ tenant: 't', podId: 'p' }).samples;
  assert.equal(u.length, 2);
  assert.equal(u[0]!.cpuCores, null, 'no rate from one sample');
  assert.equal(u[1]!.cpuCores, 0.5);
  assert.equal(u[1]!.memoryBytes, 40_000_000, 'page cache left out');
  c = container('b', '2026-01-01T01:00:00Z');
  next = stats(t0 + 2000, 10);
  await sampler.sample();
  u = sampler.usage({ tenant: 't', podId: 'p' }).samples;
  assert.equal(u[2]!.restarts, 1);
  assert.equal(u[2]!.cpuCores, null, 'no rate across containers');
  for (let i = 3; i < 10; i++) {
    next = stats(t0 + i * 1000, i * 1e9);
    await sampler.sample();
  }
  assert.equal(sampler.usage({ tenant: 't', podId: 'p' }).samples.length, 6, 'the ring holds an hour at the interval');

  const view = usageView('p', 'n1', { intervalS: 1, samples: u }, t0 + 2000);
  assert.equal(view.last_hour.restarts, 1);
  assert.equal(view.last_hour.network_rx_bytes, 200, 'growth within a run only');
  assert.equal(view.now?.cpu_cores, null);
  assert.equal(view.last_hour.cpu_cores_max, 0.5);
});

test('memory in use without stats is 0; with cgroup v1 stats the inactive cache is left out', () => {
  assert.equal(memoryInUse({}), 0);
  assert.equal(memoryInUse({ memory_stats: { usage: 100, stats: { total_inactive_file: 30 } } }), 70);
});
