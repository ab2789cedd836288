import type { AgentConfig } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { podKey, type Observed, type Phase } from '../shared/pod.js';
import type { Assignment, Hello, PodLogs, PodRef } from '../shared/protocol.js';
import type { CaddyClient } from './caddy.js';
import { stoppedWithEngine } from './engine-stop.js';
import { EngineWatch } from './engine-watch.js';
import { restartBackoffMs } from './health.js';
import { HealthWatch } from './health-watch.js';
import { observation, phaseOf, type ReportedContainer } from './observation.js';
import { PodOutput } from './pod-output.js';
import { PodQueue } from './pod-queue.js';
import { podRoutes, RouteTable } from './route-table.js';
import type { Bind, ContainerEvent, PodContainer, Runtime } from './runtime/runtime.js';

export interface Reporter {
  /** Send an observation; false when the link is down (hello on reconnect carries it then). */
  status(tenant: string, podId: string, observed: Observed): boolean;
  logs(msg: PodLogs): boolean;
}

/** A pod instance this host runs: what it was assigned, its container, and what follows it. */
interface PodInstance {
  assignment: Assignment;
  container: PodContainer;
  output: PodOutput;
  checks: HealthWatch;
  /** Containers restarted for failing liveness or after the engine went down, this instance. */
  restarts: number;
  removing: boolean;
}

const keyOf = (x: { tenant: string; podId: string }) => podKey(x.tenant, x.podId);

/** Why a container is started again in place after its host or engine came back. */
const ENGINE_DOWN_REASON = 'the host or its Docker engine went down; restarted';

/**
 * Runs this host's share of pods: makes the containers the coordinator asks for, removes
 * what it no longer wants, and for each running one follows its output (PodOutput), its
 * health (HealthWatch) and serves its routes (RouteTable); after dockerd comes back it looks
 * at every pod again (EngineWatch). Work on one pod is serialized; different pods proceed in
 * parallel.
 */
export class Supervisor {
  private readonly pods = new Map<string, PodInstance>();
  private readonly queue: PodQueue;
  private readonly routes: RouteTable;
  private readonly engine: EngineWatch;

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
  ) {
    this.queue = new PodQueue(deps.log);
    this.routes = new RouteTable({ caddy: deps.caddy, log: deps.log });
    this.engine = new EngineWatch({
      runtime: deps.runtime,
      log: deps.log,
      onEvent: (event) => this.onContainerEvent(event),
      onEngineBack: () => this.recheckAll(),
    });
  }

  /** The running container of this pod instance, and the user it runs as; null when there is none. */
  running(ref: PodRef): { containerId: string; user: string } | null {
    const pod = this.pods.get(keyOf(ref));
    if (!pod || pod.removing || pod.assignment.uid !== ref.uid || pod.container.state !== 'running') return null;
    return { containerId: pod.container.id, user: pod.assignment.spec.user ?? this.deps.config.containerUser };
  }

  start(): void {
    this.engine.start();
    this.routes.watch(this.deps.config.caddyCheckMs);
  }

  stop(): void {
    this.engine.stop();
    this.routes.stop();
    for (const pod of this.pods.values()) this.stopFollowing(pod);
  }

  /** The containers of the pods this host runs, as last seen: no call to the engine. */
  containers(): PodContainer[] {
    return [...this.pods.values()].filter((pod) => !pod.removing).map((pod) => pod.container);
  }

  /** Every labelled container, as hello reports them. */
  async inventory(): Promise<Hello['containers']> {
    const containers = await this.deps.runtime.list();
    const engine = containers.some((c) => c.state === 'exited') ? await this.deps.runtime.engineStart() : null;
    return containers.map((c) => {
      const pod = this.pods.get(keyOf(c));
      const health = pod && pod.container.id === c.id ? pod.checks.health : 'unknown';
      // One the engine stopped is started again once assigned (ensure): it is not reported ended meanwhile.
      if (stoppedWithEngine(c, engine)) {
        return { tenant: c.tenant, podId: c.podId, uid: c.uid, generation: c.generation, phase: 'creating' as const, observed: this.observed(c, 'creating', { message: 'the host or its Docker engine went down; starting it again' }) };
      }
      const phase = phaseOf(c);
      return { tenant: c.tenant, podId: c.podId, uid: c.uid, generation: c.generation, phase, observed: this.observed(c, phase, { health }) };
    });
  }

  apply(a: Assignment): Promise<void> {
    return this.queue.run(keyOf(a), () => this.ensure(a));
  }

  remove(ref: PodRef): Promise<void> {
    return this.queue.run(keyOf(ref), () => this.removePod(ref));
  }

  /**
   * The full set this node should run: remove everything else, ensure the rest, then load
   * every route into Caddy. The host's containers are listed once, and each pod's ensure
   * works from that list unless something was done to the pod since it was taken.
   */
  async sync(assignments: Assignment[]): Promise<void> {
    const want = new Map(assignments.map((a) => [keyOf(a), a]));
    const touched = this.queue.recordFinished();
    try {
      const listed = new Map<string, PodContainer[]>();
      for (const c of await this.deps.runtime.list()) listed.set(keyOf(c), [...(listed.get(keyOf(c)) ?? []), c]);
      const work: Promise<void>[] = [];
      for (const [key, containers] of listed) {
        for (const c of containers) {
          const a = want.get(key);
          if (!a || a.uid !== c.uid) work.push(this.queue.run(key, () => this.destroy(c, 'no longer assigned to this node')));
        }
      }
      for (const [key, a] of want) {
        work.push(this.queue.run(key, () => this.ensure(a, touched.has(key) ? undefined : (listed.get(key) ?? []))));
      }
      await Promise.allSettled(work);
    } finally {
      this.queue.stopRecording(touched);
    }
    // After a reconnect: send again whatever output the coordinator does not have.
    for (const [key, pod] of this.pods) pod.output.resendAfter(want.get(key)?.logSince);
    await this.routes.resync();
  }

  private observed(c: ReportedContainer, phase: Phase, extra: Partial<Observed> = {}): Observed {
    return observation(this.deps.config.nodeId, c, phase, extra);
  }

  private report(pod: { tenant: string; podId: string }, c: ReportedContainer, phase: Phase, extra: Partial<Observed> = {}): void {
    this.deps.reporter.status(pod.tenant, pod.podId, this.observed(c, phase, extra));
  }

  /** Whether this instance is still the pod's, and not on its way out. */
  private current(pod: PodInstance): boolean {
    return this.pods.get(keyOf(pod.assignment)) === pod && !pod.removing;
  }

  /**
   * Make the assigned instance run here: ignore a stale command, remove other instances'
   * containers, adopt this instance's container or make it. `listed`: this pod's containers
   * as a listing of the whole host found them (else they are listed here).
   */
  private async ensure(a: Assignment, listed?: PodContainer[]): Promise<void> {
    const { runtime, log } = this.deps;
    const key = keyOf(a);
    const mine = listed ?? (await runtime.list({ tenant: a.tenant, podId: a.podId }));
    if (mine.some((c) => c.uid === a.uid && c.generation > a.generation)) {
      log.info({ pod: key, generation: a.generation }, 'ignoring a stale command');
      return;
    }
    for (const c of mine) {
      if (c.uid !== a.uid || c.generation !== a.generation) await this.destroy(c, `replaced by instance ${a.generation}`);
    }
    const current = mine.find((c) => c.uid === a.uid && c.generation === a.generation);
    const pod = this.pods.get(key);
    if (current && pod && pod.container.id === current.id && !pod.removing) {
      pod.assignment = a; // already running this instance: a repeated command
      return;
    }
    if (current?.state === 'exited') {
      if (stoppedWithEngine(current, await runtime.engineStart())) return this.startAgain(a, current);
      this.report(a, current, 'exited');
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
        this.report(a, { uid: a.uid, generation: a.generation }, 'creating');
        const t0 = performance.now();
        const binds = a.spec.mounts.length ? await this.bindsOf(a) : [];
        c = await runtime.createAndStart(a, binds);
        log.debug({ pod: key, ms: Math.round(performance.now() - t0) }, 'container created and started');
      }
    } catch (err) {
      log.warn({ pod: key, err: (err as Error).message }, 'could not start pod');
      this.report(a, { uid: a.uid, generation: a.generation }, 'failed', { message: (err as Error).message });
      return;
    }
    await this.attach(a, c, fresh);
  }

  /** Start again in place (its data and output kept) a container the engine going down stopped. */
  private async startAgain(a: Assignment, stopped: PodContainer): Promise<void> {
    this.deps.log.warn({ pod: keyOf(a), container: stopped.id.slice(0, 12), finishedAt: stopped.finishedAt }, 'starting again a container stopped when the host or its engine went down');
    let c: PodContainer;
    try {
      c = await this.deps.runtime.restart(stopped.id);
    } catch (err) {
      this.report(a, stopped, 'failed', { message: `${ENGINE_DOWN_REASON}, but it could not start: ${(err as Error).message}` });
      return;
    }
    await this.attach(a, c, false, ENGINE_DOWN_REASON);
  }

  private async bindsOf(a: Assignment): Promise<Bind[]> {
    if (!this.deps.binds) throw new Error('this agent keeps no storage, and the pod mounts some');
    return this.deps.binds(a);
  }

  /**
   * Take charge of a running container: output, startup and readiness checks, routes, first
   * probe, the template's init commands (only for a container made just now, never for one
   * adopted after a restart), then report it running and keep watching its health.
   * `restarted`: why the container was just started again in place (counted as a restart).
   */
  private async attach(a: Assignment, c: PodContainer, fresh: boolean, restarted?: string): Promise<void> {
    const { config, runtime, log } = this.deps;
    const key = keyOf(a);
    const old = this.pods.get(key);
    if (old) this.stopFollowing(old);
    const pod: PodInstance = {
      assignment: a,
      container: c,
      output: new PodOutput({ runtime, ref: a, config, send: (msg) => this.deps.reporter.logs(msg), log, ...(a.logSince ? { since: a.logSince } : {}) }),
      checks: new HealthWatch(() => pod, { runtime, publishHost: config.publishHost, probeIntervalMs: config.probeIntervalMs, log }, {
        current: () => this.current(pod),
        changed: (health) => this.report(a, pod.container, 'running', { health }),
        waiting: (why) => this.report(a, pod.container, 'creating', { message: `waiting for the readiness check: ${why}` }),
        livenessFailed: (why) => void this.queue.run(key, () => this.restartForLiveness(pod, why)),
      }),
      restarts: restarted ? 1 : 0,
      removing: false,
    };
    this.pods.set(key, pod);
    void pod.output.follow(c.id);
    // With startup or readiness checks, the pod is routed and RUNNING only once they pass.
    const hc = a.spec.healthchecks;
    if (hc?.startup || hc?.readiness) {
      const failed = await pod.checks.gate();
      if (failed === 'gone') return;
      if (failed) {
        this.report(a, c, 'failed', { message: failed });
        return;
      }
    }
    const unserved = await this.routes.install(key, podRoutes(a, c, config));
    await pod.checks.firstProbe();
    if (fresh && a.spec.init && pod.checks.health === 'healthy') {
      for (const [i, cmd] of a.spec.init.entries()) {
        const r = await runtime.exec(c.id, cmd).catch((err: Error) => ({ exitCode: -1, output: err.message }));
        if (r.exitCode !== 0) {
          // The command line may hold secrets: say which step failed, not its arguments.
          this.report(a, c, 'failed', { message: `init step ${i + 1} (${cmd[0]}) failed with exit code ${r.exitCode}: ${r.output.trim().slice(-300)}` });
          return;
        }
      }
    }
    if (!this.current(pod)) return;
    // An adopted container that answers its probe is as it was listed a moment ago; any other may have
    // stopped while it was waited for. (One that stops later is seen by its event.)
    const now = !fresh && pod.checks.health === 'healthy' ? c : ((await runtime.inspect(c.id)) ?? c);
    if (now.state === 'exited') {
      this.report(a, now, 'exited');
      return;
    }
    pod.container = now;
    const message = [restarted, unserved].filter(Boolean).join('; ');
    this.report(a, now, 'running', { health: pod.checks.health, ...(pod.restarts ? { restarts: pod.restarts } : {}), ...(message ? { message } : {}) });
    pod.checks.start();
  }

  /** Restart the container in place (same instance), follow it again, and back off before checking again. */
  private async restartForLiveness(pod: PodInstance, why: string): Promise<void> {
    if (!this.current(pod)) return;
    pod.restarts++;
    this.deps.log.warn({ pod: keyOf(pod.assignment), restarts: pod.restarts, why }, 'restarting a container that failed its liveness check');
    let info: PodContainer;
    try {
      info = await this.deps.runtime.restart(pod.container.id);
    } catch (err) {
      this.report(pod.assignment, pod.container, 'failed', { message: `${why}; the restart failed: ${(err as Error).message}` });
      return;
    }
    await this.reattach(pod, info, { message: `${why}; restarted (${pod.restarts})`, restarts: pod.restarts }, restartBackoffMs(pod.restarts));
  }

  /**
   * Follow a container again after it restarted: output after what was shipped, routes to its
   * (maybe new) ports, health checks after `livenessDelayMs` more than their initial delay.
   */
  private async reattach(pod: PodInstance, info: PodContainer, extra: Partial<Observed> = {}, livenessDelayMs = 0): Promise<void> {
    this.stopFollowing(pod);
    pod.container = info;
    void pod.output.follow(info.id);
    await this.routes.install(keyOf(pod.assignment), podRoutes(pod.assignment, info, this.deps.config));
    this.report(pod.assignment, info, 'running', { health: pod.checks.health, ...extra });
    pod.checks.start(livenessDelayMs);
  }

  private async removePod(ref: PodRef): Promise<void> {
    const mine = (await this.deps.runtime.list({ tenant: ref.tenant, podId: ref.podId })).filter((c) => c.uid === ref.uid && c.generation <= ref.generation);
    for (const c of mine) await this.destroy(c, 'stop requested');
    // Say so even when nothing was there, so the coordinator can move on.
    if (!mine.some((c) => c.generation === ref.generation)) this.report(ref, ref, 'removed');
  }

  /** Remove a container; if it is the one this host runs for its pod, let go of the pod first. */
  private async destroy(c: PodContainer, why: string): Promise<void> {
    const key = keyOf(c);
    const pod = this.pods.get(key);
    if (pod && pod.container.id === c.id) {
      pod.removing = true;
      this.report(c, c, 'removing');
      await this.letGo(pod);
    }
    this.deps.log.info({ pod: key, container: c.id.slice(0, 12), why }, 'removing container');
    await this.deps.runtime.remove(c.id);
    this.report(c, c, 'removed');
  }

  /** A pod's container vanished: let go of it and tell the coordinator (which makes a new one). */
  private async forget(pod: PodInstance, why: string): Promise<void> {
    await this.letGo(pod);
    this.report(pod.assignment, pod.container, 'removed', { message: why });
  }

  /** The one way a pod instance ends here: stop following it, and stop serving its routes. */
  private async letGo(pod: PodInstance): Promise<void> {
    const key = keyOf(pod.assignment);
    this.stopFollowing(pod);
    if (this.pods.get(key) === pod) this.pods.delete(key);
    await this.routes.remove(key);
  }

  private stopFollowing(pod: PodInstance): void {
    pod.checks.stop();
    pod.output.stop();
  }

  /**
   * After dockerd restarted: a container it stopped (no --live-restore) is started again, one it
   * kept is followed again, one that is gone is reported removed (the coordinator re-creates it).
   */
  private recheckAll(): void {
    this.deps.log.info({ pods: this.pods.size }, 'docker is back; checking every pod');
    // dockerd rewrites its own chains when it starts; ours are put first again.
    void this.deps.isolation?.apply();
    for (const pod of this.pods.values()) {
      void this.queue.run(keyOf(pod.assignment), async () => {
        if (!this.current(pod)) return;
        let info = await this.deps.runtime.inspect(pod.container.id);
        if (!info) return this.forget(pod, 'container was gone after dockerd restarted');
        let extra: Partial<Observed> = {};
        if (info.state === 'exited' && !stoppedWithEngine(info, await this.deps.runtime.engineStart())) {
          // It ended by itself, while the engine ran: it stays ended.
          pod.checks.stop();
          pod.container = info;
          this.report(pod.assignment, info, 'exited');
          return;
        }
        if (info.state !== 'running') {
          try {
            info = await this.deps.runtime.start(info.id);
          } catch (err) {
            this.report(pod.assignment, info, 'failed', { message: `could not restart after dockerd restarted: ${(err as Error).message}` });
            return;
          }
          pod.restarts++;
          extra = { restarts: pod.restarts, message: ENGINE_DOWN_REASON };
        }
        // Published ports can change across a restart; the log is followed again after what was shipped.
        await this.reattach(pod, info, extra);
      });
    }
  }

  /** A container of ours stopped or went away: see what became of it. */
  private onContainerEvent(event: ContainerEvent): void {
    const pod = [...this.pods.values()].find((x) => x.container.id === event.containerId);
    if (!pod || pod.removing) return;
    void this.queue.run(keyOf(pod.assignment), async () => {
      if (!this.current(pod)) return;
      const info = await this.deps.runtime.inspect(pod.container.id);
      if (!info) return this.forget(pod, 'container was removed outside the service');
      if (info.state === 'exited') {
        pod.checks.stop();
        pod.container = info;
        this.report(pod.assignment, info, 'exited');
      }
    });
  }
}
