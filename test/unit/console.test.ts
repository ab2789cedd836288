// The web console's pieces that run without a browser: the event-stream parser its log
// follower uses, and the static router (content types, CSP, caching, nothing outside its folder).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Koa from 'koa';
import { request } from 'undici';
import { CONSOLE_CSP, consoleRouter } from '../../coordinator/api/console.js';
import { errorEnvelope } from '../../coordinator/api/envelope.js';
import { SseParser, type SseEvent } from '../../coordinator/console/sse.js';
import { createLogger } from '../../shared/log.js';

const STREAM = 'id: 3\ndata: one\ndata: two\n\n: keepalive\n\nevent: gap\ndata: [dropped]\n\nid: 4\n\nevent: end\r\ndata: the pod was stopped\r\n\r\n';

test('SseParser: the same events however the text is cut', () => {
  const whole = new SseParser().push(STREAM);
  assert.deepEqual(whole, [
    { event: 'message', id: '3', data: 'one\ntwo' },
    { event: 'gap', id: '3', data: '[dropped]' },
    { event: 'end', id: '4', data: 'the pod was stopped' },
  ] satisfies SseEvent[]);
  for (let size = 1; size <= 7; size++) {
    const p = new SseParser();
    const got: SseEvent[] = [];
    for (let i = 0; i < STREAM.length; i += size) got.push(...p.push(STREAM.slice(i, i + size)));
    assert.deepEqual(got, whole, `cut every ${size} characters`);
    assert.equal(p.lastId, '4');
  }
});

test('SseParser: an event is not dispatched before its blank line; a field without a value is empty', () => {
  const p = new SseParser();
  assert.deepEqual(p.push('data: half'), []);
  assert.deepEqual(p.push('\ndata\n'), []);
  assert.deepEqual(p.push('\n'), [{ event: 'message', id: null, data: 'half\n' }]);
});

test('console router: content types, CSP, no-store page, revalidated assets, nothing else served', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'pods-console-'));
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>t</title>');
  await writeFile(path.join(dir, 'main.js'), 'export {};');
  await writeFile(path.join(dir, 'main.js.map'), '{}');
  await writeFile(path.join(dir, 'console.css'), 'body{}');
  await writeFile(path.join(dir, 'notes.txt'), 'secret');
  const app = new Koa();
  app.use(errorEnvelope(createLogger('test', 'silent'), '1.0.0'));
  app.use(consoleRouter(dir).routes());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const get = async (p: string, headers: Record<string, string> = {}) => {
    const r = await request(`${base}${p}`, { headers });
    await r.body.dump();
    return r;
  };
  try {
    for (const [p, to] of [['/', '/ui/'], ['/ui', '/ui/']]) {
      const r = await get(p);
      assert.equal(r.statusCode, 302, p);
      assert.equal(r.headers.location, to, p);
    }
    const page = await get('/ui/');
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.equal(page.headers['content-security-policy'], CONSOLE_CSP);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');

    const js = await get('/ui/main.js');
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'no-cache');
    assert.equal((await get('/ui/main.js', { 'if-none-match': String(js.headers.etag) })).statusCode, 304);
    assert.equal((await get('/ui/console.css')).headers['content-type'], 'text/css; charset=utf-8');

    for (const p of ['/ui/main.js.map', '/ui/notes.txt', '/ui/index.html', '/ui/..%2F..%2Fetc%2Fpasswd', '/ui/x/main.js']) {
      assert.equal((await get(p)).statusCode, 404, p);
    }
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
