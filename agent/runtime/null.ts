// A runtime that starts no containers, and a Caddy client that programs no Caddy: for
// running the real agent code (CoordinatorLink + Supervisor) by the hundred in one process,
// as the scale benchmark does. Never used by the agent itself.
import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from '../../shared/log.js';
import type { Assignment } from '../../shared/protocol.js';
import { CaddyClient, type PodRoute, type ResyncResult, type TcpRoute } from '../caddy.js';
import type { CommandOutput, PodContainer, Runtime } from './docker.js';

/**
 * Containers kept in memory: "created and started" at once, always running, serving no
 * port (so the supervisor installs no route and probes nothing), with no output.
 */
export class NullRuntime implements Runtime {
  private readonly containers = new Map<string, PodContainer>();
  private readonly subscribers = new Set<PassThrough>();

  /** How many containers this runtime holds now. */
  get size(): number {
    return this.containers.size;
  }

  /** How many times list() was asked (the agent's sync must not list once per pod). */
  listCalls = 0;

  async list(pod?: { tenant: string; podId: string }): Promise<PodContainer[]> {
    if (!pod) this.listCalls++;
    return [...this.containers.values()].filter((c) => !pod || (c.tenant === pod.tenant && c.podId === pod.podId)).map((c) => ({ ...c }));
  }

  async inspect(id: string): Promise<PodContainer | null> {
    const c = this.containers.get(id);
    return c ? { ...c } : null;
  }

  async createAndStart(a: Assignment): Promise<PodContainer> {
    // Like a Docker name conflict: the same instance exists already, so adopt it.
    for (const c of this.containers.values()) {
      if (c.tenant === a.tenant && c.podId === a.podId && c.uid === a.uid && c.generation === a.generation) return { ...c };
    }
    const c: PodContainer = {
      id: randomBytes(32).toString('hex'),
      tenant: a.tenant,
      podId: a.podId,
      uid: a.uid,
      generation: a.generation,
      state: 'running',
      startedAt: new Date().toISOString(),
      hostPorts: {},
    };
    this.containers.set(c.id, c);
    return { ...c };
  }

  async restart(id: string): Promise<PodContainer> {
    return this.start(id);
  }

  async start(id: string): Promise<PodContainer> {
    const c = this.containers.get(id);
    if (!c) throw new Error(`no container ${id}`);
    c.state = 'running';
    return { ...c };
  }

  async remove(id: string): Promise<void> {
    if (!this.containers.delete(id)) return;
    const line = `${JSON.stringify({ Action: 'destroy', id })}\n`;
    for (const s of this.subscribers) s.write(line);
  }

  async exec(): Promise<{ exitCode: number; output: string }> {
    return { exitCode: 0, output: '' };
  }

  async run(): Promise<CommandOutput> {
    return { exitCode: 0, stdout: '', stderr: '', timedOut: false };
  }

  async putArchive(): Promise<void> {
    throw new Error('the null runtime holds no files');
  }

  async getArchive(): Promise<Readable> {
    throw new Error('the null runtime holds no files');
  }

  /** No output, ever; ends when the follower destroys it. */
  async follow(): Promise<Readable> {
    return new PassThrough();
  }

  async events(): Promise<Readable> {
    const s = new PassThrough();
    this.subscribers.add(s);
    s.once('close', () => this.subscribers.delete(s));
    return s;
  }
}

/** A Caddy client that programs nothing: every call succeeds at once and Caddy always looks configured. */
export class NullCaddy extends CaddyClient {
  constructor(log: Logger) {
    // Never contacted: every method that would call the admin API is overridden.
    super({ adminUrl: 'http://127.0.0.1:9', httpListen: '127.0.0.1:9', log });
  }

  override async isConfigured(): Promise<boolean> {
    return true;
  }

  override async resync(_routes: PodRoute[], _tcp: TcpRoute[] = []): Promise<ResyncResult> {
    return { refused: [] };
  }

  override async upsertRoute(_route: PodRoute): Promise<'written' | 'base-missing'> {
    return 'written';
  }

  override async upsertTcpRoute(_route: TcpRoute): Promise<'written' | 'base-missing'> {
    return 'written';
  }

  override async removeRoute(_id: string): Promise<void> {}
}
