import Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from '../../shared/log.js';
import type { Assignment } from '../../shared/protocol.js';
import { containerName, L } from './labels.js';
import { RuntimeError, type Bind, type CommandOutput, type ContainerEvent, type ContainerState, type EngineStart, type EventFeed, type PodContainer, type Runtime } from './runtime.js';

/** The host interface of a bridge network: its configured name, else Docker's br-<id>. */
function bridgeInterface(n: { Id: string; Options?: Record<string, string> }): string {
  return n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`;
}

export interface RuntimeOptions {
  socketPath: string;
  nodeId: string;
  publishHost: string;
  user: string;
  network: string;
  pidsLimit: number;
  log: Logger;
  /** The label that marks this node's containers; default pods.node=<nodeId> (Swarm's tasks carry Swarm's node id). */
  owner?: { label: string; value: string };
}

function stateOf(s: string | undefined): ContainerState {
  if (s === 'created' || s === 'running' || s === 'exited' || s === 'removing') return s;
  if (s === 'dead') return 'exited';
  return 'other';
}

/** Containers inspected at once when listing. */
const INSPECT_CONCURRENCY = 8;

const isoOrUndefined = (t: string | undefined) => (t && !t.startsWith('0001-') ? new Date(t).toISOString() : undefined);

/**
 * The Docker runtime: a small interface (list, create+start, inspect, stop+remove,
 * logs, events) over dockerode. Every container it makes carries the pod's labels.
 */
export class DockerRuntime implements Runtime {
  readonly docker: Docker;
  protected readonly owner: { label: string; value: string };
  constructor(protected readonly opts: RuntimeOptions) {
    this.docker = new Docker({ socketPath: opts.socketPath });
    this.owner = opts.owner ?? { label: L.node, value: opts.nodeId };
  }

  async version(): Promise<string> {
    return (await this.docker.version()).Version;
  }

  /**
   * The pods' network. Docker's default bridge is the fast one to start containers on (a
   * user-defined network adds ~100 ms per start here); pods on it are kept apart by dockerd's
   * --icc=false, and the agent says so when that is missing. Any other name is created as a
   * bridge without inter-container traffic. Answers the network's bridge interface.
   */
  async ensureNetwork(): Promise<string> {
    if (this.opts.network === 'bridge') {
      const bridge = await this.docker.getNetwork('bridge').inspect();
      if (bridge.Options?.['com.docker.network.bridge.enable_icc'] !== 'false') {
        this.opts.log.warn('dockerd runs without --icc=false; the agent\'s own firewall rules (PODS_POD_ISOLATION) keep pods apart');
      }
      return bridgeInterface(bridge);
    }
    const existing = await this.docker.listNetworks({ filters: { name: [this.opts.network] } });
    const found = existing.find((n) => n.Name === this.opts.network);
    if (found) return bridgeInterface(found);
    try {
      await this.docker.createNetwork({
        Name: this.opts.network,
        Driver: 'bridge',
        Options: { 'com.docker.network.bridge.enable_icc': 'false' },
        Labels: { [L.managed]: '1' },
      });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
    }
    return bridgeInterface(await this.docker.getNetwork(this.opts.network).inspect());
  }

  /**
   * When dockerd last started. Its API does not say; its default network does: dockerd deletes
   * and makes again its `bridge` network each time it starts with no container left running,
   * which is exactly when it has taken containers down (a reboot, or a restart without
   * --live-restore). When containers ran on through a restart, this is an earlier start: no
   * container of ours was stopped by the engine then, so nothing is misread.
   */
  async engineStart(): Promise<EngineStart | null> {
    try {
      const [bridge, info] = await Promise.all([this.docker.getNetwork('bridge').inspect(), this.docker.info()]);
      const at = isoOrUndefined(bridge.Created);
      return at ? { at, stopsContainersOnShutdown: info.LiveRestoreEnabled !== true } : null;
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not tell when the engine started');
      return null;
    }
  }

  /** Every container on this host labelled for this node. */
  async list(pod?: { tenant: string; podId: string }): Promise<PodContainer[]> {
    const label = [`${L.managed}=1`, `${this.owner.label}=${this.owner.value}`, ...(pod ? [`${L.tenant}=${pod.tenant}`, `${L.podId}=${pod.podId}`] : [])];
    const items = await this.docker.listContainers({ all: true, filters: { label } });
    // A few inspects at a time: one after another, a host's 200 containers took a second or more.
    const found: Array<PodContainer | null> = new Array(items.length).fill(null);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < items.length; i = next++) found[i] = await this.inspect(items[i]!.Id);
    };
    await Promise.all(Array.from({ length: Math.min(INSPECT_CONCURRENCY, items.length) }, worker));
    return found.filter((c): c is PodContainer => c !== null);
  }

  async inspect(id: string): Promise<PodContainer | null> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(id).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
    const labels = info.Config.Labels ?? {};
    if (labels[this.owner.label] !== this.owner.value) return null;
    const { hostPorts, address } = this.reach(info, JSON.parse(labels['pods.ports'] ?? '{}') as Record<string, number>);
    return {
      id: info.Id,
      tenant: labels[L.tenant] ?? '',
      podId: labels[L.podId] ?? '',
      uid: labels[L.uid] ?? '',
      generation: Number(labels[L.generation] ?? 0),
      state: stateOf(info.State.Status),
      startedAt: isoOrUndefined(info.State.StartedAt),
      finishedAt: isoOrUndefined(info.State.FinishedAt),
      ...(info.State.Status === 'exited' || info.State.Status === 'dead' ? { exitCode: info.State.ExitCode } : {}),
      ...(info.State.OOMKilled ? { oomKilled: true } : {}),
      hostPorts,
      ...(address ? { address } : {}),
    };
  }

  /** Where a container's named ports are reached: the host ports they are published on. */
  protected reach(info: Docker.ContainerInspectInfo, portNames: Record<string, number>): Pick<PodContainer, 'hostPorts' | 'address'> {
    const hostPorts: Record<string, number> = {};
    for (const [name, port] of Object.entries(portNames)) {
      const binding = info.NetworkSettings.Ports?.[`${port}/tcp`]?.[0];
      if (binding?.HostPort) hostPorts[name] = Number(binding.HostPort);
    }
    return { hostPorts };
  }

  /** The image on this host: there already, or pulled when `pull` allows it. */
  private async ensureImage(image: string, pull: boolean): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
      return;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    if (!pull) {
      throw new RuntimeError(
        'IMAGE_UNAVAILABLE',
        `image ${image} is not on this host and may not be pulled: the allow-list names it without pinning this tag (a site admin can pin it, or load the image on the host)`,
      );
    }
    this.opts.log.info({ image }, 'pulling image');
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      throw new RuntimeError('IMAGE_UNAVAILABLE', `image ${image} is not on this host and could not be pulled: ${(err as Error).message}`);
    }
  }

  /** Create and start the container of one pod instance; cleans up after a failed start. */
  async createAndStart(a: Assignment, binds: Bind[] = []): Promise<PodContainer> {
    const { spec } = a;
    await this.ensureImage(spec.image, spec.pull);
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    const portNames: Record<string, number> = {};
    for (const p of spec.ports) {
      portNames[p.name] = p.port;
      exposed[`${p.port}/tcp`] = {};
      // local_only ports are not published on the host at all.
      if (p.protocol !== 'local_only') bindings[`${p.port}/tcp`] = [{ HostIp: this.opts.publishHost, HostPort: '' }];
    }
    const name = containerName(a.tenant, a.podId, a.uid, a.generation);
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        name,
        Image: spec.image,
        ...(spec.command ? { Entrypoint: spec.command } : {}),
        ...(spec.args ? { Cmd: spec.args } : {}),
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        User: spec.user ?? this.opts.user,
        ExposedPorts: exposed,
        Labels: {
          [L.managed]: '1',
          [L.node]: this.opts.nodeId,
          [L.tenant]: a.tenant,
          [L.podId]: a.podId,
          [L.uid]: a.uid,
          [L.generation]: String(a.generation),
          'pods.ports': JSON.stringify(portNames),
        },
        HostConfig: {
          PortBindings: bindings,
          Mounts: binds.map((b) => ({ Type: 'bind' as const, Source: b.source, Target: b.target, ReadOnly: b.readOnly, BindOptions: { Propagation: 'rprivate' as const } })),
          NetworkMode: this.opts.network,
          Memory: spec.memLimitMb * 1024 * 1024,
          MemoryReservation: spec.memRequestMb * 1024 * 1024,
          NanoCpus: spec.cpuLimitMilli * 1_000_000,
          CpuShares: Math.max(2, Math.round((spec.cpuRequestMilli / 1000) * 1024)),
          PidsLimit: this.opts.pidsLimit,
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          Privileged: false,
          Init: true, // tini as PID 1 forwards SIGTERM, so a stop is quick and clean
          RestartPolicy: { Name: 'no' },
          LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
        },
      });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 409) {
        // Same name: this instance exists already (a repeated command). Adopt it.
        const existing = await this.inspect(name);
        if (existing) return existing.state === 'created' ? this.start(existing.id) : existing;
      }
      throw new RuntimeError('CREATE_FAILED', `could not create the container: ${(err as Error).message}`);
    }
    return this.start(container.id);
  }

  async restart(id: string): Promise<PodContainer> {
    await this.docker.getContainer(id).restart({ t: 10 });
    const info = await this.inspect(id);
    if (!info) throw new RuntimeError('START_FAILED', `container ${id.slice(0, 12)} vanished while restarting`);
    return info;
  }

  async start(id: string): Promise<PodContainer> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 304) {
        await this.remove(id).catch(() => undefined);
        throw new RuntimeError('START_FAILED', `could not start the container: ${(err as Error).message}`);
      }
    }
    const info = await this.inspect(id);
    if (!info) throw new RuntimeError('START_FAILED', 'container vanished right after it started');
    return info;
  }

  /** Stop (grace period) and remove; a container that is already gone is fine. */
  async remove(id: string, graceS = 5): Promise<void> {
    const c = this.docker.getContainer(id);
    try {
      await c.stop({ t: graceS });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 304 && code !== 404) this.opts.log.warn({ id, err: (err as Error).message }, 'stop failed; removing by force');
    }
    try {
      await c.remove({ force: true, v: true });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw err;
    }
  }

  /** Run a command in a running container; its exit code and the tail of its output. */
  async exec(id: string, cmd: string[], timeoutMs = 30_000): Promise<{ exitCode: number; output: string }> {
    const r = await this.run(id, cmd, { timeoutMs, maxBytes: 2000 });
    return { exitCode: r.exitCode, output: (r.stdout + r.stderr).slice(-2000) };
  }

  /**
   * Run a command with its output kept apart; past the timeout its process is killed (the
   * exec's pid is a host pid, as the agent runs in the host's pid namespace).
   */
  async run(id: string, cmd: string[], opts: { timeoutMs: number; maxBytes: number }): Promise<CommandOutput> {
    let exec: Docker.Exec;
    try {
      exec = await this.docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code === 409 || code === 404) return { exitCode: -1, stdout: '', stderr: 'the container is not running', timedOut: false };
      throw err;
    }
    const stream = (await exec.start({ hijack: true, stdin: false })) as unknown as Readable;
    const keep = (max: number) => {
      const sink = new PassThrough();
      const out = { text: '', bytes: 0 };
      sink.on('data', (d: Buffer) => {
        if (out.bytes < max) out.text += d.subarray(0, max - out.bytes).toString();
        out.bytes += d.length;
      });
      return { sink, out };
    };
    const o = keep(opts.maxBytes);
    const e = keep(opts.maxBytes);
    this.docker.modem.demuxStream(stream, o.sink, e.sink);
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        void exec.inspect().then((i) => {
          if (i.Running && i.Pid) {
            try {
              process.kill(i.Pid, 'SIGKILL');
            } catch {
              /* gone already, or not ours to kill */
            }
          }
        }).catch(() => undefined).finally(() => {
          stream.destroy();
          resolve();
        });
      }, opts.timeoutMs);
      const done = () => { clearTimeout(timer); resolve(); };
      stream.on('end', done);
      stream.on('close', done);
      stream.on('error', done);
    });
    const info = await exec.inspect();
    const cut = (x: { text: string; bytes: number }) => (x.bytes > opts.maxBytes ? `${x.text}\n[output cut at ${opts.maxBytes} of ${x.bytes} bytes]` : x.text);
    return { exitCode: timedOut ? -1 : (info.ExitCode ?? -1), stdout: cut(o.out), stderr: cut(e.out), timedOut };
  }

  async putArchive(id: string, dir: string, tar: Readable): Promise<void> {
    await this.docker.getContainer(id).putArchive(tar, { path: dir, noOverwriteDirNonDir: true });
  }

  async getArchive(id: string, path: string): Promise<Readable> {
    return (await this.docker.getContainer(id).getArchive({ path })) as unknown as Readable;
  }

  /** Follow a container's output (stdout and stderr merged), each line stamped, from its start or after `since`. */
  async follow(id: string, since?: string): Promise<Readable> {
    const opts = { follow: true as const, stdout: true, stderr: true, timestamps: true, ...(since ? { since } : {}) };
    const raw = (await this.docker.getContainer(id).logs(opts as never)) as unknown as Readable;
    const out = new PassThrough();
    this.docker.modem.demuxStream(raw, out, out);
    raw.on('end', () => out.end());
    raw.on('error', (e) => out.destroy(e));
    out.on('close', () => raw.destroy());
    return out;
  }

  /** This node's containers stopping or going away; the caller subscribes again when the feed ends. */
  async events(): Promise<EventFeed> {
    const raw = (await this.docker.getEvents({
      filters: { type: ['container'], event: ['die', 'destroy'], label: [`${L.managed}=1`, `${this.owner.label}=${this.owner.value}`] },
    })) as unknown as Readable;
    return eventFeed(raw);
  }
}

/** Docker's event stream (newline-delimited JSON) as ContainerEvents; a line that is not one is skipped. */
function eventFeed(raw: Readable): EventFeed {
  const out = new PassThrough({ objectMode: true });
  let buf = '';
  let ended = false;
  const end = () => {
    if (!ended) out.end();
    ended = true;
  };
  raw.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const event = containerEvent(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (event && !ended) out.write(event);
    }
  });
  raw.once('end', end);
  raw.once('close', end);
  raw.once('error', end);
  return {
    [Symbol.asyncIterator]: () => out[Symbol.asyncIterator]() as AsyncIterator<ContainerEvent>,
    close: () => raw.destroy(),
  };
}

function containerEvent(line: string): ContainerEvent | null {
  let ev: { Action?: string; status?: string; id?: string };
  try {
    ev = JSON.parse(line) as typeof ev;
  } catch {
    return null;
  }
  const action = ev.Action ?? ev.status;
  if (!ev.id) return null;
  if (action === 'die') return { containerId: ev.id, kind: 'exited' };
  if (action === 'destroy') return { containerId: ev.id, kind: 'removed' };
  return null;
}
