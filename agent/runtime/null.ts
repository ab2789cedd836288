// A runtime that starts no containers, and a Caddy client that programs no Caddy: for
// running the real agent code (CoordinatorLink + Supervisor) by the hundred in one process,
// as the scale benchmark does. Never used by the agent itself.
import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from '../../shared/log.js';
import type { Assignment } from '../../shared/protocol.js';
import { CaddyClient, type PodRoute, type ResyncResult, type TcpRoute } from '../caddy.js';
import type { CommandOutput, ContainerEvent, EngineStart, EventFeed, PodContainer, Runtime } from './runtime.js';

/**
 * Containers kept in memory: "created and started" at once, always running, serving no
 * port (so the supervisor installs no route and probes nothing), with no output.
 */
/** Container ids: unique in the process (a random prefix and a count), with no system call for each as random bytes would take. */
const ID_PREFIX = randomBytes(24).toString('hex');
let made = 0;

export class NullRuntime implements Runtime {
  protected readonly containers = new Map<string, PodContainer>();
  private readonly subscribers = new Set<PassThrough>();

  /** How many containers this runtime holds now. */
  get size(): number {
    return this.containers.size;
  }

  /** How many times list() was asked for the whole host, and for one pod (a sync lists once in all). */
  listCalls = 0;
  podListCalls = 0;

  async list(pod?: { tenant: string; podId: string }): Promise<PodContainer[]> {
    if (pod) this.podListCalls++;
    else this.listCalls++;
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
      id: `${ID_PREFIX}${(++made).toString(16).padStart(16, '0')}`,
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

  /** Gone at once, as `docker rm -f` would have it; followers of events hear of it. */
  async remove(id: string): Promise<void> {
    if (!this.containers.delete(id)) return;
    const event: ContainerEvent = { containerId: id, kind: 'removed' };
    for (const s of this.subscribers) s.write(event);
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

  /** How many times events() was asked: once, and again after each endEvents(). */
  subscriptions = 0;

  /** End every event feed, as dockerd going away does. */
  endEvents(): void {
    for (const s of this.subscribers) s.end();
    this.subscribers.clear();
  }

  async engineStart(): Promise<EngineStart | null> {
    return null;
  }

  async events(): Promise<EventFeed> {
    this.subscriptions++;
    const s = new PassThrough({ objectMode: true });
    this.subscribers.add(s);
    const close = () => {
      this.subscribers.delete(s);
      s.end();
    };
    return { [Symbol.asyncIterator]: () => s[Symbol.asyncIterator]() as AsyncIterator<ContainerEvent>, close };
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
