import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Desired, Observed } from '../../shared/pod.js';
import { deriveStatus } from '../../shared/status.js';

const desired = (o: Partial<Desired> = {}): Desired => ({
  status_requested: 'ON', uid: 'u1', generation: 2, deleting: false, start_instance_ts: null, time_to_stop_ts: null, ...o,
});
const observed = (o: Partial<Observed> = {}): Observed => ({
  nodeId: 'n1', uid: 'u1', generation: 2, phase: 'running', health: 'healthy', hostPorts: {}, at: '2026-01-01T00:00:00Z', ...o,
});
const placed = { nodeId: 'n1', at: '2026-01-01T00:00:00Z' };

test('the status follows the pod from request to running', () => {
  assert.equal(deriveStatus(desired(), null, null).status, 'REQUESTED');
  assert.equal(deriveStatus(desired(), placed, null).status, 'SPAWNER_SETUP');
  assert.equal(deriveStatus(desired(), placed, observed({ phase: 'creating' })).status, 'CREATING');
  assert.equal(deriveStatus(desired(), placed, observed()).status, 'RUNNING');
});

test('an observation of an older instance or another pod does not count as the current one', () => {
  assert.equal(deriveStatus(desired(), placed, observed({ generation: 1 })).status, 'SPAWNER_SETUP');
  assert.equal(deriveStatus(desired(), placed, observed({ uid: 'other' })).status, 'SPAWNER_SETUP');
});

test('exits and failures', () => {
  assert.equal(deriveStatus(desired(), placed, observed({ phase: 'exited', exitCode: 0 })).status, 'COMPLETE');
  const err = deriveStatus(desired(), placed, observed({ phase: 'exited', exitCode: 3 }));
  assert.deepEqual(err, { status: 'ERROR', message: 'Container exited with code 3.' });
  assert.deepEqual(deriveStatus(desired(), placed, observed({ phase: 'failed', message: 'no such image' })), { status: 'ERROR', message: 'no such image' });
});

test('stopping and deleting', () => {
  assert.equal(deriveStatus(desired({ status_requested: 'OFF' }), placed, observed()).status, 'DELETING');
  assert.equal(deriveStatus(desired({ status_requested: 'OFF' }), placed, observed({ phase: 'removed' })).status, 'STOPPED');
  assert.equal(deriveStatus(desired({ status_requested: 'OFF' }), null, null).status, 'STOPPED');
  assert.equal(deriveStatus(desired({ deleting: true }), placed, null).status, 'DELETING');
});
