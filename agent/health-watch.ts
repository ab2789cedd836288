// The health of one pod instance, from its first check to its removal: the pod's own startup,
// readiness and liveness checks (shared/pod.ts HealthChecks, run by health.ts) and the agent's
// TCP probe of its first routed port.
import type { Logger } from '../shared/log.js';
import type { Health } from '../shared/pod.js';
import type { Assignment } from '../shared/protocol.js';
import { runCheck, type CheckTarget } from './health.js';
import { tcpProbe, waitForPort } from './probe.js';
import type { PodContainer, Runtime } from './runtime/runtime.js';

const FIRST_PROBE_DEADLINE_MS = 30_000;

/** The pod instance watched: asked for afresh at every check, as its container changes on a restart. */
export interface WatchedPod {
  readonly assignment: Assignment;
  readonly container: PodContainer;
}

export interface HealthEvents {
  /** Whether the instance is still this host's to run (not replaced, not being removed). */
  current(): boolean;
  /** The periodic probe saw the health change. */
  changed(health: Health): void;
  /** While the readiness check fails: why (said again only when the reason changes). */
  waiting(why: string): void;
  /** The liveness check failed failure_threshold times in a row. */
  livenessFailed(why: string): void;
}

/**
 * The health of one pod instance: its startup and readiness checks before it is routed, the
 * first probe of its port, then a periodic probe and the liveness check while it runs.
 */
export class HealthWatch {
  health: Health = 'unknown';
  private probeTimer: NodeJS.Timeout | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly watched: () => WatchedPod,
    private readonly deps: { runtime: Runtime; publishHost: string; probeIntervalMs: number; log: Logger },
    private readonly on: HealthEvents,
  ) {}

  /**
   * Wait for the startup check (if any) and then the readiness check to pass. Answers why the
   * pod cannot start (startup failed its failure_threshold tries), 'gone' when the pod was
   * taken away meanwhile, or null.
   */
  async gate(): Promise<string | 'gone' | null> {
    const hc = this.watched().assignment.spec.healthchecks;
    if (hc?.startup) {
      await sleep(hc.startup.initial_delay_seconds * 1000);
      let why: string | null = 'not run';
      for (let i = 0; i < hc.startup.failure_threshold && this.on.current(); i++) {
        if (i > 0) await sleep(hc.startup.period_seconds * 1000);
        why = await runCheck(hc.startup, this.target());
        if (!why) break;
      }
      if (!this.on.current()) return 'gone';
      if (why) return `startup check failed ${hc.startup.failure_threshold} times: ${why}`;
    }
    if (hc?.readiness) {
      await sleep(hc.readiness.initial_delay_seconds * 1000);
      let said = '';
      for (;;) {
        if (!this.on.current()) return 'gone';
        const why = await runCheck(hc.readiness, this.target());
        if (!why) break;
        if (why !== said) {
          said = why;
          this.on.waiting(why);
        }
        await sleep(hc.readiness.period_seconds * 1000);
      }
    }
    return null;
  }

  /** The first health: the port answers (within 30 s), and the template's readiness command passes. */
  async firstProbe(): Promise<void> {
    const port = this.probePort();
    if (port) {
      const t0 = performance.now();
      const up = await waitForPort(this.host(), port, FIRST_PROBE_DEADLINE_MS);
      this.health = up ? 'healthy' : 'unhealthy';
      const { tenant, podId } = this.watched().assignment;
      this.deps.log.debug({ pod: `${tenant}/${podId}`, ms: Math.round(performance.now() - t0), up }, 'first probe');
    }
    const readiness = this.watched().assignment.spec.readiness;
    if (readiness) this.health = (await this.waitReady(readiness.exec)) ? 'healthy' : 'unhealthy';
  }

  /** Probe the port every probeIntervalMs, and run the liveness check after its initial delay plus `extraDelayMs`. */
  start(extraDelayMs = 0): void {
    this.stop();
    const port = this.probePort();
    if (port) this.probeTimer = setInterval(() => void this.probe(port), this.deps.probeIntervalMs);
    const liveness = this.watched().assignment.spec.healthchecks?.liveness;
    if (liveness) this.scheduleLiveness(liveness.initial_delay_seconds * 1000 + extraDelayMs);
  }

  stop(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
    if (this.livenessTimer) clearTimeout(this.livenessTimer);
    this.livenessTimer = null;
  }

  private target(): CheckTarget {
    const { assignment, container } = this.watched();
    return {
      host: this.host(),
      hostPort: (port: number) => {
        const p = assignment.spec.ports.find((x) => x.port === port);
        return p ? container.hostPorts[p.name] : undefined;
      },
      exec: (cmd: string[], timeoutMs: number) => this.deps.runtime.exec(container.id, cmd, timeoutMs),
    };
  }

  /** Where the container's ports are reached: its own address (a Swarm task's), else the publish host. */
  private host(): string {
    return this.watched().container.address ?? this.deps.publishHost;
  }

  /** The host port of the first routed port: the one the probe connects to. */
  private probePort(): number | undefined {
    const { assignment, container } = this.watched();
    const first = assignment.spec.ports.find((p) => p.protocol !== 'local_only' && container.hostPorts[p.name]);
    return first ? container.hostPorts[first.name] : undefined;
  }

  private async probe(port: number): Promise<void> {
    const health: Health = (await tcpProbe(this.host(), port)) ? 'healthy' : 'unhealthy';
    if (health === this.health || !this.on.current()) return;
    this.health = health;
    this.on.changed(health);
  }

  /** The next liveness round in `delayMs`; failure_threshold failures in a row are reported. */
  private scheduleLiveness(delayMs: number, failures = 0): void {
    const check = this.watched().assignment.spec.healthchecks!.liveness!;
    this.livenessTimer = setTimeout(() => {
      this.livenessTimer = null;
      void (async () => {
        if (!this.on.current() || this.watched().container.state !== 'running') return;
        const why = await runCheck(check, this.target());
        if (!why) return this.scheduleLiveness(check.period_seconds * 1000);
        if (failures + 1 < check.failure_threshold) return this.scheduleLiveness(check.period_seconds * 1000, failures + 1);
        this.on.livenessFailed(`liveness check failed ${check.failure_threshold} times: ${why}`);
      })();
    }, delayMs);
  }

  /** Run the readiness command until it exits 0 or the deadline passes. */
  private async waitReady(cmd: string[]): Promise<boolean> {
    const { runtime } = this.deps;
    const id = this.watched().container.id;
    const end = Date.now() + FIRST_PROBE_DEADLINE_MS * 2;
    while (Date.now() < end) {
      const r = await runtime.exec(id, cmd, 5_000).catch(() => null);
      if (r?.exitCode === 0) return true;
      const info = await runtime.inspect(id);
      if (!info || info.state !== 'running') return false;
      await sleep(250);
    }
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
