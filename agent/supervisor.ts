import type { Readable } from 'node:stream';
import type { AgentConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { podKey, type Health, type Observed, type Phase } from '../shared/pod.js';
import type { Assignment, Hello, PodLogs, PodRef } from '../shared/protocol.js';
import type { CaddyClient, PodRoute, TcpRoute } from './caddy.js';
import { restartBackoffMs, runCheck } from './health.js';
import { LogShipper } from './log-shipper.js';
import { LogBudget } from './log-budget.js';
import { tcpProbe, waitForPort } from './probe.js';
import type { Bind, PodContainer, Runtime } from './runtime/docker.js';

export interface Reporter {
  /** Send an observation; false when the link is down (hello on reconnect carries it then). */
  status(tenant: string, podId: string, observed: Observed): boolean;
  logs(msg: PodLogs): boolean;
}

interface Managed {
  a: Assignment;
  container: PodContainer;
  /** Its output on the way to the coordinator. */
  logs: LogShipper;
  /** The next liveness check, when the pod has one. */
  liveTimer: NodeJS.Timeout | null;
  /** Containers restarted for failing liveness, this instance. */
  restarts: number;
  follower: Readable | null;
  probeTimer: NodeJS.Timeout | null;
  health: Health;
  removing: boolean;
}

const LOG_FLUSH_MS = 200;
const LOG_PIECE_BYTES = 256 * 1024;
const FIRST_PROBE_DEADLINE_MS = 30_000;

const keyOf = (x: { tenant: string; podId: string }) => podKey(x.tenant, x.podId);

export function routeId(tenant: string, podId: string, name: string): string {
  return `pod-${tenant}-${podId}-${name}`;
}

/**
 * Runs this host's share of pods: makes the containers the coordinator asks for,
 * removes what it no longer wants, follows logs and health, and keeps Caddy's routes
 * in step. Work on one pod is serialized; different pods proceed in parallel.
 */
export class Supervisor {
  private readonly managed = new Map<string, Managed>();
  private readonly queues = new Map<string, Promise<void>>();
  private stopped = false;
  private eventsStream: Readable | null = null;
  private caddyTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: {
      config: AgentConfig;
      runtime: Runtime;
      caddy: CaddyClient;
      log: Logger;
      reporter: Reporter;
      /** Host paths for a pod's mounts (its data directory, volumes), made ready before its container. */
      binds?: (a: Assignment) => Promise<Bind[]>;
      /** The host's pod isolation: why no pod may start now (null: they may), and a way to put it in effect again. */
      isolation?: { readonly refusal: string | null; apply(): Promise<void> };
    },
  ) {}

  /** The running container of this pod instance, and the user it runs as; null when there is none. */
  running(ref: PodRef): { containerId: string; user: string } | null {
    const m = this.managed.get(keyOf(ref));
    if (!m || m.removing || m.a.uid !== ref.uid || m.container.state !== 'running') return null;
    return { containerId: m.container.id, user: m.a.spec.user ?? this.deps.config.containerUser };
  }

  start(): void {
    void this.watchEvents();
    this.caddyTimer = setInterval(() => void this.checkCaddy(), this.deps.config.caddyCheckMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.caddyTimer) clearInterval(this.caddyTimer);
    this.eventsStream?.destroy();
    for (const m of this.managed.values()) this.detach(m);
  }

  /** Every labelled container, as hello reports them. */
  async inventory(): Promise<Hello['containers']> {
    const out: Hello['containers'] = [];
    for (const c of await this.deps.runtime.list()) {
      const phase: Phase = c.state === 'running' ? 'running' : c.state === 'exited' ? 'exited' : c.state === 'created' ? 'creating' : 'removing';
      const m = this.managed.get(keyOf(c));
      const health = m && m.container.id === c.id ? m.health : 'unknown';
      out.push({ tenant: c.tenant, podId: c.podId, uid: c.uid, generation: c.generation, phase, observed: this.observed(c, phase, { health }) });
    }
    return out;
  }

  apply(a: Assignment): Promise<void> {
    return this.enqueue(keyOf(a), () => this.ensure(a));
  }

  remove(ref: PodRef): Promise<void> {
    return this.enqueue(keyOf(ref), () => this.removePod(ref));
  }

  /** The full set this node should run: remove everything else, ensure the rest, then re-sync Caddy. */
  async sync(assignments: Assignment[]): Promise<void> {
    const want = new Map(assignments.map((a) => [keyOf(a), a]));
    const work: Promise<void>[] = [];
    for (const c of await this.deps.runtime.list()) {
      const a = want.get(keyOf(c));
      if (!a || a.uid !== c.uid) work.push(this.enqueue(keyOf(c), () => this.destroy(c, 'no longer assigned to this node')));
    }
    for (const a of assignments) work.push(this.apply(a));
    await Promise.allSettled(work);
    // After a reconnect: send again whatever output the coordinator does not have.
    for (const [key, m] of this.managed) m.logs.resendAfter(want.get(key)?.logSince);
    await this.resyncCaddy();
  }

  private enqueue(key: string, job: () => Promise<void>): Promise<void> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const next = prev.then(job).catch((err) => this.deps.log.error({ err, pod: key }, 'pod job failed'));
    this.queues.set(key, next);
    void next.finally(() => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    });
    return next;
  }

  private observed(c: Pick<PodContainer, 'uid' | 'generation'> & Partial<PodContainer>, phase: Phase, extra: Partial<Observed> = {}): Observed {
    return {
      nodeId: this.deps.config.nodeId,
      uid: c.uid,
      generation: c.generation,
      phase,
      ...(c.id ? { containerId: c.id } : {}),
      ...(c.startedAt ? { startedAt: c.startedAt } : {}),
      ...(c.finishedAt && phase === 'exited' ? { finishedAt: c.finishedAt } : {}),
      ...(c.exitCode !== undefined && phase === 'exited' ? { exitCode: c.exitCode } : {}),
      ...(c.oomKilled && phase === 'exited' ? { oomKilled: true } : {}),
      health: 'unknown',
      hostPorts: c.hostPorts ?? {},
      at: new Date().toISOString(),
      ...extra,
    };
  }

  private report(tenant: string, podId: string, observed: Observed): void {
    this.deps.reporter.status(tenant, podId, observed);
  }

  private async ensure(a: Assignment): Promise<void> {
    const { runtime, log } = this.deps;
    const key = keyOf(a);
    // Only this pod's containers: listing (and inspecting) all of them per pod made a sync of N pods cost N^2 calls.
    const mine = await runtime.list({ tenant: a.tenant, podId: a.podId });
    if (mine.some((c) => c.uid === a.uid && c.generation > a.generation)) {
      log.info({ pod: key, generation: a.generation }, 'ignoring a stale command');
      return;
    }
    for (const c of mine) {
      if (c.uid !== a.uid || c.generation !== a.generation) await this.destroy(c, `replaced by instance ${a.generation}`);
    }
    const current = mine.find((c) => c.uid === a.uid && c.generation === a.generation);
    const m = this.managed.get(key);
    if (current && m && m.container.id === current.id && !m.removing) {
      m.a = a; // already running this instance: a repeated command
      return;
    }
    if (current?.state === 'exited') {
      this.report(a.tenant, a.podId, this.observed(current, 'exited'));
      return;
    }
    let c: PodContainer;
    let fresh = false;
    try {
      if (current && (current.state === 'running' || current.state === 'created')) {
        c = current.state === 'created' ? await runtime.start(current.id) : current;
      } else {
        fresh = true;
        const refusal = this.deps.isolation?.refusal;
        if (refusal) throw new Error(refusal);
        this.report(a.tenant, a.podId, this.observed({ uid: a.uid, generation: a.generation }, 'creating'));
        const t0 = performance.now();
        const binds = a.spec.mounts.length ? await this.bindsOf(a) : [];
        c = await runtime.createAndStart(a, binds);
        log.debug({ pod: key, ms: Math.round(performance.now() - t0) }, 'container created and started');
      }
    } catch (err) {
      log.warn({ pod: key, err: (err as Error).message }, 'could not start pod');
      this.report(a.tenant, a.podId, this.observed({ uid: a.uid, generation: a.generation }, 'failed', { message: (err as Error).message }));
      return;
    }
    await this.attach(a, c, fresh);
  }

  private async bindsOf(a: Assignment): Promise<Bind[]> {
    if (!this.deps.binds) throw new Error('this agent keeps no storage, and the pod mounts some');
    return this.deps.binds(a);
  }

  /**
   * Take charge of a running container: logs, routes, readiness, the template's init commands
   * (only for a container made just now, never for one adopted after a restart), then report it running.
   */
  private async attach(a: Assignment, c: PodContainer, fresh = false): Promise<void> {
    const key = keyOf(a);
    const old = this.managed.get(key);
    if (old) this.detach(old);
    const m: Managed = {
      a, container: c, logs: this.logShipper(a, a.logSince), follower: null, probeTimer: null, health: 'unknown', removing: false, liveTimer: null, restarts: 0,
    };
    this.managed.set(key, m);
    void this.followLogs(m);
    // With startup or readiness checks, the pod is routed and RUNNING only once they pass.
    const hc = a.spec.healthchecks;
    if (hc?.startup || hc?.readiness) {
      const failed = await this.gate(m);
      if (failed === 'gone') return;
      if (failed) {
        this.report(a.tenant, a.podId, this.observed(c, 'failed', { message: failed }));
        return;
      }
    }
    let message: string | undefined;
    const { http, tcp } = this.routesOf(m);
    const writes = [...http.map((r) => ({ r, write: () => this.deps.caddy.upsertRoute(r) })), ...tcp.map((r) => ({ r, write: () => this.deps.caddy.upsertTcpRoute(r) }))];
    for (const { r: route, write } of writes) {
      try {
        if ((await write()) === 'base-missing') await this.resyncCaddy();
      } catch (err) {
        if ((err as { code?: string }).code === 'CADDY_UNREACHABLE') {
          // The write may have been dropped mid-way: a whole, repeatable load puts every route in place.
          await this.resyncCaddy();
          continue;
        }
        message = `route ${route.id} not installed: ${(err as Error).message}`;
        this.deps.log.warn({ pod: key, err: (err as Error).message }, 'route not installed');
      }
    }
    const probePort = this.probePort(m);
    if (probePort) {
      const t0 = performance.now();
      const up = await waitForPort(this.deps.config.publishHost, probePort, FIRST_PROBE_DEADLINE_MS);
      m.health = up ? 'healthy' : 'unhealthy';
      this.deps.log.debug({ pod: key, ms: Math.round(performance.now() - t0), up }, 'first probe');
    }
    if (a.spec.readiness) m.health = (await this.waitReady(c.id, a.spec.readiness.exec)) ? 'healthy' : 'unhealthy';
    if (fresh && a.spec.init && m.health === 'healthy') {
      for (const cmd of a.spec.init) {
        const r = await this.deps.runtime.exec(c.id, cmd).catch((err: Error) => ({ exitCode: -1, output: err.message }));
        if (r.exitCode !== 0) {
          // The command line may hold secrets: say which step failed, not its arguments.
          this.report(a.tenant, a.podId, this.observed(c, 'failed', { message: `init step ${a.spec.init.indexOf(cmd) + 1} (${cmd[0]}) failed with exit code ${r.exitCode}: ${r.output.trim().slice(-300)}` }));
          return;
        }
      }
    }
    if (this.managed.get(key) !== m || m.removing) return;
    const now = (await this.deps.runtime.inspect(c.id)) ?? c;
    if (now.state === 'exited') {
      this.report(a.tenant, a.podId, this.observed(now, 'exited'));
      return;
    }
    m.container = now;
    this.report(a.tenant, a.podId, this.observed(now, 'running', { health: m.health, ...(message ? { message } : {}) }));
    if (probePort) m.probeTimer = setInterval(() => void this.probe(m, probePort), this.deps.config.probeIntervalMs);
    this.scheduleLiveness(m, (hc?.liveness?.initial_delay_seconds ?? 0) * 1000);
  }

  private checkTarget(m: Managed) {
    return {
      host: this.deps.config.publishHost,
      hostPort: (port: number) => {
        const p = m.a.spec.ports.find((x) => x.port === port);
        return p ? m.container.hostPorts[p.name] : undefined;
      },
      exec: (cmd: string[], timeoutMs: number) => this.deps.runtime.exec(m.container.id, cmd, timeoutMs),
    };
  }

  /**
   * Wait for the startup check (if any) and then the readiness check to pass. While readiness
   * fails the pod stays CREATING, saying why. Answers why it cannot start (startup failed its
   * failure_threshold tries), 'gone' when the pod was taken away meanwhile, or null.
   */
  private async gate(m: Managed): Promise<string | 'gone' | null> {
    const hc = m.a.spec.healthchecks!;
    const here = () => this.managed.get(keyOf(m.a)) === m && !m.removing;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    if (hc.startup) {
      await sleep(hc.startup.initial_delay_seconds * 1000);
      let why: string | null = 'not run';
      for (let i = 0; i < hc.startup.failure_threshold && here(); i++) {
        if (i > 0) await sleep(hc.startup.period_seconds * 1000);
        why = await runCheck(hc.startup, this.checkTarget(m));
        if (!why) break;
      }
      if (!here()) return 'gone';
      if (why) return `startup check failed ${hc.startup.failure_threshold} times: ${why}`;
    }
    if (hc.readiness) {
      await sleep(hc.readiness.initial_delay_seconds * 1000);
      let said = '';
      for (;;) {
        if (!here()) return 'gone';
        const why = await runCheck(hc.readiness, this.checkTarget(m));
        if (!why) break;
        if (why !== said) {
          said = why;
          this.report(m.a.tenant, m.a.podId, this.observed(m.container, 'creating', { message: `waiting for the readiness check: ${why}` }));
        }
        await sleep(hc.readiness.period_seconds * 1000);
      }
    }
    return null;
  }

  /** The next liveness round in `delayMs`; failure_threshold failures in a row restart the container. */
  private scheduleLiveness(m: Managed, delayMs: number, failures = 0): void {
    const check = m.a.spec.healthchecks?.liveness;
    if (!check) return;
    m.liveTimer = setTimeout(() => {
      m.liveTimer = null;
      void (async () => {
        if (this.managed.get(keyOf(m.a)) !== m || m.removing || m.container.state !== 'running') return;
        const why = await runCheck(check, this.checkTarget(m));
        if (!why) return this.scheduleLiveness(m, check.period_seconds * 1000);
        if (failures + 1 < check.failure_threshold) return this.scheduleLiveness(m, check.period_seconds * 1000, failures + 1);
        await this.enqueue(keyOf(m.a), () => this.restartForLiveness(m, `liveness check failed ${check.failure_threshold} times: ${why}`));
      })();
    }, delayMs);
  }

  /** Restart the container in place (same instance), follow it again, and back off before checking again. */
  private async restartForLiveness(m: Managed, why: string): Promise<void> {
    if (this.managed.get(keyOf(m.a)) !== m || m.removing) return;
    m.restarts++;
    this.deps.log.warn({ pod: keyOf(m.a), restarts: m.restarts, why }, 'restarting a container that failed its liveness check');
    let info: PodContainer;
    try {
      info = await this.deps.runtime.restart(m.container.id);
    } catch (err) {
      this.report(m.a.tenant, m.a.podId, this.observed(m.container, 'failed', { message: `${why}; the restart failed: ${(err as Error).message}` }));
      return;
    }
    await this.reattach(m, info, { message: `${why}; restarted (${m.restarts})`, restarts: m.restarts });
    const check = m.a.spec.healthchecks!.liveness!;
    this.scheduleLiveness(m, restartBackoffMs(m.restarts) + check.initial_delay_seconds * 1000);
  }

  /** Follow a container again after it restarted: logs after what was shipped, routes to its (maybe new) ports. */
  private async reattach(m: Managed, info: PodContainer, extra: Partial<Observed> = {}): Promise<void> {
    this.detach(m);
    m.container = info;
    void this.followLogs(m);
    const { http, tcp } = this.routesOf(m);
    for (const r of http) await this.deps.caddy.upsertRoute(r).catch(() => undefined);
    for (const r of tcp) await this.deps.caddy.upsertTcpRoute(r).catch(() => undefined);
    this.report(m.a.tenant, m.a.podId, this.observed(info, 'running', { health: m.health, ...extra }));
    const probePort = this.probePort(m);
    if (probePort) m.probeTimer = setInterval(() => void this.probe(m, probePort), this.deps.config.probeIntervalMs);
  }

  /** Run the readiness command until it exits 0 or the deadline passes. */
  private async waitReady(id: string, cmd: string[]): Promise<boolean> {
    const end = Date.now() + FIRST_PROBE_DEADLINE_MS * 2;
    while (Date.now() < end) {
      const r = await this.deps.runtime.exec(id, cmd, 5_000).catch(() => null);
      if (r?.exitCode === 0) return true;
      const info = await this.deps.runtime.inspect(id);
      if (!info || info.state !== 'running') return false;
      await new Promise((res) => setTimeout(res, 250));
    }
    return false;
  }

  private probePort(m: Managed): number | undefined {
    const first = m.a.spec.ports.find((p) => p.protocol !== 'local_only' && m.container.hostPorts[p.name]);
    return first ? m.container.hostPorts[first.name] : undefined;
  }

  private async probe(m: Managed, port: number): Promise<void> {
    const health: Health = (await tcpProbe(this.deps.config.publishHost, port)) ? 'healthy' : 'unhealthy';
    if (health === m.health || m.removing || this.managed.get(keyOf(m.a)) !== m) return;
    m.health = health;
    this.report(m.a.tenant, m.a.podId, this.observed(m.container, 'running', { health }));
  }

  /** Caddy routes of a pod: HTTP by Host; TCP by SNI on the shared TLS port, or on a dedicated port. */
  routesOf(m: Managed): { http: PodRoute[]; tcp: TcpRoute[] } {
    const http: PodRoute[] = [];
    const tcp: TcpRoute[] = [];
    for (const p of m.a.spec.ports) {
      const hostPort = m.container.hostPorts[p.name];
      if (!hostPort || p.protocol === 'local_only') continue;
      const id = routeId(m.a.tenant, m.a.podId, p.name);
      const upstream = `${this.deps.config.publishHost}:${hostPort}`;
      const ipAllow = p.access?.ipAllow?.length ? { ipAllow: [...p.access.ipAllow, ...this.deps.config.edgeSourceNetworks] } : {};
      if (p.protocol === 'http') http.push({ id, host: p.host, upstream, ...(p.access ? { access: p.access } : {}) });
      else if (p.dedicatedPort) tcp.push({ kind: 'port', id, listen: `${this.deps.config.tcpListenHost}:${p.dedicatedPort}`, upstream, ...ipAllow });
      else tcp.push({ kind: 'sni', id, host: p.host, upstream, protocol: p.protocol, ...ipAllow });
    }
    return { http, tcp };
  }

  private routeIds(m: Managed): string[] {
    const { http, tcp } = this.routesOf(m);
    return [...http, ...tcp].map((r) => r.id);
  }

  private async resyncCaddy(): Promise<void> {
    const live = [...this.managed.values()].filter((m) => !m.removing).map((m) => this.routesOf(m));
    try {
      const r = await this.deps.caddy.resync(live.flatMap((x) => x.http), live.flatMap((x) => x.tcp));
      for (const bad of r.refused) this.deps.log.warn({ route: bad.id, err: bad.message }, 'route refused; the others are served');
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'caddy resync failed; will retry');
    }
  }

  /** A restarted Caddy comes back empty: put every route back. */
  private async checkCaddy(): Promise<void> {
    try {
      if (!(await this.deps.caddy.isConfigured())) {
        this.deps.log.info('caddy has lost its config; re-syncing routes');
        await this.resyncCaddy();
      }
    } catch (err) {
      this.deps.log.debug({ err: (err as Error).message }, 'caddy not reachable');
    }
  }

  private async removePod(ref: PodRef): Promise<void> {
    const mine = (await this.deps.runtime.list()).filter((c) => keyOf(c) === keyOf(ref) && c.uid === ref.uid && c.generation <= ref.generation);
    for (const c of mine) await this.destroy(c, 'stop requested');
    // Say so even when nothing was there, so the coordinator can move on.
    if (!mine.some((c) => c.generation === ref.generation)) this.report(ref.tenant, ref.podId, this.observed(ref, 'removed'));
  }

  private async destroy(c: PodContainer, why: string): Promise<void> {
    const key = keyOf(c);
    const m = this.managed.get(key);
    const ours = m && m.container.id === c.id ? m : null;
    if (ours) {
      ours.removing = true;
      this.report(c.tenant, c.podId, this.observed(c, 'removing'));
      this.detach(ours);
      for (const id of this.routeIds(ours)) await this.deps.caddy.removeRoute(id).catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'route removal failed'));
      this.managed.delete(key);
    }
    this.deps.log.info({ pod: key, container: c.id.slice(0, 12), why }, 'removing container');
    await this.deps.runtime.remove(c.id);
    this.report(c.tenant, c.podId, this.observed(c, 'removed'));
  }

  private detach(m: Managed): void {
    if (m.probeTimer) clearInterval(m.probeTimer);
    m.probeTimer = null;
    if (m.liveTimer) clearTimeout(m.liveTimer);
    m.liveTimer = null;
    m.follower?.destroy();
    m.follower = null;
    m.logs.stop();
  }

  private async followLogs(m: Managed): Promise<void> {
    try {
      const stream = await this.deps.runtime.follow(m.container.id, m.logs.followSince);
      if (this.managed.get(keyOf(m.a)) !== m) return void stream.destroy();
      m.follower = stream;
      stream.setEncoding('utf8');
      stream.on('data', (raw: string) => m.logs.push(raw));
      stream.on('error', () => undefined);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'cannot follow logs');
    }
  }

  /** The shipper of one instance's output; `since`: the key the coordinator already holds. */
  private logShipper(a: Assignment, since: string | undefined): LogShipper {
    const rate = this.deps.config.logRateBytes;
    const ref = { tenant: a.tenant, podId: a.podId, uid: a.uid, generation: a.generation };
    return new LogShipper({
      send: (piece) => this.deps.reporter.logs({ ...ref, ...piece }),
      // A container's earlier output (up to the backlog's size) may be read at once when following starts.
      budget: new LogBudget(rate, rate * 4, this.deps.config.logRingBytes),
      pieceBytes: LOG_PIECE_BYTES,
      backlogBytes: this.deps.config.logRingBytes,
      flushMs: LOG_FLUSH_MS,
      ...(since ? { since } : {}),
    });
  }

  private async watchEvents(): Promise<void> {
    let lost = false;
    while (!this.stopped) {
      try {
        const stream = await this.deps.runtime.events();
        this.eventsStream = stream;
        // dockerd went away and came back: look at every pod again (its log stream broke with it).
        if (lost) this.recheckAll();
        lost = true;
        let buf = '';
        stream.on('data', (chunk: Buffer) => {
          buf += chunk.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            try {
              void this.onEvent(JSON.parse(line) as { Action?: string; status?: string; id?: string });
            } catch {
              /* not an event */
            }
          }
        });
        await new Promise<void>((resolve) => {
          stream.once('end', resolve);
          stream.once('close', resolve);
          stream.once('error', resolve);
        });
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'docker events unavailable; retrying');
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** A pod's container vanished: drop it, its routes, and tell the coordinator (which makes a new one). */
  private async forget(m: Managed, why: string): Promise<void> {
    this.detach(m);
    this.managed.delete(keyOf(m.a));
    for (const id of this.routeIds(m)) await this.deps.caddy.removeRoute(id).catch(() => undefined);
    this.report(m.a.tenant, m.a.podId, this.observed(m.container, 'removed', { message: why }));
  }

  /**
   * After dockerd restarted: a container it stopped (no --live-restore) is started again, one it
   * kept is followed again, one that is gone is reported removed (the coordinator re-creates it).
   */
  private recheckAll(): void {
    this.deps.log.info({ pods: this.managed.size }, 'docker is back; checking every pod');
    // dockerd rewrites its own chains when it starts; ours are put first again.
    void this.deps.isolation?.apply();
    for (const m of this.managed.values()) {
      const key = keyOf(m.a);
      void this.enqueue(key, async () => {
        if (this.managed.get(key) !== m || m.removing) return;
        let info = await this.deps.runtime.inspect(m.container.id);
        if (!info) return this.forget(m, 'container was gone after dockerd restarted');
        if (info.state !== 'running') {
          try {
            info = await this.deps.runtime.start(info.id);
          } catch (err) {
            this.report(m.a.tenant, m.a.podId, this.observed(info, 'failed', { message: `could not restart after dockerd restarted: ${(err as Error).message}` }));
            return;
          }
        }
        // Published ports can change across a restart; the log is followed again after what was shipped.
        await this.reattach(m, info);
        this.scheduleLiveness(m, (m.a.spec.healthchecks?.liveness?.initial_delay_seconds ?? 0) * 1000);
      });
    }
  }

  private async onEvent(ev: { Action?: string; status?: string; id?: string }): Promise<void> {
    const action = ev.Action ?? ev.status;
    if (!ev.id || (action !== 'die' && action !== 'destroy')) return;
    const m = [...this.managed.values()].find((x) => x.container.id === ev.id);
    if (!m || m.removing) return;
    const key = keyOf(m.a);
    await this.enqueue(key, async () => {
      if (this.managed.get(key) !== m || m.removing) return;
      const info = await this.deps.runtime.inspect(m.container.id);
      if (!info) return this.forget(m, 'container was removed outside the service');
      if (info.state === 'exited') {
        if (m.probeTimer) clearInterval(m.probeTimer);
        m.probeTimer = null;
        m.container = info;
        this.report(m.a.tenant, m.a.podId, this.observed(info, 'exited'));
      }
    });
  }
}
