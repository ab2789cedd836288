import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serviceName, serviceSpec, type ServiceInstance } from '../../coordinator/backend/swarm/service-spec.js';
import type { ContainerSpec } from '../../shared/protocol.js';

const container: ContainerSpec = {
  image: 'pods-test/httpd:latest',
  pull: true,
  args: ['--port', '5000'],
  env: { GREETING: 'hi' },
  ports: [{ name: 'default', port: 5000, protocol: 'http', host: 'p1.pods.t1.localhost' }, { name: 'db', port: 5432, protocol: 'postgres', host: 'p1-db.pods.t1.localhost' }],
  mounts: [],
  cpuLimitMilli: 2000,
  memLimitMb: 512,
  cpuRequestMilli: 250,
  memRequestMb: 128,
};
const instance = (o: Partial<ServiceInstance> = {}): ServiceInstance => ({
  tenant: 't1', podId: 'p1', uid: 'u1', generation: 3, spec: container, image: 'sha256:abc', defaultUser: '1000:1000', pidsLimit: 512, replicas: 1, ...o,
});

test('a pod instance is a one-replica service labelled with tenant, pod, uid and generation', () => {
  const s = serviceSpec(instance()) as any;
  assert.equal(s.Name, serviceName('t1', 'p1'));
  assert.deepEqual(s.Labels, { 'pods.managed': '1', 'pods.tenant': 't1', 'pods.pod_id': 'p1', 'pods.uid': 'u1', 'pods.generation': '3' });
  assert.deepEqual(s.Mode, { Replicated: { Replicas: 1 } });
  assert.equal(s.TaskTemplate.ForceUpdate, 3, 'a new generation always makes a new task');
  assert.deepEqual(s.TaskTemplate.RestartPolicy, { Condition: 'none' }, 'an exited container stays COMPLETE or ERROR');
  assert.deepEqual(s.EndpointSpec, { Mode: 'dnsrr' }, 'no routing mesh: no virtual IP');
  assert.equal(s.EndpointSpec.Ports, undefined, 'no published ports');
  const c = s.TaskTemplate.ContainerSpec;
  assert.equal(c.Image, 'sha256:abc');
  assert.deepEqual(c.Args, ['--port', '5000']);
  assert.deepEqual(c.Env, ['GREETING=hi']);
  assert.equal(c.Labels['pods.generation'], '3');
  assert.deepEqual(JSON.parse(c.Labels['pods.ports']), { default: 5000, db: 5432 }, 'the agent routes each entry to its container port');
  assert.equal(c.User, '1000:1000');
  assert.equal(c.Init, true);
  assert.deepEqual(c.CapabilityDrop, ['ALL']);
  assert.deepEqual(s.TaskTemplate.Resources, {
    Limits: { NanoCPUs: 2_000_000_000, MemoryBytes: 512 * 1024 * 1024, Pids: 512 },
    Reservations: { NanoCPUs: 250_000_000, MemoryBytes: 128 * 1024 * 1024 },
  });
  assert.deepEqual(s.TaskTemplate.Placement, {});
});

test('a template\'s user wins; a stopped pod has no replica; a pod pinned to a node says so in a constraint', () => {
  const s = serviceSpec(instance({ spec: { ...container, user: '999:999' }, replicas: 0, only: 'h2' })) as any;
  assert.equal(s.TaskTemplate.ContainerSpec.User, '999:999');
  assert.deepEqual(s.Mode, { Replicated: { Replicas: 0 } });
  assert.deepEqual(s.TaskTemplate.Placement, { Constraints: ['node.labels.pods.node==h2'] });
});

test('service names are short, fixed and distinct per tenant and pod', () => {
  const long = serviceName('t'.repeat(64), 'p'.repeat(128));
  assert.ok(long.length <= 63, long);
  assert.match(long, /^pods-[0-9a-f]{20}$/);
  assert.notEqual(serviceName('a', 'bc'), serviceName('ab', 'c'));
  assert.equal(serviceName('t1', 'p1'), serviceName('t1', 'p1'));
});
