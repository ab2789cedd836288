// PodViewCache: a remembered view is served only for a record read the same in every field that
// makes it (and with its host as reachable as then); anything else renders again.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PodViewCache } from '../../coordinator/pod-view-cache.js';
import type { PodRecord } from '../../coordinator/store/pods.js';
import type { PodView } from '../../shared/api.js';

/** A record as the store gives it; only what the cache reads is filled in. */
function record(tenant: string, podId: string, raw: Partial<PodRecord['raw']> = {}, more: Partial<PodRecord> = {}): PodRecord {
  return {
    spec: { tenant, pod_id: podId },
    placement: null,
    note: null,
    raw: { spec: `{"pod_id":"${podId}"}`, desired: '{"status_requested":"ON"}', placement: '', observed: '', ports: '', ...raw },
    ...more,
  } as PodRecord;
}

/** The cache over a render that says what it was given, and counts its calls. */
function counted(max?: number) {
  const made = { renders: 0 };
  let reachable = true;
  const render = (rec: PodRecord, up: boolean) => {
    made.renders++;
    return { pod_id: rec.spec.pod_id, raw: rec.raw, note: rec.note, reachable: up } as unknown as PodView;
  };
  const cache = new PodViewCache(render, () => reachable, max);
  return { cache, made, setReachable: (up: boolean) => (reachable = up) };
}

describe('PodViewCache', () => {
  test('the same record read again gives the same JSON, rendered once', () => {
    const { cache, made } = counted();
    const first = cache.json(record('dev', 'a'));
    // A new read: equal strings, new objects.
    assert.equal(cache.json(record('dev', 'a')), first);
    assert.equal(made.renders, 1);
    assert.deepEqual(JSON.parse(first), { pod_id: 'a', raw: record('dev', 'a').raw, note: null, reachable: false });
  });

  test('any stored field, the note or the host being reachable changed: rendered again, as it is now', () => {
    const { cache, made, setReachable } = counted();
    const placed = { placement: { nodeId: 'n1', at: 't' } };
    const reads: PodRecord[] = [
      record('dev', 'a'),
      record('dev', 'a', { spec: '{"pod_id":"a","description":"x"}' }),
      record('dev', 'a', { spec: '{"pod_id":"a","description":"x"}', desired: '{"status_requested":"OFF"}' }),
      record('dev', 'a', { desired: '{"status_requested":"OFF"}', placement: '{"nodeId":"n1"}' }, placed),
      record('dev', 'a', { desired: '{"status_requested":"OFF"}', placement: '{"nodeId":"n1"}', observed: '{"phase":"running"}' }, placed),
      record('dev', 'a', { desired: '{"status_requested":"OFF"}', placement: '{"nodeId":"n1"}', observed: '{"phase":"running"}', ports: '{"ssh":30000}' }, placed),
      record('dev', 'a', { desired: '{"status_requested":"OFF"}', placement: '{"nodeId":"n1"}', observed: '{"phase":"running"}', ports: '{"ssh":30000}' }, { ...placed, note: 'no room' }),
    ];
    for (const [i, rec] of reads.entries()) {
      const json = JSON.parse(cache.json(rec));
      assert.deepEqual(json.raw, rec.raw, `read ${i}`);
      assert.equal(json.note, rec.note, `read ${i}`);
      assert.equal(made.renders, i + 1, `read ${i} renders`);
    }
    const last = reads.at(-1)!;
    assert.equal(JSON.parse(cache.json(last)).reachable, true);
    setReachable(false);
    assert.equal(JSON.parse(cache.json(last)).reachable, false);
    setReachable(true);
    assert.equal(JSON.parse(cache.json(last)).reachable, true);
    assert.equal(made.renders, reads.length + 2);
  });

  test('pods of the same id in two tenants are two pods', () => {
    const { cache, made } = counted();
    cache.json(record('dev', 'a'));
    cache.json(record('other', 'a', { spec: '{"pod_id":"a","tenant":"other"}' }));
    assert.equal(JSON.parse(cache.json(record('dev', 'a'))).raw.spec, '{"pod_id":"a"}');
    assert.equal(made.renders, 2);
  });

  test('at most max pods are remembered: the view made first is the one dropped', () => {
    const { cache, made } = counted(2);
    for (const id of ['a', 'b', 'c']) cache.json(record('dev', id));
    cache.json(record('dev', 'c'));
    cache.json(record('dev', 'b'));
    assert.equal(made.renders, 3);
    cache.json(record('dev', 'a'));
    assert.equal(made.renders, 4);
  });
});
