import { spawn } from 'node:child_process';

export interface Ran {
  code: number | null;
  out: string;
}

/** Run a client program to the end: its exit code and stdout+stderr, never a rejection. */
export function run(cmd: string, args: string[], opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      // 'close' waits for the pipes, which a process the client started may still hold.
      child.stdout.destroy();
      child.stderr.destroy();
    }, opts.timeoutMs ?? 15_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, out: err.message });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
    // A client that exits at once (connection refused) closes its stdin before we write: not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}
