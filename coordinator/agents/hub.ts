import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CoordinatorConfig } from '../../shared/config.js';
import type { Logger } from '../../shared/log.js';
import { Peer, PeerError, reply } from '../../shared/peer.js';
import type { Observed } from '../../shared/pod.js';
import { AGENT_WS_PATH, MAX_FRAME_BYTES, type Assignment, type Capacity, type Frame, type Hello, type MessageType, type PayloadOf, type PodRef } from '../../shared/protocol.js';
import type { NodeStore } from '../store/nodes.js';
import type { PodStore } from '../store/pods.js';

export interface HubDeps {
  config: CoordinatorConfig;
  log: Logger;
  pods: PodStore;
  nodes: NodeStore;
  /** The assignments a node should run now (its sync set). */
  assignmentsFor: (nodeId: string) => Promise<Assignment[]>;
  /** Something changed for a pod: reconcile it. */
  onPodChange: (tenant: string, podId: string) => void;
  /** A node (re)connected: reconcile its pods and anything waiting for a host. */
  onNodeUp: (nodeId: string) => void;
}

interface Link {
  peer: Peer;
  ws: WebSocket;
  capacity: Capacity;
  alive: boolean;
  /** The issued node token this link authenticated with (null: a token from config). */
  tokenId: string | null;
}

/** Who a node token says the agent is, once checked. */
interface Admission {
  tokenId: string | null;
  /** An issued token may be bound to one node id. */
  nodeId: string | null;
}

const PHASE_LINES: Record<string, string> = {
  creating: 'container is being created',
  running: 'container is running',
  exited: 'container exited',
  failed: 'container failed to start',
  removing: 'container is being removed',
  removed: 'container removed',
};

/**
 * The agents' WebSocket endpoint. Agents dial in; the node token is checked on
 * upgrade; dead links are found by ping/pong. Reports from agents are the only
 * writers of observed state.
 */
export class AgentHub {
  // Frames up to twice the limit are read and answered with PROTO_TOO_LARGE; beyond that ws closes the link (1009).
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 2 * MAX_FRAME_BYTES });
  private readonly links = new Map<string, Link>();
  private pingTimer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: HubDeps) {}

  attach(server: Server): void {
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.pingTimer = setInterval(() => this.pingAll(), this.deps.config.agentPingMs);
    this.pingTimer.unref();
  }

  isConnected(nodeId: string): boolean {
    return this.links.get(nodeId)?.peer.open ?? false;
  }

  connected(): Array<{ nodeId: string; capacity: Capacity }> {
    return [...this.links].filter(([, l]) => l.peer.open).map(([nodeId, l]) => ({ nodeId, capacity: l.capacity }));
  }

  async apply(nodeId: string, assignment: Assignment): Promise<void> {
    await this.linkOf(nodeId).peer.request('apply', { assignment });
  }

  async remove(nodeId: string, ref: PodRef): Promise<void> {
    await this.linkOf(nodeId).peer.request('remove', ref);
  }

  /** A request to a connected node's agent (storage, exec); rejects with PeerError. */
  request<T extends MessageType>(nodeId: string, type: T, payload: PayloadOf<T>, timeoutMs?: number): Promise<Frame> {
    const link = this.links.get(nodeId);
    if (!link || !link.peer.open) return Promise.reject(new PeerError('PEER_CLOSED', `node ${nodeId} is not connected`));
    return link.peer.request(type, payload, timeoutMs);
  }

  close(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const l of this.links.values()) l.ws.terminate();
    this.wss.close();
  }

  private linkOf(nodeId: string): Link {
    const link = this.links.get(nodeId);
    if (!link || !link.peer.open) throw new Error(`node ${nodeId} is not connected`);
    return link;
  }

  /** A token from config, or one issued by an admin and not revoked; null when neither. */
  private async admit(req: IncomingMessage): Promise<Admission | null> {
    const presented = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    if (!presented) return null;
    const p = Buffer.from(presented);
    const fromConfig = this.deps.config.nodeTokens.some((t) => {
      const b = Buffer.from(t);
      return b.length === p.length && timingSafeEqual(b, p);
    });
    if (fromConfig) return { tokenId: null, nodeId: null };
    const issued = await this.deps.nodes.findToken(presented);
    return issued ? { tokenId: issued.token_id, nodeId: issued.node_id } : null;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== AGENT_WS_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.admit(req).then(
      (admission) => {
        if (!admission) {
          this.deps.log.warn({ remote: req.socket.remoteAddress }, 'agent refused: bad node token');
          socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
          return;
        }
        this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, admission));
      },
      (err) => {
        this.deps.log.error({ err: (err as Error).message }, 'cannot check a node token');
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      },
    );
  }

  /** Cut every link that authenticated with this token, at once. */
  revokeLinks(tokenId: string): number {
    let n = 0;
    for (const [nodeId, link] of this.links) {
      if (link.tokenId !== tokenId) continue;
      this.deps.log.warn({ nodeId }, 'node token revoked; closing its link');
      link.ws.close(4001, 'node token revoked');
      link.ws.terminate();
      n++;
    }
    return n;
  }

  private onConnection(ws: WebSocket, admission: Admission): void {
    const log = this.deps.log;
    const peer = new Peer(ws, log);
    let nodeId: string | null = null;
    // Nothing but hello is accepted before hello.
    const requireHello = () => {
      if (!nodeId) throw Object.assign(new Error('send hello first'), { code: 'PROTO_NO_HELLO' });
      return nodeId;
    };
    peer.on('hello', async (hello) => {
      if (admission.nodeId && admission.nodeId !== hello.nodeId) {
        setImmediate(() => ws.close(4003, 'node token is for another node'));
        throw Object.assign(new Error(`this node token is for node ${admission.nodeId}, not ${hello.nodeId}`), { code: 'NODE_TOKEN_MISMATCH' });
      }
      nodeId = hello.nodeId;
      const old = this.links.get(nodeId);
      if (old && old.ws !== ws) old.ws.terminate();
      const link: Link = { peer, ws, capacity: hello.capacity, alive: true, tokenId: admission.tokenId };
      this.links.set(nodeId, link);
      ws.on('pong', () => (link.alive = true));
      return reply('sync', { assignments: await this.onHello(hello) });
    });
    peer.on('heartbeat', async (hb) => {
      const id = requireHello();
      // A token revoked elsewhere (the CLI, another coordinator) cuts the link at the next heartbeat.
      const link = this.links.get(id);
      if (link?.tokenId && !(await this.deps.nodes.tokenExists(link.tokenId))) {
        this.revokeLinks(link.tokenId);
        return;
      }
      const rec = await this.deps.nodes.get(id);
      if (rec) await this.deps.nodes.put({ ...rec, lastHeartbeat: new Date().toISOString(), running: hb.running, disconnectedAt: null });
    });
    peer.on('pod_status', async ({ tenant, podId, observed }) => {
      const id = requireHello();
      if (observed.nodeId !== id) throw Object.assign(new Error('report names another node'), { code: 'PROTO_BAD_PAYLOAD' });
      await this.record(tenant, podId, observed);
    });
    peer.on('pod_logs', async (l) => {
      const id = requireHello();
      await this.deps.pods.appendLogs(id, l.tenant, l.podId, l.uid, l.generation, l.chunk, l.reset, this.deps.config.logMaxBytes);
    });
    ws.on('close', () => {
      if (nodeId && this.links.get(nodeId)?.ws === ws) {
        this.links.delete(nodeId);
        log.warn({ nodeId }, 'agent disconnected');
        const id = nodeId;
        void this.deps.nodes
          .get(id)
          .then((rec) => (rec && !this.links.has(id) ? this.deps.nodes.put({ ...rec, disconnectedAt: new Date().toISOString() }) : undefined))
          .catch(() => undefined);
      }
    });
    ws.on('error', (err) => log.warn({ err: err.message, nodeId }, 'agent link error'));
  }

  private async onHello(hello: Hello): Promise<Assignment[]> {
    const { nodes, log } = this.deps;
    const now = new Date().toISOString();
    await nodes.put({
      nodeId: hello.nodeId,
      capacity: hello.capacity,
      dockerVersion: hello.dockerVersion,
      agentVersion: hello.agentVersion,
      connectedAt: now,
      lastHeartbeat: now,
      running: hello.containers.filter((c) => c.phase === 'running').length,
      disconnectedAt: null,
      ...(hello.endpoints ? { endpoints: hello.endpoints } : {}),
    });
    for (const c of hello.containers) await this.record(c.tenant, c.podId, c.observed, false);
    const assignments = await this.deps.assignmentsFor(hello.nodeId);
    log.info({ nodeId: hello.nodeId, containers: hello.containers.length, assignments: assignments.length }, 'agent connected');
    setImmediate(() => this.deps.onNodeUp(hello.nodeId));
    return assignments;
  }

  /** Store an observation and note phase changes in the pod's action log. */
  private async record(tenant: string, podId: string, observed: Observed, kick = true): Promise<void> {
    const { pods } = this.deps;
    const before = await pods.get(tenant, podId);
    if (!before) return;
    if (!(await pods.setObserved(tenant, podId, observed))) return;
    const prev = before.observed;
    if (!prev || prev.phase !== observed.phase || prev.generation !== observed.generation) {
      const detail = observed.phase === 'exited' ? ` with code ${observed.exitCode}` : observed.message ? `: ${observed.message}` : '';
      await pods.action(tenant, podId, `node ${observed.nodeId}: instance ${observed.generation} ${PHASE_LINES[observed.phase]}${detail}`);
    }
    if (kick) this.deps.onPodChange(tenant, podId);
  }

  private pingAll(): void {
    for (const [nodeId, link] of this.links) {
      if (!link.alive) {
        this.deps.log.warn({ nodeId }, 'agent missed a ping; closing its link');
        link.ws.terminate();
        continue;
      }
      link.alive = false;
      link.ws.ping();
    }
  }
}

