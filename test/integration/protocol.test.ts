// Bad frames on the real coordinator<->agent link: each side answers with an error frame
// and keeps working. Real coordinator and agent processes, real WebSocket.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { encodeFrame, MAX_FRAME_BYTES } from '../../shared/protocol.js';
import { freePort } from '../helpers/ports.js';
import { Proc, waitFor } from '../helpers/procs.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { repoRoot } from '../helpers/stack.js';

type Frame = { type: string; id: string; re?: string; payload: any };

/** A WebSocket client that collects frames and lets a test wait for one. */
function collector(ws: WebSocket) {
  const frames: Frame[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  return {
    frames,
    next: (pred: (f: Frame) => boolean, what: string) => waitFor(what, async () => frames.find(pred), 10_000, 10),
  };
}

const hello = (nodeId: string) => encodeFrame('hello', { nodeId, agentVersion: 't', dockerVersion: 't', capacity: { cpuMilli: 1000, memoryMb: 1024 }, containers: [] });

describe('the coordinator answers bad frames and stays up', () => {
  let redis: TestRedis;
  let coordinator: Proc;
  let url: string;
  const nodeToken = `node-${randomBytes(12).toString('hex')}`;
  const nodeToken2 = `node-${randomBytes(12).toString('hex')}`;
  const nodeToken3 = `node-${randomBytes(12).toString('hex')}`;

  before(async () => {
    redis = await startRedis();
    const port = await freePort();
    url = `ws://127.0.0.1:${port}/v3/agents/connect`;
    coordinator = new Proc('coordinator', process.execPath, [path.join(repoRoot(), 'dist/coordinator/main.js')], {
      PODS_LISTEN_PORT: String(port),
      PODS_REDIS_URL: redis.url,
      PODS_ADMIN_TOKEN: `admin-${randomBytes(12).toString('hex')}`,
      PODS_NODE_TOKENS: `proto-node=${nodeToken},proto-node-2=${nodeToken2},proto-node-3=${nodeToken3}`,
    }).start();
    await waitFor('the coordinator to listen', async () => coordinator.output.includes('coordinator listening'));
  });
  after(async () => {
    await coordinator?.kill('SIGTERM');
    await redis?.stop();
  });

  const open = async (token = nodeToken) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
    const c = collector(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_q, res) => reject(Object.assign(new Error('refused'), { status: res.statusCode })));
      ws.once('error', reject);
    });
    return { ws, ...c };
  };

  test('a wrong node token is refused at the upgrade with 401', async () => {
    await assert.rejects(open('wrong-token-0123456789abcdef'), (err: { status?: number }) => err.status === 401);
  });

  test('malformed, unknown, pre-hello, bad-payload and oversized frames each get an error reply', async () => {
    const { ws, next } = await open();
    ws.send('{not json');
    assert.equal((await next((f) => f.type === 'error' && f.payload.code === 'PROTO_MALFORMED', 'malformed reply')).payload.message, 'frame is not valid JSON');
    ws.send(JSON.stringify({ v: 1, type: 'self_destruct', id: 'u1', payload: {} }));
    assert.equal((await next((f) => f.re === 'u1', 'unknown-type reply')).payload.code, 'PROTO_UNKNOWN_TYPE');
    ws.send(JSON.stringify({ v: 1, type: 'heartbeat', id: 'h0', payload: { running: 0 } }));
    assert.equal((await next((f) => f.re === 'h0', 'pre-hello reply')).payload.code, 'PROTO_NO_HELLO');
    ws.send(JSON.stringify({ v: 1, type: 'hello', id: 'b1', payload: { nodeId: 'x' } }));
    assert.equal((await next((f) => f.re === 'b1', 'bad-payload reply')).payload.code, 'PROTO_BAD_PAYLOAD');
    ws.send(JSON.stringify({ v: 1, type: 'heartbeat', id: 'big', payload: { running: 0, pad: 'x'.repeat(MAX_FRAME_BYTES) } }));
    assert.equal((await next((f) => f.payload?.code === 'PROTO_TOO_LARGE', 'too-large reply')).type, 'error');
    // Still the same link, and it still works.
    ws.send(hello('proto-node'));
    const sync = await next((f) => f.type === 'sync', 'sync after hello');
    assert.deepEqual(sync.payload, { assignments: [] });
    ws.close();
  });

  test('a notice is handled without a reply; a bad one still gets an error', async () => {
    const { ws, frames, next } = await open(nodeToken2);
    ws.send(hello('proto-node-2'));
    await next((f) => f.type === 'sync', 'sync after hello');
    // A report on a pod that does not exist is handled (ignored as stale): no answer to a notice.
    const observed = { nodeId: 'proto-node-2', uid: 'u', generation: 1, phase: 'running', health: 'unknown', hostPorts: {}, at: new Date().toISOString() };
    ws.send(JSON.stringify({ v: 1, type: 'pod_status', id: 'n1', notice: true, payload: { tenant: 't', podId: 'nothere', observed } }));
    // The same as a request is answered, and since frames are handled in order, n1 was handled by then.
    ws.send(JSON.stringify({ v: 1, type: 'pod_status', id: 'r1', payload: { tenant: 't', podId: 'nothere', observed } }));
    assert.equal((await next((f) => f.re === 'r1', 'ack of the request')).type, 'ack');
    assert.equal(frames.filter((f) => f.re === 'n1').length, 0, 'the notice got no reply');
    ws.send(JSON.stringify({ v: 1, type: 'pod_status', id: 'n2', notice: true, payload: { tenant: 't' } }));
    assert.equal((await next((f) => f.re === 'n2', 'error for a bad notice')).payload.code, 'PROTO_BAD_PAYLOAD');
    ws.close();
  });

  test('a frame beyond what the link reads closes that link only; the coordinator keeps serving', async () => {
    const { ws } = await open(nodeToken3);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send('x'.repeat(2 * MAX_FRAME_BYTES + 10));
    assert.equal(await closed, 1009);
    const again = await open(nodeToken2);
    again.ws.send(hello('proto-node-2'));
    await again.next((f) => f.type === 'sync', 'sync on a new link');
    again.ws.close();
    assert.ok(coordinator.running);
  });
});

describe('the agent answers bad frames and stays up', () => {
  let agent: Proc;
  let server: ReturnType<typeof createServer>;
  let wss: WebSocketServer;
  const links: Array<{ ws: WebSocket } & ReturnType<typeof collector>> = [];

  before(async () => {
    server = createServer();
    wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => links.push({ ws, ...collector(ws) }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    agent = new Proc('agent', process.execPath, [path.join(repoRoot(), 'dist/agent/main.js')], {
      PODS_COORDINATOR_URL: `ws://127.0.0.1:${port}/v3/agents/connect`,
      PODS_NODE_TOKEN: `node-${randomBytes(12).toString('hex')}`,
      PODS_NODE_ID: `proto-${randomBytes(3).toString('hex')}`,
      PODS_CADDY_ADMIN_URL: `http://127.0.0.1:${await freePort()}`,
      PODS_HEARTBEAT_MS: '200',
    }).start();
  });
  after(async () => {
    await agent?.kill('SIGTERM');
    wss?.close();
    server?.close();
  });

  test('garbage from the coordinator side gets error replies; the agent keeps its link and heartbeats', async () => {
    await waitFor('the agent to dial in', async () => links.length > 0, 20_000);
    const { ws, frames, next } = links[0]!;
    const h = await next((f) => f.type === 'hello', 'hello');
    assert.ok(h.payload.capacity.cpuMilli > 0);
    ws.send(encodeFrame('sync', { assignments: [] }, h.id));
    ws.send('][');
    assert.equal((await next((f) => f.type === 'error' && f.payload.code === 'PROTO_MALFORMED', 'malformed reply')).type, 'error');
    ws.send(JSON.stringify({ v: 1, type: 'format_disk', id: 'x1', payload: {} }));
    assert.equal((await next((f) => f.re === 'x1', 'unknown reply')).payload.code, 'PROTO_UNKNOWN_TYPE');
    ws.send(JSON.stringify({ v: 1, type: 'apply', id: 'x2', payload: { assignment: { podId: 7 } } }));
    assert.equal((await next((f) => f.re === 'x2', 'bad payload reply')).payload.code, 'PROTO_BAD_PAYLOAD');
    ws.send(JSON.stringify({ v: 1, type: 'remove', id: 'x3', payload: {}, pad: 'y'.repeat(MAX_FRAME_BYTES) }));
    assert.equal((await next((f) => f.payload?.code === 'PROTO_TOO_LARGE', 'too-large reply')).type, 'error');
    const seen = frames.filter((f) => f.type === 'heartbeat').length;
    await next((f) => f.type === 'heartbeat' && frames.filter((x) => x.type === 'heartbeat').length > seen, 'a heartbeat after the garbage');
    assert.ok(agent.running);
    assert.equal(links.length, 1, 'no reconnect was needed');
  });
});
