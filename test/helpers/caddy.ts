// A real Caddy process for tests: admin endpoint on a free loopback port,
// state under a temp dir, nothing configured but the admin endpoint.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { freePort } from './ports.js';
import { stopChild, track } from './procs.js';
import { repoRoot } from './root.js';

export interface RunningCaddy {
  /** http://127.0.0.1:PORT of the admin API (unix:///DIR/admin.sock with `adminSocket`). */
  adminUrl: string;
  /** A free 127.0.0.1:PORT for the HTTP server that the code under test configures. */
  httpListen: string;
  /** http://<httpListen> */
  httpUrl: string;
  /** Stop Caddy and delete its temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Kill Caddy as a crash would (SIGKILL) and start it again on the same ports, admin-only. */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

/** The Caddy binary: $PODS_CADDY_BIN, else var/bin/caddy in the repository. */
export function caddyBin(): string {
  return process.env.PODS_CADDY_BIN ?? path.join(repoRoot(), 'var', 'bin', 'caddy');
}

/** For `test(..., { skip })`: a reason to skip when there is no Caddy binary, else false. */
export function skipWithoutCaddy(): string | false {
  // In CI a missing Caddy is a failure, never a quiet skip.
  if (process.env.CI) return false;
  const bin = caddyBin();
  return existsSync(bin) ? false : `no Caddy binary at ${bin} (run ops/build-caddy.sh or set PODS_CADDY_BIN)`;
}

/** `adminSocket`: the admin API on a unix socket in Caddy's temp dir instead of a TCP port. */
export async function startCaddy(opts: { adminSocket?: boolean } = {}): Promise<RunningCaddy> {
  const bin = caddyBin();
  const dir = await mkdtemp(path.join(tmpdir(), 'pods-caddy-'));
  const adminPort = await freePort();
  const httpPort = await freePort();
  const socket = path.join(dir, 'admin.sock');
  const adminUrl = opts.adminSocket ? `unix://${socket}` : `http://127.0.0.1:${adminPort}`;
  const configPath = path.join(dir, 'caddy.json');
  await writeFile(configPath, JSON.stringify({ admin: { listen: opts.adminSocket ? `unix/${socket}` : `127.0.0.1:${adminPort}` } }));

  let caddy: Launched | undefined;
  const launch = async (): Promise<void> => {
    caddy = spawnCaddy(bin, configPath, dir);
    await waitReady(caddy, adminUrl);
  };

  try {
    await launch();
  } catch (err) {
    if (caddy) await stopChild(caddy.proc, 'SIGKILL', 'Caddy');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  let stopped = false;
  return {
    adminUrl,
    httpListen: `127.0.0.1:${httpPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (caddy) await stopChild(caddy.proc, 'SIGTERM', 'Caddy');
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      if (stopped) throw new Error('restart() after stop()');
      if (caddy) await stopChild(caddy.proc, 'SIGKILL', 'Caddy');
      await launch();
    },
  };
}

interface Launched {
  proc: ChildProcess;
  /** Set when the binary could not be run at all (ENOENT, EACCES). */
  error?: Error;
  /** The last few KB of Caddy's log, for start-up failures. */
  log: string;
}

function spawnCaddy(bin: string, configPath: string, dir: string): Launched {
  const proc = spawn(bin, ['run', '--config', configPath], {
    // Autosave and certificate storage go to the temp dir, not the user's home.
    env: { ...process.env, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_DATA_HOME: path.join(dir, 'data') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const launched: Launched = { proc, log: '' };
  // Killed with the test process, so a failed run does not leave Caddy holding ports.
  track(proc);
  proc.once('error', (err) => {
    launched.error = err;
  });
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    launched.log = (launched.log + chunk).slice(-4000);
  });
  return launched;
}

async function waitReady(caddy: Launched, adminUrl: string): Promise<void> {
  const { proc } = caddy;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (caddy.error) throw new Error(`could not run Caddy: ${caddy.error.message}`);
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`Caddy exited during start-up:\n${caddy.log}`);
    }
    try {
      const unix = adminUrl.startsWith('unix://') ? adminUrl.slice('unix://'.length) : null;
      const res = await request(unix ? 'http://localhost/config/' : `${adminUrl}/config/`, {
        reset: true,
        headersTimeout: 1_000,
        bodyTimeout: 1_000,
        ...(unix ? { dispatcher: new Agent({ connect: { socketPath: unix } }) } : {}),
      });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Caddy admin at ${adminUrl} not ready after ${READY_TIMEOUT_MS} ms:\n${caddy.log}`);
}
