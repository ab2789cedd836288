import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from '../shared/log.js';

const run = promisify(execFile);

// Pods must not reach one another, the host, or addresses the site blocks (the cloud metadata
// service, the control plane). dockerd's --icc=false is an option, not a guarantee: measured
// on one host, the FORWARD rules in effect still accepted bridge-to-bridge traffic. So the
// agent installs its own rules, in chains of its own, and checks they are the ones in effect:
//
//   FORWARD -> DOCKER-USER (dockerd jumps there first) -> PODS-ISOLATION
//     -i BRIDGE -o BRIDGE -j DROP          pod to pod
//     -i BRIDGE -d CIDR -j DROP            each blocked egress address
//   INPUT -> PODS-HOST
//     -i BRIDGE ESTABLISHED,RELATED -j RETURN   (answers to the host's own connections, e.g. Caddy)
//     -i BRIDGE -j DROP                     pod to any address of the host
//
// PODS-ISOLATION only gains rules (all drops); PODS-HOST, whose order matters, is rebuilt when
// it does not hold exactly its rules. A rerun changes nothing.

export const ISOLATION_CHAIN = 'PODS-ISOLATION';
export const HOST_CHAIN = 'PODS-HOST';

export type IsolationMode = 'require' | 'best-effort' | 'off';

export interface IsolationOptions {
  /** The pods' bridge interface (docker0 for Docker's default bridge). */
  bridge: string;
  /** CIDRs pods may not send to. */
  blockedEgress: string[];
  /** require: no pod starts until the rules are in effect; best-effort: warn and go on; off: leave the firewall alone. */
  mode: IsolationMode;
  log: Logger;
  /** The iptables binary (nf_tables or legacy, whichever dockerd uses). */
  iptables?: string;
}

/** The rule specs each chain should hold, in order. */
export function isolationRules(bridge: string, blocked: string[]): { forward: string[][]; host: string[][] } {
  return {
    forward: [['-i', bridge, '-o', bridge, '-j', 'DROP'], ...blocked.map((cidr) => ['-i', bridge, '-d', cidr, '-j', 'DROP'])],
    host: [
      ['-i', bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN'],
      ['-i', bridge, '-j', 'DROP'],
    ],
  };
}

export class PodIsolation {
  private problem: string | null = 'pod isolation has not been checked yet';
  private readonly bin: string;

  constructor(private readonly opts: IsolationOptions) {
    this.bin = opts.iptables ?? 'iptables';
    if (opts.mode === 'off') this.problem = null;
  }

  /** Why pods may not start now (require mode only), or null. */
  get refusal(): string | null {
    return this.opts.mode === 'require' ? this.problem : null;
  }

  /** Install the rules (again) and check they are in effect; never throws. */
  async apply(): Promise<void> {
    if (this.opts.mode === 'off') return;
    try {
      await this.install();
      const missing = await this.check();
      if (missing) throw new Error(missing);
      if (this.problem) this.opts.log.info({ bridge: this.opts.bridge, blocked: this.opts.blockedEgress }, 'pod isolation in effect');
      this.problem = null;
    } catch (err) {
      const message = `pod isolation could not be put in effect on this host: ${(err as Error).message.split('\n')[0]}`;
      if (message !== this.problem) {
        const hint = this.opts.mode === 'require' ? 'no pod starts here until it is (PODS_POD_ISOLATION=best-effort runs them anyway)' : 'pods run anyway (PODS_POD_ISOLATION=best-effort)';
        this.opts.log.error({ err: message }, hint);
      }
      this.problem = message;
    }
  }

  private async ipt(...args: string[]): Promise<string> {
    return (await run(this.bin, ['-w', '5', ...args])).stdout;
  }

  private async has(...args: string[]): Promise<boolean> {
    return this.ipt('-C', ...args).then(
      () => true,
      () => false,
    );
  }

  private async ensureChain(chain: string): Promise<void> {
    if (!(await this.ipt('-n', '-L', chain).then(() => true, () => false))) await this.ipt('-N', chain);
  }

  /**
   * Make `chain` hold `rules`, leaving any others (all drops) in place: another agent on this
   * host, or an earlier configuration, may have blocked more; dropping more is never unsafe.
   */
  private async addMissing(chain: string, rules: string[][]): Promise<void> {
    await this.ensureChain(chain);
    for (const rule of rules) if (!(await this.has(chain, ...rule))) await this.ipt('-A', chain, ...rule);
  }

  /** Make `chain` hold exactly `rules`; a chain that already does is left alone (no window without them). */
  private async fill(chain: string, rules: string[][]): Promise<void> {
    await this.ensureChain(chain);
    const count = (await this.ipt('-S', chain)).split('\n').filter((l) => l.startsWith(`-A ${chain} `)).length;
    let same = count === rules.length;
    for (const rule of rules) same = same && (await this.has(chain, ...rule));
    if (same) return;
    await this.ipt('-F', chain);
    for (const rule of rules) await this.ipt('-A', chain, ...rule);
  }

  private async firstRule(chain: string): Promise<string | undefined> {
    return (await this.ipt('-S', chain)).split('\n').find((l) => l.startsWith(`-A ${chain} `));
  }

  /** Make `-j target` the first rule of `chain` (moved there if another rule was put before it). */
  private async jumpFirst(chain: string, target: string): Promise<void> {
    if ((await this.firstRule(chain)) === `-A ${chain} -j ${target}`) return;
    while (await this.has(chain, '-j', target)) await this.ipt('-D', chain, '-j', target);
    await this.ipt('-I', chain, '1', '-j', target);
  }

  private async install(): Promise<void> {
    const { forward, host } = isolationRules(this.opts.bridge, this.opts.blockedEgress);
    await this.addMissing(ISOLATION_CHAIN, forward);
    await this.fill(HOST_CHAIN, host);
    // dockerd makes DOCKER-USER and jumps to it first from FORWARD; a host without it has no dockerd rules yet.
    await this.jumpFirst('DOCKER-USER', ISOLATION_CHAIN);
    await this.jumpFirst('INPUT', HOST_CHAIN);
  }

  /**
   * What is missing from the rules in effect, or null: in FORWARD nothing that could pass a
   * pod's packet comes before the jump to DOCKER-USER, there nothing before the jump to our
   * chain, and in INPUT nothing before ours. Jumps are followed: Docker's own isolation chains
   * (which a restarted dockerd may put first) only drop or return, so they are fine.
   */
  private async check(): Promise<string | null> {
    const chains = new Map<string, string[]>();
    for (const line of (await this.ipt('-S')).split('\n')) {
      const m = /^-A (\S+) /.exec(line);
      if (m) chains.set(m[1]!, [...(chains.get(m[1]!) ?? []), line]);
    }
    for (const [chain, jump] of [['FORWARD', 'DOCKER-USER'], ['DOCKER-USER', ISOLATION_CHAIN], ['INPUT', HOST_CHAIN]] as const) {
      const rules = chains.get(chain) ?? [];
      const at = rules.indexOf(`-A ${chain} -j ${jump}`);
      if (at < 0) return `${chain} has no jump to ${jump}`;
      const before = rules.slice(0, at).find((r) => passesFrom(r, this.opts.bridge, chains));
      if (before) return `"${before}" comes before the jump to ${jump} in ${chain}`;
    }
    if (!(chains.get(ISOLATION_CHAIN) ?? []).includes(`-A ${ISOLATION_CHAIN} -i ${this.opts.bridge} -o ${this.opts.bridge} -j DROP`)) {
      return `${ISOLATION_CHAIN} does not drop traffic between pods`;
    }
    return null;
  }
}

/**
 * Whether an iptables rule (as `-S` prints it) could accept a packet that came in on `bridge`:
 * an ACCEPT that may match it, or a jump to a chain (of `chains`) holding one.
 */
export function passesFrom(rule: string, bridge: string, chains: Map<string, string[]> = new Map(), depth = 0): boolean {
  const words = rule.split(/\s+/);
  const i = words.indexOf('-i');
  if (i >= 0) {
    const name = words[i + 1]!;
    const matches = name.endsWith('+') ? bridge.startsWith(name.slice(0, -1)) : name === bridge;
    if ((words[i - 1] === '!') === matches) return false;
  }
  const target = words[words.indexOf('-j') + 1];
  if (target === 'ACCEPT') return true;
  // A jump is followed; DROP, REJECT, RETURN and targets that only look (LOG, MARK) pass nothing.
  const sub = target === undefined ? undefined : chains.get(target);
  return sub !== undefined && (depth > 8 || sub.some((r) => passesFrom(r, bridge, chains, depth + 1)));
}
