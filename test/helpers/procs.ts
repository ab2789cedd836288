// Real child processes for tests (Redis, coordinator, agent), each killable the hard
// way (SIGKILL) and restartable with the same arguments. Output is kept for failures.
//
// Nothing here waits without a deadline: a child left running keeps the test file's process
// alive, and node's test runner then waits for that file forever.
import { spawn, type ChildProcess } from 'node:child_process';

/** How long a child has to exit after a signal before it gets SIGKILL (and then again). */
const STOP_GRACE_MS = 5_000;

const live = new Set<ChildProcess>();
const killAll = () => {
  for (const p of live) p.kill('SIGKILL');
};
process.on('exit', killAll);
// A test file stopped from outside (node --test past --test-timeout, Ctrl-C) gets a signal,
// which would end this process without its 'exit' handlers: take the children along first.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

/** Kill every child still running when this test process exits or is stopped. */
export function track(proc: ChildProcess): void {
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
}

/** `signal`, then SIGKILL if the child is still there after a few seconds; throws if even that does not end it. */
export async function stopChild(proc: ChildProcess, signal: NodeJS.Signals, name: string): Promise<void> {
  // No pid: the binary never ran, so there is nothing to wait for.
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill(signal);
  try {
    await within(STOP_GRACE_MS, `${name} to exit on ${signal}`, exited);
  } catch {
    proc.kill('SIGKILL');
    await within(STOP_GRACE_MS, `${name} (pid ${proc.pid}) to exit on SIGKILL`, exited);
  }
}

export class Proc {
  private proc: ChildProcess | null = null;
  /** What the process wrote, across its restarts (the last 20,000 characters). */
  output = '';
  /** What it wrote since it was last started (the last 20,000 characters). */
  runOutput = '';

  constructor(readonly name: string, private readonly cmd: string, private readonly args: string[], private readonly env: Record<string, string> = {}) {}

  start(): this {
    const proc = spawn(this.cmd, this.args, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    track(proc);
    this.runOutput = '';
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
      this.runOutput = (this.runOutput + chunk.toString()).slice(-20_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.proc = proc;
    return this;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Stop the process; SIGKILL is the crash the tests inject. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc) await stopChild(this.proc, signal, this.name);
  }

  async restart(): Promise<void> {
    await this.kill();
    this.start();
  }
}

/** `promise`, or an error saying what was awaited once `ms` have passed without it settling. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(ms)} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      // One try that never answers (a request to a process that accepts and says nothing) ends at the deadline too.
      const v = await within(end - Date.now(), 'its last try to answer', fn());
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
