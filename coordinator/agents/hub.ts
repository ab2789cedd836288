import type { IncomingMessage, Server } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { hostname } from 'node:os';
import type { Duplex } from 'node:stream';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CoordinatorConfig } from '../../shared/config.js';
import type { Logger } from '../../shared/log.js';
import { Peer, PeerError, reply } from '../../shared/peer.js';
import type { Observed } from '../../shared/pod.js';
import { AGENT_WS_PATH, MAX_FRAME_BYTES, type Assignment, type Capacity, type Frame, type Hello, type MessageType, type PayloadOf, type PodRef } from '../../shared/protocol.js';
import type { NodeStore } from '../store/nodes.js';
import type { ObservedEvents, ObservedStored, PodEventType, PodStore } from '../store/pods.js';

export interface HubDeps {
  /** This coordinator run's name on node link leases (default: host, listener and a random tag). */
  instance?: string;
  config: CoordinatorConfig;
  log: Logger;
  pods: PodStore;
  nodes: NodeStore;
  /** The assignments a node should run now (its sync set). */
  assignmentsFor: (nodeId: string) => Promise<Assignment[]>;
  /** An agent's report on a pod was stored (`stored`: the pod beside it): reconcile it if that is needed. */
  onReport: (tenant: string, podId: string, observed: Observed, stored: ObservedStored) => void;
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
  /** This link's name on the node's lease in Redis ("coordinator/link"). */
  holder: string;
}

/** Who a node token says the agent is, once checked: every token is bound to one node id. */
interface Admission {
  tokenId: string | null;
  nodeId: string;
  holder: string;
}

/** Why an agent was turned away at the door, as an HTTP status line and a log line. */
class Refusal extends Error {
  constructor(readonly status: string, message: string) {
    super(message);
  }
}

/** The parts of IP:PORT (or [IPv6]:PORT), or null. */
function hostPort(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-f:]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/i.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  return port >= 1 && port <= 65535 ? { host: (m[1] ?? m[2])!, port } : null;
}

const PHASE_EVENTS: Record<Observed['phase'], PodEventType> = {
  creating: 'creating',
  running: 'started',
  exited: 'exited',
  failed: 'failed',
  removing: 'note',
  removed: 'removed',
};

const PHASE_LINES: Record<string, string> = {
  creating: 'container is being created',
  running: 'container is running',
  exited: 'container exited',
  failed: 'container failed to start',
  removing: 'container is being removed',
  removed: 'container removed',
};

/**
 * The events a report makes in the pod's list, the one that applies chosen by what it replaces
 * when it is stored: the phase it says (how it exited, why it failed), "restarted" when the
 * host started the container again in place.
 */
export function reportEvents(observed: Observed): ObservedEvents {
  const oom = observed.phase === 'exited' && observed.oomKilled;
  const detail = oom
    ? ` with code ${observed.exitCode}: it ran out of memory (over its mem_limit) and was killed`
    : observed.phase === 'exited'
      ? ` with code ${observed.exitCode}`
      : observed.message
        ? `: ${observed.message}`
        : '';
  const extra = { generation: observed.generation, node: observed.nodeId };
  const message = `node ${observed.nodeId}: instance ${observed.generation} ${PHASE_LINES[observed.phase]}${detail}`;
  const events: ObservedEvents = { changed: { type: oom ? 'oom_killed' : PHASE_EVENTS[observed.phase], message, extra } };
  if (observed.restarts) {
    // Running again after the agent started the container again in place (e.g. after its host rebooted).
    if (observed.phase === 'running') events.changedRestarted = { type: 'restarted', message, extra };
    events.restarted = { type: 'restarted', message: `node ${observed.nodeId}: instance ${observed.generation}: ${observed.message ?? 'container restarted'}`, extra };
  }
  return events;
}

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
  private stopWatching: (() => Promise<void>) | null = null;
  /** This coordinator's name on node link leases: the same across its restarts, apart from any other coordinator's. */
  private readonly instance: string;
  private serial = 0;
  private readonly networks = new BlockList();

  constructor(private readonly deps: HubDeps) {
    this.instance = deps.instance ?? `${hostname()}:${deps.config.listenHost}:${deps.config.listenPort}/${randomBytes(4).toString('hex')}`;
    for (const cidr of deps.config.nodeNetworks) {
      const [net, bits] = cidr.split('/') as [string, string];
      this.networks.addSubnet(net, Number(bits), isIP(net) === 6 ? 'ipv6' : 'ipv4');
    }
  }

  /** A link's lease lapses when its coordinator has not renewed it for three pings. */
  private get leaseMs(): number {
    return 3 * this.deps.config.agentPingMs;
  }

  attach(server: Server): void {
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.pingTimer = setInterval(() => this.pingAll(), this.deps.config.agentPingMs);
    this.pingTimer.unref();
    // A token revoked through any coordinator (or the CLI) cuts its links here at once.
    this.deps.nodes.watchRevocations((tokenId) => this.revokeLinks(tokenId)).then(
      (stop) => (this.stopWatching = stop),
      (err) => this.deps.log.error({ err: (err as Error).message }, 'cannot watch node token revocations'),
    );
  }

  isConnected(nodeId: string): boolean {
    return this.links.get(nodeId)?.peer.open ?? false;
  }

  connected(): Array<{ nodeId: string; capacity: Capacity }> {
    return [...this.links].filter(([, l]) => l.peer.open).map(([nodeId, l]) => ({ nodeId, capacity: l.capacity }));
  }

  /**
   * Tell a node to run a pod's instance. A notice: the agent answers only when it cannot take it
   * (that error is logged); a command that goes undelivered is sent again by the reconciler
   * after its backoff, and a node that reconnects is told all it should run.
   */
  async apply(nodeId: string, assignment: Assignment): Promise<void> {
    this.linkOf(nodeId).peer.notify('apply', { assignment });
  }

  /** Tell a node to remove a pod's instance (a notice, as apply). */
  async remove(nodeId: string, ref: PodRef): Promise<void> {
    this.linkOf(nodeId).peer.notify('remove', ref);
  }

  /** A request to a connected node's agent (storage, exec); rejects with PeerError. */
  request<T extends MessageType>(nodeId: string, type: T, payload: PayloadOf<T>, timeoutMs?: number): Promise<Frame> {
    const link = this.links.get(nodeId);
    if (!link || !link.peer.open) return Promise.reject(new PeerError('PEER_CLOSED', `node ${nodeId} is not connected`));
    return link.peer.request(type, payload, timeoutMs);
  }

  close(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    void this.stopWatching?.();
    for (const l of this.links.values()) l.ws.terminate();
    this.wss.close();
  }

  private linkOf(nodeId: string): Link {
    const link = this.links.get(nodeId);
    if (!link || !link.peer.open) throw new Error(`node ${nodeId} is not connected`);
    return link;
  }

  /**
   * Let an agent in: a token from config or one issued by an admin and not revoked, each
   * bound to one node id, and no live link for that node here or on another coordinator.
   */
  private async admit(req: IncomingMessage): Promise<Admission> {
    const presented = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    if (!presented) throw new Refusal('401 Unauthorized', 'no node token');
    const p = Buffer.from(presented);
    const fromConfig = this.deps.config.nodeTokens.find((t) => {
      const b = Buffer.from(t.token);
      return b.length === p.length && timingSafeEqual(b, p);
    });
    let tokenId: string | null = null;
    let nodeId: string;
    if (fromConfig) {
      nodeId = fromConfig.nodeId;
    } else {
      const issued = await this.deps.nodes.findToken(presented);
      if (!issued) throw new Refusal('401 Unauthorized', 'bad node token');
      if (!issued.node_id) throw new Refusal('401 Unauthorized', `node token ${issued.token_id} is bound to no node; issue one for the node`);
      tokenId = issued.token_id;
      nodeId = issued.node_id;
    }
    const local = this.links.get(nodeId);
    if (local?.peer.open) {
      this.checkAlive(nodeId, local);
      throw new Refusal('409 Conflict', `node ${nodeId} is already connected here`);
    }
    const holder = `${this.instance}/${++this.serial}`;
    const other = await this.deps.nodes.leaseLink(nodeId, holder, this.leaseMs, true);
    if (other) throw new Refusal('409 Conflict', `node ${nodeId} is already connected (${other})`);
    return { tokenId, nodeId, holder };
  }

  /** A second agent says it is a node that has a link: make sure the first one still answers. */
  private checkAlive(nodeId: string, link: Link): void {
    link.alive = false;
    link.ws.ping();
    setTimeout(() => {
      if (!link.alive && this.links.get(nodeId) === link) {
        this.deps.log.warn({ nodeId }, 'agent did not answer a ping; closing its link');
        link.ws.terminate();
      }
    }, Math.min(2000, this.deps.config.agentPingMs)).unref();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== AGENT_WS_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.admit(req).then(
      (admission) => this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, admission)),
      (err) => {
        const status = err instanceof Refusal ? err.status : '503 Service Unavailable';
        this.deps.log.warn({ remote: req.socket.remoteAddress, err: (err as Error).message }, 'agent refused');
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
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
    const refuse = (code: number, message: string) => {
      log.warn({ nodeId: admission.nodeId, err: message }, 'agent hello refused');
      setImmediate(() => ws.close(code, message.slice(0, 120)));
      return Object.assign(new Error(message), { code: 'PROTO_BAD_PAYLOAD' });
    };
    peer.on('hello', async (hello) => {
      if (nodeId) throw refuse(4002, 'hello was already said on this link');
      if (admission.nodeId !== hello.nodeId) throw refuse(4003, `this node token is for node ${admission.nodeId}, not ${hello.nodeId}`);
      const bad = hello.endpoints && this.badEndpoints(hello.endpoints);
      if (bad) throw refuse(4004, bad);
      if (this.links.get(hello.nodeId)?.peer.open) throw refuse(4009, `node ${hello.nodeId} is already connected here`);
      nodeId = hello.nodeId;
      const link: Link = { peer, ws, capacity: await this.capped(nodeId, hello.capacity), alive: true, tokenId: admission.tokenId, holder: admission.holder };
      this.links.set(nodeId, link);
      ws.on('pong', () => {
        link.alive = true;
        void this.renew(nodeId!, link);
      });
      return reply('sync', { assignments: await this.onHello(hello, link.capacity) });
    });
    peer.on('heartbeat', async (hb) => {
      const id = requireHello();
      // A token revoked elsewhere (the CLI, another coordinator) cuts the link at the next heartbeat.
      const link = this.links.get(id);
      if (link?.tokenId && !(await this.deps.nodes.tokenExists(link.tokenId))) {
        this.revokeLinks(link.tokenId);
        return;
      }
      if (!link || !(await this.renew(id, link))) return;
      // Limits a site admin changed take effect by the next heartbeat.
      const rec = await this.deps.nodes.get(id);
      if (rec) link.capacity = await this.capped(id, rec.reported ?? rec.capacity);
      if (rec) await this.deps.nodes.put({ ...rec, capacity: link.capacity, lastHeartbeat: new Date().toISOString(), running: hb.running, disconnectedAt: null });
    });
    peer.on('pod_status', async ({ tenant, podId, observed }) => {
      const id = requireHello();
      if (observed.nodeId !== id) throw Object.assign(new Error('report names another node'), { code: 'PROTO_BAD_PAYLOAD' });
      await this.record(tenant, podId, observed);
    });
    peer.on('pod_logs', async (l) => {
      const id = requireHello();
      await this.deps.pods.appendLogs(id, l, { chunk: l.chunk, reset: l.reset, ...(l.key ? { key: l.key } : {}) }, this.deps.config.logMaxBytes);
    });
    ws.on('close', () => {
      void this.deps.nodes.releaseLink(admission.nodeId, admission.holder).catch(() => undefined);
      if (nodeId && this.links.get(nodeId)?.ws === ws) {
        this.links.delete(nodeId);
        log.warn({ nodeId }, 'agent disconnected');
        const id = nodeId;
        void this.deps.nodes
          .get(id)
          .then(async (rec) => {
            if (!rec || this.links.has(id)) return;
            await this.deps.nodes.put({ ...rec, disconnectedAt: new Date().toISOString() });
            await this.deps.nodes.announceLink(id);
          })
          .catch(() => undefined);
      }
    });
    ws.on('error', (err) => log.warn({ err: err.message, nodeId }, 'agent link error'));
  }

  /** What a node may be given: what it reports, within its own limits or the site's ceiling. */
  private async capped(nodeId: string, reported: Capacity): Promise<Capacity> {
    const { config, nodes } = this.deps;
    const admin = await nodes.admin(nodeId);
    return {
      cpuMilli: Math.min(reported.cpuMilli, admin.max_cpu_milli ?? config.nodeMaxCpuMilli),
      memoryMb: Math.min(reported.memoryMb, admin.max_memory_mb ?? config.nodeMaxMemoryMb),
    };
  }

  /** Why the edge may not route to these endpoints (not IP:PORT in the site's networks), or null. */
  private badEndpoints(ep: { http: string; tls: string; tcpHost: string }): string | null {
    for (const [name, value] of [['http', ep.http], ['tls', ep.tls], ['tcpHost', `${ep.tcpHost}:1`]] as const) {
      const hp = hostPort(value);
      if (!hp) return `endpoint ${name} "${value.slice(0, 64)}" is not an IP address and port`;
      if (!this.networks.check(hp.host, isIP(hp.host) === 6 ? 'ipv6' : 'ipv4')) return `endpoint ${name} ${hp.host} is outside PODS_NODE_NETWORKS`;
    }
    return null;
  }

  /** Keep holding the node's lease; a link that lost it (another coordinator has the node) is closed. */
  private async renew(nodeId: string, link: Link): Promise<boolean> {
    try {
      const other = await this.deps.nodes.leaseLink(nodeId, link.holder, this.leaseMs, false);
      if (!other) return true;
      this.deps.log.warn({ nodeId, other }, 'lost the lease on this node link; closing it');
      link.ws.close(4009, 'another link speaks for this node');
      return false;
    } catch {
      return true; // Redis away: keep the link; the lease is checked again at the next ping.
    }
  }

  private async onHello(hello: Hello, capacity: Capacity): Promise<Assignment[]> {
    const { nodes, log } = this.deps;
    const now = new Date().toISOString();
    await nodes.put({
      nodeId: hello.nodeId,
      capacity,
      reported: hello.capacity,
      dockerVersion: hello.dockerVersion,
      agentVersion: hello.agentVersion,
      connectedAt: now,
      lastHeartbeat: now,
      running: hello.containers.filter((c) => c.phase === 'running').length,
      disconnectedAt: null,
      ...(hello.endpoints ? { endpoints: hello.endpoints } : {}),
    });
    // The other coordinators see the node at once (their scheduler, their answers), not at their next read of the records.
    void nodes.announceLink(hello.nodeId).catch(() => undefined);
    // One pipelined batch: each container is another pod, so their order does not matter.
    await Promise.all(hello.containers.map((c) => this.record(c.tenant, c.podId, c.observed, false)));
    // Each with the key of the output the coordinator holds, so the agent sends only what is newer.
    const assignments = await Promise.all(
      (await this.deps.assignmentsFor(hello.nodeId)).map(async (a) => {
        const logSince = await this.deps.pods.logKey(a.tenant, a.podId);
        return logSince ? { ...a, logSince } : a;
      }),
    );
    log.info({ nodeId: hello.nodeId, containers: hello.containers.length, assignments: assignments.length }, 'agent connected');
    setImmediate(() => this.deps.onNodeUp(hello.nodeId));
    return assignments;
  }

  /** Store an observation, with its event in the pod's list when it changes the phase (see reportEvents). */
  private async record(tenant: string, podId: string, observed: Observed, report = true): Promise<void> {
    const stored = await this.deps.pods.setObserved(tenant, podId, observed, reportEvents(observed));
    if (stored !== 'stale' && report) this.deps.onReport(tenant, podId, observed, stored);
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

