import { connect } from 'node:net';
import { request } from 'undici';
import type { HealthCheck } from '../shared/pod.js';

// One run of a pod's health check (shared/pod.ts HealthCheck): an HTTP GET of a path on one
// of its networking ports (through the port published on this host), a TCP connect to one, or
// a command run in the container. The answer is null when it passed, else why it failed.

export interface CheckTarget {
  /** The address published ports listen on. */
  host: string;
  /** The host port a container port is published on, if it is. */
  hostPort(containerPort: number): number | undefined;
  exec(cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }>;
}

export async function runCheck(check: HealthCheck, target: CheckTarget): Promise<string | null> {
  const timeoutMs = check.timeout_seconds * 1000;
  if (check.exec) {
    const r = await target.exec(check.exec.command, timeoutMs).catch((err: Error) => ({ exitCode: -1, output: err.message }));
    return r.exitCode === 0 ? null : `${check.exec.command[0]} exited with code ${r.exitCode}${r.output.trim() ? `: ${r.output.trim().slice(-200)}` : ''}`;
  }
  const port = (check.http ?? check.tcp)!.port;
  const hostPort = target.hostPort(port);
  if (!hostPort) return `port ${port} is not published`;
  if (check.http) {
    try {
      const res = await request(`http://${target.host}:${hostPort}${check.http.path}`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, reset: true });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 400 ? null : `GET ${check.http.path} answered ${res.statusCode}`;
    } catch (err) {
      return `GET ${check.http.path} failed: ${(err as Error).message}`;
    }
  }
  return new Promise((resolve) => {
    const s = connect({ host: target.host, port: hostPort, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(`port ${port}: no connection within ${check.timeout_seconds} s`);
    });
    s.once('error', (err) => resolve(`port ${port}: ${err.message}`));
  });
}

/** The pause before liveness checks resume after the nth restart: 10 s, doubling, at most 5 min. */
export function restartBackoffMs(restarts: number): number {
  return Math.min(300_000, 10_000 * 2 ** Math.max(0, restarts - 1));
}
