// The image allow-list as two coordinators on one real Redis see it: an entry read once serves a
// create's check without another read, and a change made through either reaches the other's
// next check (announced on a pub/sub channel), never an entry read before it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ImageStore, type ImageRecord } from '../../coordinator/store/images.js';
import { waitFor } from '../helpers/procs.js';
import { redisForFile } from '../helpers/redis.js';

const redis = redisForFile();

const entry = (image: string, tags: string[] = []): ImageRecord => ({ image, description: '', tenants: [], tags, added_by: 'admin', creation_ts: new Date().toISOString() });

/** How many HGETs Redis has served so far (INFO commandstats). */
async function hgets(): Promise<number> {
  const info = await (await redis.connect()).info('commandstats');
  return Number(/cmdstat_hget:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

test('an entry read once serves the next checks; a change through the other coordinator is seen at its next one', async () => {
  const prefix = `test-${randomBytes(4).toString('hex')}:`;
  const [a, b] = [new ImageStore(await redis.connect(), prefix), new ImageStore(await redis.connect(), prefix)];
  const stops = [await a.watchChanges(), await b.watchChanges()];
  try {
    assert.equal(await a.admits('pods-test/httpd:1', 't1'), 'refused');
    await b.add(entry('pods-test/httpd'));
    await waitFor('A to admit the image B added', async () => (await a.admits('pods-test/httpd:1', 't1')) === 'name', 2_000, 10);

    const before = await hgets();
    for (let i = 0; i < 20; i++) assert.equal(await a.admits('pods-test/httpd:1', 't1'), 'name');
    assert.equal(await hgets(), before, '20 checks of an entry read before made no read');

    // Pinned tags through B: A's next checks follow (the tag pinned is admitted, another refused).
    assert.equal(await b.remove('pods-test/httpd'), true);
    await b.add(entry('pods-test/httpd', ['1']));
    await waitFor('A to see the pinned entry', async () => (await a.admits('pods-test/httpd:2', 't1')) === 'refused', 2_000, 10);
    assert.equal(await a.admits('pods-test/httpd:1', 't1'), 'pinned');

    // Removed through B: refused by A from then on.
    assert.equal(await b.remove('pods-test/httpd'), true);
    await waitFor('A to refuse the image B removed', async () => (await a.admits('pods-test/httpd:1', 't1')) === 'refused', 2_000, 10);
  } finally {
    for (const stop of stops) stop();
  }
});

test('a change made here is seen here at once, before any announcement comes back', async () => {
  const prefix = `test-${randomBytes(4).toString('hex')}:`;
  const a = new ImageStore(await redis.connect(), prefix);
  const stop = await a.watchChanges();
  try {
    assert.equal(await a.admits('pods-test/mine', 't1'), 'refused');
    await a.add(entry('pods-test/mine'));
    assert.equal(await a.admits('pods-test/mine', 't1'), 'name');
    await a.remove('pods-test/mine');
    assert.equal(await a.admits('pods-test/mine', 't1'), 'refused');
  } finally {
    stop();
  }
});
