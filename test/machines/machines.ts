// Booted Debian machines on this host for the installer tests (ops/machines/machines.sh), and a
// cluster on them provisioned as a site admin does it (ops/machines/provision.sh, the same entry
// point the Vagrantfile uses): the coordinator on NET.10, Docker hosts hostK on NET.(10+K).
//
// Needs root, debootstrap and systemd-nspawn (ops/machines/machines.sh installs them), the
// machines' root (built once, ~1 min, cached in ~/.cache/pods/machines) and the image
// pods-test/httpd in this machine's engine (copied into each host, no registry).
//
// Importing this file starts nothing (node --test runs it as a test file, finding no tests).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { repoRoot, TEST_IMAGE } from '../helpers/stack.js';

export { TEST_IMAGE } from '../helpers/stack.js';

export const NET = '10.216.0';
export const COORDINATOR_URL = `https://${NET}.10:8000`;
export const hostAddr = (k: number) => `${NET}.${10 + k}`;
export const HOSTS = [1, 2] as const;
/** Where the copy of the repository and the secrets are made on this machine. */
const WORK = path.join(repoRoot(), 'var', 'machines');
export const STAGE = path.join(WORK, 'stage');
export const SECRETS = path.join(WORK, 'secrets');
/** Where a site admin puts them on each machine. */
const COPY_ON_MACHINE = '/root/pods';
const SECRETS_ON_MACHINE = '/root/pods-secrets';

const script = (name: string) => path.join(repoRoot(), 'ops', 'machines', name);

/** For `describe(..., { skip })`: why this machine cannot run the machine tests, or false. */
export function skipWithoutMachines(): string | false {
  if (process.env.PODS_SKIP_MACHINES) return 'PODS_SKIP_MACHINES is set';
  if (process.env.CI) return false; // in CI a missing piece is a failure, never a quiet skip
  if (process.getuid?.() !== 0) return 'the machine tests need root (systemd-nspawn, a bridge, overlay mounts)';
  if (spawnSync('docker', ['image', 'inspect', TEST_IMAGE]).status !== 0) return `no ${TEST_IMAGE} image (ops/images/build-test-image.sh)`;
  return false;
}

/** Run a command to its end; throws with its output unless it exits 0. */
export function sh(cmd: string, args: string[], opts: { timeoutMs?: number; input?: NodeJS.ReadableStream; env?: Record<string, string> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-20_000)));
    if (opts.input && child.stdin) opts.input.pipe(child.stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${[cmd, ...args].join(' ')} exited ${code}\n${out.slice(-4000)}\n${err}`));
    });
  });
}

export const machines = (...args: string[]) => sh('bash', [script('machines.sh'), ...args], { timeoutMs: 300_000 });
/** CMD as root inside machine NAME; its stdout. */
export const inMachine = (name: string, ...cmd: string[]) => machines('exec', name, ...cmd);

/** Seconds since `start`, for the timings the run prints. */
const since = (start: number) => ((Date.now() - start) / 1000).toFixed(1);

export class Cluster {
  private readonly dispatcher: Agent;

  /** timings: what each phase of start() took, for the run to print. */
  private constructor(readonly adminToken: string, private readonly ca: string, readonly timings: string[]) {
    this.dispatcher = new Agent({ connect: { ca: readFileSync(ca) } });
  }

  get caFile(): string {
    return this.ca;
  }

  /**
   * Three machines booted and provisioned from scratch: the copy of the repository and the
   * secrets made here, copied in, the installers run by the provisioning entry point, the test
   * image loaded into each host's engine.
   */
  static async start(): Promise<Cluster> {
    const timings: string[] = [];
    const phase = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const t = Date.now();
      const v = await fn();
      timings.push(`${what} ${since(t)} s`);
      return v;
    };
    await machines('down');
    await phase('copy of the repository (ops/machines/stage.sh)', () => sh('bash', [script('stage.sh'), STAGE], { timeoutMs: 900_000 }));
    await rm(SECRETS, { recursive: true, force: true });
    await mkdir(WORK, { recursive: true });
    await sh('bash', [script('provision.sh'), 'secrets', SECRETS, NET]);
    await phase('root (ops/machines/build-root.sh)', () => sh('bash', [script('build-root.sh')], { timeoutMs: 900_000 }));
    await phase('boot 3 machines', () => machines('up', 'coordinator:10', ...HOSTS.map((k) => `host${k}:${10 + k}`)));
    // A host gets its own token and the CA's certificate, nothing else of the secrets.
    const hostSecrets = path.join(WORK, 'host-secrets');
    await rm(hostSecrets, { recursive: true, force: true });
    await mkdir(path.join(hostSecrets, 'tls'), { recursive: true, mode: 0o700 });
    await sh('cp', [path.join(SECRETS, 'tls', 'ca.crt'), path.join(hostSecrets, 'tls')]);
    await phase('copy in', async () => {
      await machines('copy-in', 'coordinator', STAGE, COPY_ON_MACHINE);
      await machines('copy-in', 'coordinator', SECRETS, SECRETS_ON_MACHINE);
      for (const k of HOSTS) {
        await sh('cp', [path.join(SECRETS, `node-host${k}-token`), hostSecrets]);
        await machines('copy-in', `host${k}`, STAGE, COPY_ON_MACHINE);
        await machines('copy-in', `host${k}`, hostSecrets, SECRETS_ON_MACHINE);
        await rm(path.join(hostSecrets, `node-host${k}-token`));
      }
    });
    const cluster = new Cluster(readFileSync(path.join(SECRETS, 'admin-token'), 'utf8').trim(), path.join(SECRETS, 'tls', 'ca.crt'), timings);
    await phase('install (coordinator, then both hosts at once)', () => cluster.provisionAll());
    await phase(`load ${TEST_IMAGE} into the hosts`, () => Promise.all(HOSTS.map((k) => cluster.loadImage(k))));
    return cluster;
  }

  /** Run the provisioning entry point on every machine: the coordinator first, then the hosts. */
  async provisionAll(): Promise<void> {
    await this.provision('coordinator');
    await Promise.all(HOSTS.map((k) => this.provision(`host${k}`)));
  }

  provision(machine: string): Promise<string> {
    const role = machine === 'coordinator' ? ['coordinator'] : ['host', machine.slice('host'.length)];
    return inMachine(machine, 'bash', `${COPY_ON_MACHINE}/ops/machines/provision.sh`, ...role, SECRETS_ON_MACHINE, NET);
  }

  private async loadImage(k: number): Promise<void> {
    const save = spawn('docker', ['save', TEST_IMAGE], { stdio: ['ignore', 'pipe', 'inherit'] });
    await sh('bash', [script('machines.sh'), 'exec', `host${k}`, 'docker', 'load'], { input: save.stdout, timeoutMs: 300_000 });
  }

  /** The coordinator's API as a site admin, over TLS checked against the site's CA. */
  async api(method: string, pathname: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await request(COORDINATOR_URL + pathname, {
      method: method as 'GET',
      dispatcher: this.dispatcher,
      headers: { 'x-tapis-token': this.adminToken, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? JSON.parse(text) : null };
  }

  async stop(): Promise<void> {
    await this.dispatcher.close();
  }
}

/** GET http://hostK:8080/ with the pod's Host: what that host's Caddy serves for it. */
export async function throughCaddy(k: number, host: string): Promise<{ status: number; body: string }> {
  const res = await request(`http://${hostAddr(k)}:8080/`, { headers: { host }, headersTimeout: 5_000, bodyTimeout: 5_000 });
  return { status: res.statusCode, body: await res.body.text() };
}
