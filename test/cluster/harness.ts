// A cluster of Docker hosts on this machine for the multi-host tests: each host is a network
// namespace with its own dockerd (ops/cluster/hosts.sh), its own Caddy and its own agent; the
// coordinator, Redis and the edge Caddy run in the root namespace, the coordinator listening on
// the hosts' bridge (podsbr0, 10.213.0.1), the edge on 127.0.0.1. Every process can be killed (-9) and restarted, a host's link
// cut and restored, a host's dockerd killed and started again.
//
//   const c = await startCluster({ hosts: 3 });
//   c.hosts[0].agent.kill(); c.hosts[0].agent.start();
//   await c.hosts[1].cutLink(); await c.hosts[1].restoreLink();
//   await c.hosts[2].killDockerd(); await c.hosts[2].startDockerd();
//   await c.stop();
//
// Needs root, iproute2, dockerd, var/bin/caddy (or PODS_CADDY_BIN) and the image
// pods-test/httpd in the machine's engine (copied into each host). Logs of every process go to
// /tmp/pods-cluster/ (dockerd's: hK-dockerd.log). PODS_CLUSTER_KEEP=1 leaves the hosts up after
// stop() for a look around (`ops/cluster/hosts.sh down` removes them).
//
// Importing this file starts nothing (node --test runs it as a test file, finding no tests).
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { Agent, request } from 'undici';
import { caddyBin, startCaddy, type RunningCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { repoRoot, TEST_IMAGE } from '../helpers/stack.js';

export { waitFor } from '../helpers/procs.js';
export { TEST_IMAGE } from '../helpers/stack.js';

/**
 * Where a cluster's hosts are, as its script makes them: ops/cluster/hosts.sh (the default), or
 * ops/cluster/swarm.sh (the same hosts under other names, joined into one Swarm), which may run
 * beside it. The root namespace is NET.1, host K is NET.(10+K).
 */
export interface Layout {
  script: string;
  prefix: string;
  net: string;
  run: string;
  logDir: string;
}
export const HOSTS_LAYOUT: Layout = { script: 'hosts.sh', prefix: 'pods-h', net: '10.213.0', run: '/run/pods-cluster', logDir: '/tmp/pods-cluster' };
export const SWARM_LAYOUT: Layout = { script: 'swarm.sh', prefix: 'pods-s', net: '10.214.0', run: '/run/pods-swarm', logDir: '/tmp/pods-swarm' };

export const BRIDGE_ADDR = `${HOSTS_LAYOUT.net}.1`;
export const hostAddr = (k: number, layout = HOSTS_LAYOUT) => `${layout.net}.${10 + k}`;
export const LOG_DIR = HOSTS_LAYOUT.logDir;
const CADDY_ADMIN = '127.0.0.1:2019'; // inside each host's namespace: every host has its own loopback
const CADDY_HTTP_PORT = 8080;
const CADDY_TLS_PORT = 8443;

export function hostsScript(layout = HOSTS_LAYOUT): string {
  return path.join(repoRoot(), 'ops', 'cluster', layout.script);
}

/** For `describe(..., { skip })`: why this machine cannot run the cluster, or false. */
export function skipWithoutCluster(): string | false {
  if (process.env.CI) return false; // in CI a missing piece is a failure, never a quiet skip
  if (process.getuid?.() !== 0) return 'the cluster tests need root (network namespaces, one dockerd per host)';
  for (const bin of ['ip', 'dockerd', 'docker', 'nsenter', 'unshare', 'curl']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed`;
  }
  if (!existsSync(caddyBin())) return `no Caddy binary at ${caddyBin()} (run ops/build-caddy.sh or set PODS_CADDY_BIN)`;
  if (spawnSync('docker', ['image', 'inspect', TEST_IMAGE]).status !== 0) return `no ${TEST_IMAGE} image (ops/images/build-test-image.sh)`;
  return false;
}

function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** `hosts.sh up N`; returns how long it took (ms). */
export async function hostsUp(n: number, layout = HOSTS_LAYOUT): Promise<number> {
  const t0 = performance.now();
  await run('bash', [hostsScript(layout), 'up', String(n)], 300_000);
  return performance.now() - t0;
}

export async function hostsDown(layout = HOSTS_LAYOUT): Promise<void> {
  await run('bash', [hostsScript(layout), 'down'], 300_000);
}

/** A free TCP port on `host` a moment ago (ports.ts does the same for 127.0.0.1). */
export function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const a = server.address();
      if (a === null || typeof a === 'string') return reject(new Error('no TCP address'));
      server.close(() => resolve(a.port));
    });
  });
}

// ---- processes -------------------------------------------------------------------------------

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/**
 * A child process, optionally inside a host's network namespace (`ip netns exec`, which execs:
 * the pid is the program's own). Like helpers/procs.ts's Proc, killable with -9 and
 * restartable with the same command; besides, every line goes to LOG_DIR/<name>.log, all lines
 * are kept (for counting log events), and `exits` counts the times it ended.
 */
export class HostProc {
  private proc: ChildProcess | null = null;
  private log: WriteStream | null = null;
  private partial = '';
  readonly lines: string[] = [];
  starts = 0;

  constructor(
    readonly name: string,
    private readonly cmd: string,
    private readonly args: string[],
    private readonly env: Record<string, string> = {},
    readonly netns?: string,
    private readonly logDir = LOG_DIR,
  ) {}

  get pid(): number | undefined {
    return this.running ? this.proc?.pid : undefined;
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The last `chars` characters of its output. */
  tail(chars = 3000): string {
    // The coordinator's start-up list of built-in templates says nothing about a failure.
    return this.lines.filter((l) => !l.includes('"component":"templates"')).join('\n').slice(-chars);
  }

  start(): this {
    if (this.running) throw new Error(`${this.name} is already running`);
    mkdirSync(this.logDir, { recursive: true });
    this.log ??= createWriteStream(path.join(this.logDir, `${this.name}.log`), { flags: 'a' });
    this.log.write(`==== ${new Date().toISOString()} start ${this.netns ? `(in ${this.netns}) ` : ''}${this.cmd} ${this.args.join(' ')}\n`);
    const [cmd, args] = this.netns ? ['ip', ['netns', 'exec', this.netns, this.cmd, ...this.args]] : [this.cmd, this.args];
    const proc = spawn(cmd, args, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    this.starts++;
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      this.flush();
      this.log?.write(`==== ${new Date().toISOString()} exit ${signal ?? code}\n`);
    });
    const take = (chunk: Buffer) => {
      this.log?.write(chunk);
      const text = this.partial + chunk.toString();
      const parts = text.split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
    };
    proc.stdout?.on('data', take);
    proc.stderr?.on('data', take);
    this.proc = proc;
    return this;
  }

  private flush(): void {
    if (this.partial) this.lines.push(this.partial);
    this.partial = '';
  }

  /** Stop it; SIGKILL (the default) is the crash the tests inject. Waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  async restart(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.kill(signal);
    this.start();
  }

  /** Its output lines parsed as JSON (pino), the others left out. */
  events(): Array<Record<string, any>> {
    const out: Array<Record<string, any>> = [];
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue;
      try {
        out.push(JSON.parse(l));
      } catch {
        // not a log record
      }
    }
    return out;
  }

  /** How many of its log records have this msg (and these fields). */
  count(msg: string, fields: Record<string, unknown> = {}): number {
    return this.events().filter((e) => e.msg === msg && Object.entries(fields).every(([k, v]) => e[k] === v)).length;
  }

  async close(): Promise<void> {
    await this.kill('SIGTERM');
    await new Promise<void>((resolve) => (this.log ? this.log.end(resolve) : resolve()));
    this.log = null;
  }
}

// ---- Caddy inside a namespace ----------------------------------------------------------------

/** A Caddy in host K's namespace: admin on the namespace's 127.0.0.1:2019, state in LOG_DIR/hK-caddy/. */
export class NsCaddy {
  readonly proc: HostProc;
  readonly adminUrl = `http://${CADDY_ADMIN}`;
  readonly dir: string;

  constructor(readonly netns: string, name: string, logDir = LOG_DIR) {
    this.dir = path.join(logDir, `${name}-state`);
    this.proc = new HostProc(name, caddyBin(), ['run', '--config', path.join(this.dir, 'caddy.json')], {
      XDG_CONFIG_HOME: path.join(this.dir, 'config'),
      XDG_DATA_HOME: path.join(this.dir, 'data'),
    }, netns, logDir);
  }

  async start(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    await writeFile(path.join(this.dir, 'caddy.json'), JSON.stringify({ admin: { listen: CADDY_ADMIN } }));
    this.proc.start();
    await this.waitReady();
  }

  /** kill -9 and start again, empty (admin only), as after a crash. */
  async restart(): Promise<void> {
    await this.proc.kill('SIGKILL');
    this.proc.start();
    await this.waitReady();
  }

  async waitReady(timeoutMs = 10_000): Promise<void> {
    // The admin endpoint is on the namespace's own loopback: ask from inside.
    await waitFor(`Caddy in ${this.netns}`, async () => {
      if (!this.proc.running) throw new Error(`Caddy exited:\n${this.proc.tail()}`);
      const r = spawnSync('ip', ['netns', 'exec', this.netns, 'curl', '-sf', '-o', '/dev/null', '-m', '1', `${this.adminUrl}/config/`]);
      return r.status === 0;
    }, timeoutMs, 100);
  }

  async stop(): Promise<void> {
    await this.proc.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

// ---- hosts -----------------------------------------------------------------------------------

export class ClusterHost {
  readonly nodeId: string;
  readonly netns: string;
  readonly addr: string;
  readonly veth: string;
  readonly dockerSocket: string;
  readonly dockerPidfile: string;
  /** Where the edge (the root namespace) reaches this host's Caddy. */
  readonly caddyHttpUrl: string;
  readonly caddyHttpListen: string;
  readonly caddyTlsListen: string;
  readonly caddy: NsCaddy;
  agent!: HostProc;
  private readonly dockerAgent: Agent;
  // A cut link makes connects hang rather than fail: give up on them sooner than undici's 10 s.
  private readonly httpAgent = new Agent({ connect: { timeout: 3000 } });

  constructor(readonly k: number, readonly layout = HOSTS_LAYOUT) {
    this.nodeId = `h${k}`;
    this.netns = `${layout.prefix}${k}`;
    this.addr = hostAddr(k, layout);
    this.veth = `veth-${layout.prefix}${k}`;
    this.dockerSocket = `${layout.run}/h${k}/docker.sock`;
    this.dockerPidfile = `${layout.run}/h${k}/docker.pid`;
    this.caddyHttpListen = `${this.addr}:${CADDY_HTTP_PORT}`;
    this.caddyTlsListen = `${this.addr}:${CADDY_TLS_PORT}`;
    this.caddyHttpUrl = `http://${this.caddyHttpListen}`;
    this.caddy = new NsCaddy(this.netns, `h${k}-caddy`, layout.logDir);
    this.dockerAgent = new Agent({ connect: { socketPath: this.dockerSocket } });
  }

  /** The environment the agent of this host runs with . */
  agentEnv(coordinatorUrl: string, nodeToken: string): Record<string, string> {
    return {
      PODS_COORDINATOR_URL: coordinatorUrl,
      PODS_NODE_TOKEN: nodeToken,
      PODS_NODE_ID: this.nodeId,
      PODS_DOCKER_SOCKET: this.dockerSocket,
      PODS_CADDY_ADMIN_URL: this.caddy.adminUrl,
      PODS_CADDY_HTTP_LISTEN: this.caddyHttpListen,
      PODS_CADDY_TLS_LISTEN: this.caddyTlsListen,
      PODS_TCP_LISTEN_HOST: this.addr,
      PODS_PUBLISH_HOST: this.addr,
      PODS_HEARTBEAT_MS: '1000',
      PODS_PROBE_INTERVAL_MS: '500',
      PODS_CADDY_CHECK_MS: '500',
      PODS_LOG_LEVEL: 'info',
      // Each host keeps its pods' data, volumes and snapshots apart, as separate machines would.
      PODS_DATA_ROOT: `${this.layout.logDir}/data/h${this.k}`,
    };
  }

  /** A call to this host's Docker engine API. */
  async docker(method: string, pathAndQuery: string): Promise<any> {
    const res = await request(`http://docker${pathAndQuery}`, { method: method as any, dispatcher: this.dockerAgent, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await res.body.text();
    if (res.statusCode >= 400) throw new Error(`docker ${method} ${pathAndQuery} on ${this.nodeId}: ${res.statusCode} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** This host's containers carrying these labels (all states), e.g. { 'pods.pod_id': 'x' }. */
  async containers(labels: Record<string, string> = {}): Promise<Array<{ Id: string; Names: string[]; State: string; Labels: Record<string, string> }>> {
    const filters = encodeURIComponent(JSON.stringify({ label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) }));
    return this.docker('GET', `/containers/json?all=1&filters=${filters}`);
  }

  /** GET / through this host's Caddy with a Host header. */
  async viaCaddy(hostHeader: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
    const res = await request(`${this.caddyHttpUrl}/`, { headers: { host: hostHeader }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, dispatcher: this.httpAgent });
    return { status: res.statusCode, body: await res.body.text() };
  }

  /** Run a command inside this host's namespace. */
  exec(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', this.netns, cmd, ...args], timeoutMs);
  }

  /** Cut the host off: its veth's root-side end goes down (no RST, packets just vanish). */
  async cutLink(): Promise<void> {
    await run('ip', ['link', 'set', this.veth, 'down']);
  }

  async restoreLink(): Promise<void> {
    await run('ip', ['link', 'set', this.veth, 'up']);
  }

  /** The pid in this host's dockerd pidfile (dockerd removes the file on a clean exit). */
  get dockerdPid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.dockerPidfile, 'utf8').trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stop this host's dockerd: SIGKILL by default (its containerd dies with it; shims and containers stay). */
  async killDockerd(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    await run('bash', [hostsScript(this.layout), 'stop-dockerd', String(this.k), ...(signal === 'SIGKILL' ? ['--kill'] : [])], 120_000);
  }

  /** Start this host's dockerd again and wait until it answers; returns how long it took (ms). */
  async startDockerd(): Promise<number> {
    const t0 = performance.now();
    await run('bash', [hostsScript(this.layout), 'start-dockerd', String(this.k)], 120_000);
    return performance.now() - t0;
  }

  async close(): Promise<void> {
    await this.httpAgent.close();
    await this.dockerAgent.close();
  }
}

// ---- the cluster -----------------------------------------------------------------------------

export interface ApiResponse {
  status: number;
  body: { status: string; message: string; result: any; version: string; metadata: object };
}

export interface ClusterOptions {
  hosts?: number;
  coordinatorEnv?: Record<string, string>;
  /** Extra environment for every agent. */
  agentEnv?: Record<string, string>;
  /** Start the agents (default true). */
  agents?: boolean;
  /** Run the edge Caddy in front of the hosts (default true). */
  edge?: boolean;
  /** The hosts' script and names (default HOSTS_LAYOUT). */
  layout?: Layout;
}

export interface Timings {
  hostsUpMs: number;
  coordinatorReadyMs: number;
  caddiesReadyMs: number;
  agentsConnectedMs: number;
}

/** The edge Caddy (root namespace, 127.0.0.1), programmed by the coordinator (PODS_EDGE_*). */
export interface Edge {
  caddy: RunningCaddy;
  httpUrl: string;
  tlsListen: string;
}

export class Cluster {
  readonly hosts: ClusterHost[];
  readonly adminToken = `admin-${randomBytes(16).toString('hex')}`;
  readonly nodeTokens: string[];
  readonly tenant: string;
  readonly baseDomain = 'localhost';
  readonly redisPrefix: string;
  coordinator!: HostProc;
  redis!: TestRedis;
  edge: Edge | null = null;
  apiUrl = '';
  coordinatorUrl = '';
  readonly timings: Timings = { hostsUpMs: 0, coordinatorReadyMs: 0, caddiesReadyMs: 0, agentsConnectedMs: 0 };
  private stopped = false;

  constructor(n: number, readonly layout = HOSTS_LAYOUT) {
    const id = randomBytes(3).toString('hex');
    this.tenant = `c${id}`;
    this.redisPrefix = `cluster${id}:`;
    this.hosts = Array.from({ length: n }, (_, i) => new ClusterHost(i + 1, layout));
    this.nodeTokens = this.hosts.map(() => `node-${randomBytes(16).toString('hex')}`);
  }

  host(nodeId: string): ClusterHost {
    const h = this.hosts.find((x) => x.nodeId === nodeId);
    if (!h) throw new Error(`no host ${nodeId}`);
    return h;
  }

  podHost(podId: string): string {
    return `${podId}.pods.${this.tenant}.${this.baseDomain}`;
  }

  async api(method: string, p: string, o: { token?: string | null; body?: unknown } = {}): Promise<ApiResponse> {
    const token = o.token === undefined ? this.adminToken : o.token;
    const headers: Record<string, string> = token ? { 'x-tapis-token': token } : {};
    let body: string | undefined;
    if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] = 'application/json';
    }
    const res = await request(`${this.apiUrl}${p}`, { method: method as any, headers, body, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await res.body.text();
    try {
      return { status: res.statusCode, body: JSON.parse(text) };
    } catch {
      throw new Error(`${method} ${p} answered ${res.statusCode} with a non-JSON body: ${text.slice(0, 200)}`);
    }
  }

  async pod(podId: string): Promise<any> {
    const r = await this.api('GET', `/v3/pods/${podId}`);
    if (r.status !== 200) throw new Error(`GET /v3/pods/${podId}: ${r.status} ${r.body.message}`);
    return r.body.result;
  }

  async waitStatus(podId: string, status: string, timeoutMs = 30_000): Promise<any> {
    let last = '';
    try {
      return await waitFor(`pod ${podId} to be ${status}`, async () => {
        const p = await this.pod(podId);
        last = `${p.status} ${p.status_container?.message ?? ''}`;
        return p.status === status ? p : null;
      }, timeoutMs, 100);
    } catch (err) {
      throw new Error(`${(err as Error).message} (last seen: ${last})\n${this.diagnostics()}`);
    }
  }

  /** GET / through the edge with the pod's Host header. */
  async viaEdge(podId: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
    if (!this.edge) throw new Error('this cluster runs no edge');
    const res = await request(`${this.edge.httpUrl}/`, { headers: { host: this.podHost(podId) }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    return { status: res.statusCode, body: await res.body.text() };
  }

  /** Every container of this cluster's tenant for a pod, on every host. */
  async containersOf(podId: string): Promise<Array<{ node: string; id: string; state: string }>> {
    const out: Array<{ node: string; id: string; state: string }> = [];
    for (const h of this.hosts) {
      for (const c of await h.containers({ 'pods.pod_id': podId, 'pods.tenant': this.tenant })) out.push({ node: h.nodeId, id: c.Id, state: c.State });
    }
    return out;
  }

  /** How often the coordinator logged "agent connected" for this node. */
  connects(nodeId: string): number {
    return this.coordinator.count('agent connected', { nodeId });
  }

  async startAgent(h: ClusterHost, extraEnv: Record<string, string> = {}): Promise<void> {
    h.agent ??= new HostProc(`${h.nodeId}-agent`, process.execPath, [path.join(repoRoot(), 'dist/agent/main.js')], {
      ...h.agentEnv(this.coordinatorUrl, this.nodeTokens[h.k - 1]),
      ...extraEnv,
    }, h.netns, this.layout.logDir);
    if (!h.agent.running) h.agent.start();
  }

  /** Wait until the coordinator has logged `n` (default: one more than now) connects of this node. */
  async waitConnected(h: ClusterHost, n = this.connects(h.nodeId) + 1, timeoutMs = 20_000): Promise<void> {
    await waitFor(`agent ${h.nodeId} to connect (connect #${n})`, async () => this.connects(h.nodeId) >= n, timeoutMs, 50).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- ${h.nodeId} agent:\n${h.agent?.tail()}\n--- coordinator:\n${this.coordinator.tail()}`);
    });
  }

  diagnostics(): string {
    return [`--- coordinator:\n${this.coordinator?.tail(3000)}`, ...this.hosts.map((h) => `--- ${h.nodeId} agent:\n${h.agent?.tail(1500)}`)].join('\n');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const h of this.hosts) await h.agent?.close().catch(() => undefined);
    await this.coordinator?.close().catch(() => undefined);
    for (const h of this.hosts) await h.caddy.stop().catch(() => undefined);
    await this.edge?.caddy.stop().catch(() => undefined);
    await this.redis?.stop().catch(() => undefined);
    for (const h of this.hosts) await h.close().catch(() => undefined);
    // The hosts go with everything in them (containers, dockerd, leftovers).
    if (!process.env.PODS_CLUSTER_KEEP) await hostsDown(this.layout);
  }
}

/** A test body whose failure also says what the coordinator and the agents were doing. */
export function withDiagnostics(cluster: () => Cluster | undefined, fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof Error) err.message += `\n${cluster()?.diagnostics() ?? ''}`;
      throw err;
    }
  };
}

/**
 * Bring up `hosts` hosts (default 3), Redis, the edge Caddy and the coordinator in the root
 * namespace, a Caddy and an agent in each host; wait until every agent is connected and
 * allow-list the test image.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const layout = opts.layout ?? HOSTS_LAYOUT;
  const c = new Cluster(opts.hosts ?? 3, layout);
  const root = repoRoot();
  const bridgeAddr = `${layout.net}.1`;
  try {
    c.timings.hostsUpMs = await hostsUp(c.hosts.length, layout);

    let t0 = performance.now();
    c.redis = await startRedis();
    let edgeEnv: Record<string, string> = {};
    if (opts.edge !== false) {
      const caddy = await startCaddy();
      c.edge = { caddy, httpUrl: caddy.httpUrl, tlsListen: `127.0.0.1:${await freePort()}` };
      edgeEnv = {
        PODS_EDGE_ADMIN_URL: caddy.adminUrl,
        PODS_EDGE_HTTP_LISTEN: caddy.httpListen,
        PODS_EDGE_TLS_LISTEN: c.edge.tlsListen,
        // Dedicated TCP ports: the same numbers as on the hosts, so another loopback address.
        PODS_EDGE_TCP_HOST: '127.0.0.2',
      };
    }
    const port = await freePortOn(bridgeAddr);
    c.apiUrl = `http://${bridgeAddr}:${port}`;
    c.coordinatorUrl = `ws://${bridgeAddr}:${port}/v3/agents/connect`;
    c.coordinator = new HostProc('coordinator', process.execPath, [path.join(root, 'dist/coordinator/main.js')], {
      // It must listen where the hosts can reach it: the bridge address, not loopback.
      PODS_LISTEN_HOST: bridgeAddr,
      PODS_LISTEN_PORT: String(port),
      PODS_REDIS_URL: c.redis.url,
      PODS_REDIS_PREFIX: c.redisPrefix,
      PODS_TENANT: c.tenant,
      PODS_BASE_DOMAIN: c.baseDomain,
      PODS_ADMIN_TOKEN: c.adminToken,
      PODS_NODE_TOKENS: c.hosts.map((h) => `${h.nodeId}=${c.nodeTokens[h.k - 1]}`).join(','),
      PODS_MIN_TIME_TO_STOP_S: '2',
      PODS_RECONCILE_INTERVAL_MS: '250',
      PODS_AGENT_PING_MS: '1000',
      PODS_LOG_LEVEL: 'info',
      ...edgeEnv,
      ...opts.coordinatorEnv,
    }, undefined, layout.logDir).start();
    await waitFor('the coordinator to answer', async () => {
      if (!c.coordinator.running) throw new Error(`the coordinator exited:\n${c.coordinator.tail()}`);
      return (await c.api('GET', '/v3/pods/healthcheck', { token: null })).status === 200;
    }, 20_000);
    c.timings.coordinatorReadyMs = performance.now() - t0;

    t0 = performance.now();
    await Promise.all(c.hosts.map((h) => h.caddy.start()));
    c.timings.caddiesReadyMs = performance.now() - t0;

    if (opts.agents !== false) {
      t0 = performance.now();
      for (const h of c.hosts) await c.startAgent(h, opts.agentEnv);
      await Promise.all(c.hosts.map((h) => c.waitConnected(h, 1)));
      c.timings.agentsConnectedMs = performance.now() - t0;
    }

    const added = await c.api('POST', '/v3/pods/images', { body: { image: TEST_IMAGE, description: 'test image' } });
    if (added.status !== 200) throw new Error(`could not allow the test image: ${added.body.message}`);
    return c;
  } catch (err) {
    await c.stop().catch(() => undefined);
    throw err;
  }
}
