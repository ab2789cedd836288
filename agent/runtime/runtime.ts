// What the agent needs from a container engine, in the agent's own terms: pod containers,
// their state and published ports, commands, files, output and events. The engine's own
// formats stay behind an implementation: DockerRuntime (runtime/docker.ts) is the real one,
// NullRuntime (runtime/null.ts) keeps containers in memory for the scale benchmark.
import type { Readable } from 'node:stream';
import type { Assignment } from '../../shared/protocol.js';

export type ContainerState = 'created' | 'running' | 'exited' | 'removing' | 'other';

/** One container of a pod instance on this node, as the runtime last saw it. */
export interface PodContainer {
  id: string;
  tenant: string;
  podId: string;
  uid: string;
  generation: number;
  state: ContainerState;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  /** The kernel killed it for passing its memory limit. */
  oomKilled?: boolean;
  /** container port name -> host port on the publish address (the container's own port when `address` is set) */
  hostPorts: Record<string, number>;
  /** Where its ports are reached when it publishes none (a Swarm task's container): its address on its bridge. */
  address?: string;
}

/** Host paths bound into a container: storage that outlives it. */
export interface Bind {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface CommandOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Something that happened to one of this node's containers: it stopped running, or it is gone. */
export interface ContainerEvent {
  containerId: string;
  kind: 'exited' | 'removed';
}

/** This node's container events in order; iteration ends when the engine goes away or on close(). */
export interface EventFeed extends AsyncIterable<ContainerEvent> {
  close(): void;
}

/** When the engine last started (ISO time), and whether it stops containers as it shuts down. */
export interface EngineStart {
  at: string;
  stopsContainersOnShutdown: boolean;
}

export interface Runtime {
  /** This node's containers, or only one pod's. */
  list(pod?: { tenant: string; podId: string }): Promise<PodContainer[]>;
  /** One container, or null when it is gone or not this node's. */
  inspect(id: string): Promise<PodContainer | null>;
  /** Create and start the container of one pod instance (adopting it if it exists already). */
  createAndStart(a: Assignment, binds?: Bind[]): Promise<PodContainer>;
  /** Start a created container. */
  start(id: string): Promise<PodContainer>;
  /** Stop (10 s grace) and start again the same container; its state after. */
  restart(id: string): Promise<PodContainer>;
  /** Stop (grace period) and remove; a container that is already gone is fine. */
  remove(id: string, graceS?: number): Promise<void>;
  /** Run a command in a running container; its exit code and the tail of its output. */
  exec(id: string, cmd: string[], timeoutMs?: number): Promise<{ exitCode: number; output: string }>;
  /** Run a command with stdout and stderr apart (each cut at maxBytes); killed when the timeout passes. */
  run(id: string, cmd: string[], opts: { timeoutMs: number; maxBytes: number }): Promise<CommandOutput>;
  /** Extract a tar stream into a directory of the container. */
  putArchive(id: string, dir: string, tar: Readable): Promise<void>;
  /** A tar stream of a path in the container. */
  getArchive(id: string, path: string): Promise<Readable>;
  /**
   * The container's output (stdout and stderr merged), one line per output line, each starting
   * with its RFC 3339 timestamp and a space; from the start, or after `since` ("seconds.nanoseconds").
   */
  follow(id: string, since?: string): Promise<Readable>;
  /** Follow this node's container events; the caller subscribes again when the feed ends. */
  events(): Promise<EventFeed>;
  /** When the engine last started, as near as it tells; null when it cannot tell. */
  engineStart(): Promise<EngineStart | null>;
}

export type RuntimeErrorCode = 'IMAGE_UNAVAILABLE' | 'CREATE_FAILED' | 'START_FAILED';

export class RuntimeError extends Error {
  constructor(readonly code: RuntimeErrorCode, message: string) {
    super(message);
    this.name = 'RuntimeError';
  }
}
