// The agent's link to its coordinator (CoordinatorLink) over a real WebSocket, against a
// coordinator side played by the test: what the agent reports while its hello is unanswered.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type WebSocket, WebSocketServer } from 'ws';
import { CoordinatorLink } from '../../agent/link.js';
import { observation } from '../../agent/observation.js';
import { loadAgentConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import { encodeFrame } from '../../shared/protocol.js';
import { waitFor } from '../helpers/procs.js';

type Frame = { type: string; id: string; re?: string; notice?: boolean; payload: any };

describe('the agent link', () => {
  let server: ReturnType<typeof createServer>;
  let wss: WebSocketServer;
  let url: string;
  const links: CoordinatorLink[] = [];

  before(async () => {
    server = createServer();
    wss = new WebSocketServer({ server });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v3/agents/connect`;
  });
  after(() => {
    for (const l of links) l.stop();
    wss?.close();
    server?.close();
  });

  function startLink(nodeId: string): CoordinatorLink {
    const config = loadAgentConfig({ PODS_COORDINATOR_URL: url, PODS_NODE_TOKEN: 'node-token-of-the-link-test', PODS_NODE_ID: nodeId });
    const link = new CoordinatorLink(config, createLogger('agent-link-test', 'silent'), {
      hello: async () => ({ nodeId, agentVersion: 't', dockerVersion: 't', capacity: { cpuMilli: 1000, memoryMb: 1024 }, containers: [] }),
      sync: async () => undefined,
      apply: async () => undefined,
      remove: async () => undefined,
      heartbeat: () => ({ running: 0 }),
    });
    links.push(link);
    link.start();
    return link;
  }

  test('a report made while its hello is unanswered reaches the coordinator once it is, in order', async () => {
    const frames: Frame[] = [];
    let coordinatorSide: WebSocket | null = null;
    wss.once('connection', (ws) => {
      coordinatorSide = ws;
      ws.on('message', (d) => frames.push(JSON.parse(d.toString()) as Frame));
    });
    const link = startLink('node-held');
    const hello = await waitFor('the hello', async () => frames.find((f) => f.type === 'hello'));
    // A coordinator may send commands as soon as it has the hello; the agent acts and reports
    // (here: a container it removed) before the answer to its hello arrives.
    const removed = observation('node-held', { uid: 'u1', generation: 2 }, 'removed');
    const running = observation('node-held', { uid: 'u2', generation: 1 }, 'running');
    assert.equal(link.send('pod_status', { tenant: 't', podId: 'gone', observed: removed }), true);
    assert.equal(link.send('pod_status', { tenant: 't', podId: 'other', observed: running }), true);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(frames.filter((f) => f.type === 'pod_status'), [], 'nothing is sent before the hello is answered');

    coordinatorSide!.send(encodeFrame('sync', { assignments: [] }, hello.id));
    const reports = await waitFor('both reports', async () => {
      const r = frames.filter((f) => f.type === 'pod_status');
      return r.length === 2 ? r : null;
    });
    assert.deepEqual(reports.map((f) => [f.payload.podId, f.payload.observed.phase, f.notice]), [['gone', 'removed', true], ['other', 'running', true]]);
    assert.ok(reports[0]!.payload.observed.seq < reports[1]!.payload.observed.seq, 'in the order they were made');
  });

  test('with no link open a report is not taken (the next hello carries the state)', async () => {
    const link = startLink('node-closed');
    link.stop();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(link.send('pod_status', { tenant: 't', podId: 'p', observed: observation('node-closed', { uid: 'u', generation: 1 }, 'running') }), false);
  });
});
