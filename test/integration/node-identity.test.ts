// Who a host is: every node token is bound to one node id, a live node cannot be claimed a
// second time, what a node says about itself is capped and checked, and a node may speak
// only for its own pods. Real coordinator processes on a real Redis; the "agents" are raw
// WebSocket clients, because the attacks are things a real agent never sends. Before these
// checks, a client holding any node token said hello as node "evil" with a huge capacity
// and received every new pod of every tenant, environment (secrets) included.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { WebSocket } from 'ws';
import { encodeFrame } from '../../shared/protocol.js';
import { freePort } from '../helpers/ports.js';
import { Proc, waitFor } from '../helpers/procs.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { repoRoot, TEST_IMAGE } from '../helpers/stack.js';

type Frame = { type: string; id: string; re?: string; payload: any };
const token = () => `node-${randomBytes(12).toString('hex')}`;
const ADMIN = `admin-${randomBytes(12).toString('hex')}`;
const CEILING = { cpuMilli: 4000, memoryMb: 8192 };

/** A fake agent: says hello as told, answers the coordinator's requests, records every frame. */
class RawAgent {
  readonly frames: Frame[] = [];
  closeCode: number | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as Frame;
      this.frames.push(f);
      if (f.type === 'apply' || f.type === 'remove') ws.send(encodeFrame('ack', {}, f.id));
    });
    ws.on('close', (code) => (this.closeCode = code));
  }

  /** Open a link with this token; rejects with the HTTP status when refused at the upgrade. */
  static open(port: number, nodeToken: string): Promise<RawAgent> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v3/agents/connect`, { headers: { Authorization: `Bearer ${nodeToken}` } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawAgent(ws)));
      ws.once('unexpected-response', (_q, res) => reject(Object.assign(new Error(`refused with ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  next(pred: (f: Frame) => boolean, what: string): Promise<Frame> {
    return waitFor(what, async () => this.frames.find(pred), 10_000, 10);
  }

  /** Say hello; the coordinator's answer (sync or error). */
  async hello(nodeId: string, o: { capacity?: { cpuMilli: number; memoryMb: number }; endpoints?: { http: string; tls: string; tcpHost: string } } = {}): Promise<Frame> {
    const frame = encodeFrame('hello', {
      nodeId, agentVersion: 't', dockerVersion: 't', capacity: o.capacity ?? { cpuMilli: 2000, memoryMb: 4096 }, containers: [], ...(o.endpoints ? { endpoints: o.endpoints } : {}),
    });
    this.ws.send(frame);
    const id = JSON.parse(frame).id as string;
    return this.next((f) => f.re === id, 'an answer to hello');
  }

  send(type: 'pod_status' | 'pod_logs' | 'heartbeat', payload: unknown): Promise<Frame> {
    const frame = encodeFrame(type, payload as never);
    this.ws.send(frame);
    const id = JSON.parse(frame).id as string;
    return this.next((f) => f.re === id, `an answer to ${type}`);
  }

  closed(): Promise<number> {
    return waitFor('the link to close', async () => this.closeCode ?? undefined, 10_000, 10);
  }

  close(): void {
    this.ws.terminate();
  }
}

describe('node identity: bound tokens, one link per node, capped capacity, own pods only', () => {
  let redis: TestRedis;
  const coordinators: Proc[] = [];
  let port: number;
  let port2: number;
  const tokens = { a: token(), b: token(), c: token(), d: token(), e: token() };

  const startCoordinator = (p: number) => {
    const proc = new Proc('coordinator', process.execPath, [path.join(repoRoot(), 'dist/coordinator/main.js')], {
      PODS_LISTEN_PORT: String(p),
      PODS_REDIS_URL: redis.url,
      PODS_REDIS_PREFIX: 'nodeid:',
      PODS_TENANT: 'dev',
      PODS_ADMIN_TOKEN: ADMIN,
      PODS_NODE_TOKENS: Object.entries(tokens).map(([k, t]) => `node-${k}=${t}`).join(','),
      PODS_NODE_MAX_CPU_MILLI: String(CEILING.cpuMilli),
      PODS_NODE_MAX_MEMORY_MB: String(CEILING.memoryMb),
      PODS_AGENT_PING_MS: '1000',
      PODS_RECONCILE_INTERVAL_MS: '250',
    }).start();
    coordinators.push(proc);
    return proc;
  };
  const api = async (method: string, p: string, body?: unknown, on = port) => {
    const res = await request(`http://127.0.0.1:${on}${p}`, {
      method: method as 'GET',
      headers: { 'x-tapis-token': ADMIN, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  };
  const node = async (id: string) => (await api('GET', `/v3/admin/nodes/${id}`)).body.result;

  before(async () => {
    redis = await startRedis();
    port = await freePort();
    port2 = await freePort();
    for (const [p, proc] of [[port, startCoordinator(port)], [port2, startCoordinator(port2)]] as const) {
      await waitFor('a coordinator to answer', async () => proc.output.includes('coordinator listening') && (await api('GET', '/v3/pods/healthcheck', undefined, p)).status === 200);
    }
    assert.equal((await api('POST', '/v3/pods/images', { image: TEST_IMAGE })).status, 200);
  });
  after(async () => {
    for (const c of coordinators) await c.kill('SIGTERM');
    await redis?.stop();
  });

  test('a token bound to node A cannot say hello as another node', async () => {
    const evil = await RawAgent.open(port, tokens.a);
    const answer = await evil.hello('evil', { capacity: { cpuMilli: 10_000_000, memoryMb: 10_000_000 } });
    assert.equal(answer.type, 'error');
    assert.match(answer.payload.message, /for node node-a, not evil/);
    assert.equal(await evil.closed(), 4003);
    assert.equal((await api('GET', '/v3/admin/nodes/evil')).status, 404);
    assert.equal(evil.frames.filter((f) => f.type === 'apply').length, 0);
  });

  test('a second link for a live node is refused, here and through the other coordinator; the first keeps working', async () => {
    const a = await RawAgent.open(port, tokens.a);
    assert.equal((await a.hello('node-a')).type, 'sync');
    await assert.rejects(RawAgent.open(port, tokens.a), (err: { status?: number }) => err.status === 409);
    await assert.rejects(RawAgent.open(port2, tokens.a), (err: { status?: number }) => err.status === 409);
    assert.equal((await a.send('heartbeat', { running: 0 })).type, 'ack');
    assert.equal(a.closeCode, null);
    a.close();
    // Once it is gone, the node may connect again.
    await waitFor('node-a to be free again', async () => {
      const again = await RawAgent.open(port2, tokens.a).catch(() => null);
      if (!again) return false;
      const ok = (await again.hello('node-a')).type === 'sync';
      again.close();
      return ok;
    });
  });

  test('a node claiming more than the ceiling gets the ceiling; a site admin can set a lower limit', async () => {
    const b = await RawAgent.open(port, tokens.b);
    assert.equal((await b.hello('node-b', { capacity: { cpuMilli: 512_000, memoryMb: 4_000_000 } })).type, 'sync');
    let view = await node('node-b');
    assert.deepEqual(view.capacity, { cpu_milli: CEILING.cpuMilli, memory_mb: CEILING.memoryMb });
    assert.deepEqual(view.reported_capacity, { cpu_milli: 512_000, memory_mb: 4_000_000 });
    // A pod bigger than the ceiling is never placed on the boasting node.
    const big = await api('POST', '/v3/pods', { pod_id: 'toobig', image: TEST_IMAGE, resources: { cpu_request: 8000, cpu_limit: 8000 } });
    assert.equal(big.status, 200, big.body.message);
    await waitFor('toobig to say why it waits', async () => /no host has room/.test((await api('GET', '/v3/pods/toobig')).body.result.status_container.message ?? ''));
    assert.equal(b.frames.filter((f) => f.type === 'apply').length, 0);

    const limited = await api('PUT', '/v3/admin/nodes/node-b/limits', { cpu_milli: 1000 });
    assert.equal(limited.status, 200, limited.body.message);
    await b.send('heartbeat', { running: 0 });
    view = await node('node-b');
    assert.equal(view.capacity.cpu_milli, 1000);
    assert.equal(view.limits.set_for_node, true);
    assert.equal((await api('PUT', '/v3/admin/nodes/Bad_Id/limits', { cpu_milli: 1 })).status, 400);
    assert.equal((await api('DELETE', '/v3/pods/toobig')).status, 200);
    b.close();
  });

  test('endpoints that are not an address of the site networks are refused', async () => {
    for (const endpoints of [
      { http: '{http.request.host}:80', tls: '127.0.0.1:8443', tcpHost: '127.0.0.1' },
      { http: '127.0.0.1:8080', tls: '8.8.8.8:443', tcpHost: '127.0.0.1' },
      { http: '127.0.0.1:8080', tls: '127.0.0.1:8443', tcpHost: 'metadata.internal' },
    ]) {
      const c = await RawAgent.open(port, tokens.c);
      const answer = await c.hello('node-c', { endpoints });
      assert.equal(answer.type, 'error', JSON.stringify(endpoints));
      assert.match(answer.payload.message, /endpoint/);
      assert.equal(await c.closed(), 4004);
    }
    assert.equal((await api('GET', '/v3/admin/nodes/node-c')).status, 404);
  });

  test("a node's reports about a pod placed on another node are dropped: no status, no logs", async () => {
    const d = await RawAgent.open(port, tokens.d);
    assert.equal((await d.hello('node-d')).type, 'sync');
    assert.equal((await api('POST', '/v3/pods', { pod_id: 'victim', image: TEST_IMAGE, environment_variables: { SECRET: 'not-for-e' } })).status, 200);
    const apply = await d.next((f) => f.type === 'apply' && f.payload.assignment.podId === 'victim', 'victim placed on node-d');
    const { tenant, podId, uid, generation } = apply.payload.assignment;

    const e = await RawAgent.open(port, tokens.e);
    assert.equal((await e.hello('node-e')).type, 'sync');
    const now = new Date().toISOString();
    await e.send('pod_status', { tenant, podId, observed: { nodeId: 'node-e', uid, generation, phase: 'running', containerId: 'fake', at: now, health: 'healthy', hostPorts: {} } });
    await e.send('pod_logs', { tenant, podId, uid, generation, reset: true, chunk: 'forged output from node-e\n' });
    await sleep(300);
    const pod = (await api('GET', '/v3/pods/victim')).body.result;
    assert.notEqual(pod.status, 'RUNNING', 'node-e cannot make the pod RUNNING');
    assert.doesNotMatch((await api('GET', '/v3/pods/victim/logs')).body.result.logs, /forged/);
    assert.equal(e.frames.filter((f) => f.type === 'apply').length, 0, 'node-e never saw the pod (or its environment)');

    // The node it is placed on is believed.
    await d.send('pod_logs', { tenant, podId, uid, generation, reset: true, chunk: 'real output from node-d\n' });
    assert.match((await api('GET', '/v3/pods/victim/logs')).body.result.logs, /real output from node-d/);
    d.close();
    e.close();
  });

  test('revoking an issued token through one coordinator cuts its link on the other at once', async () => {
    const issued = await api('POST', '/v3/admin/node-tokens', { node_id: 'node-f' });
    assert.equal(issued.status, 200);
    assert.equal((await api('POST', '/v3/admin/node-tokens', {})).status, 400, 'a token is always for one node');
    const f = await RawAgent.open(port2, issued.body.result.token);
    assert.equal((await f.hello('node-f')).type, 'sync');
    // This client never sends a heartbeat: the cut cannot come from a heartbeat check.
    assert.equal((await api('DELETE', `/v3/admin/node-tokens/${issued.body.result.token_id}`)).status, 200);
    assert.equal(await f.closed(), 4001);
    await assert.rejects(RawAgent.open(port2, issued.body.result.token), (err: { status?: number }) => err.status === 401);
  });
});
