// The Python side of the tests: the virtualenv with tapipy, pytest and schemathesis
// (test/compat/requirements.txt, made by ops/lib.sh's ensure_python_deps), and a way to run it.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { repoRoot } from './stack.js';

/** The virtualenv's python: PODS_PYTHON when ops/test.sh already made it, otherwise made now. */
export async function python(): Promise<string> {
  if (process.env.PODS_PYTHON) return process.env.PODS_PYTHON;
  const { stdout } = await promisify(execFile)('bash', ['-c', '. ops/lib.sh && ensure_python_deps >&2 && printf %s "$PODS_PYTHON"'], {
    cwd: repoRoot(),
    maxBuffer: 16 << 20,
    timeout: 10 * 60_000,
  });
  return stdout.trim();
}

/** Run a command to its end; stdout and stderr together, in order (the last 200 kB). */
export function runToEnd(cmd: string, args: string[], env: Record<string, string>, timeoutMs: number, cwd = repoRoot()): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-200_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs} ms]`;
      child.kill('SIGKILL');
      // 'close' waits for the pipes, which a process the command started may still hold.
      child.stdout.destroy();
      child.stderr.destroy();
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
