import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports are chosen from 10000-19999: below the kernel's ephemeral range (see ephemeralStart) and
 * the dedicated TCP ports pods get (20000-20999 by default; tests give theirs within 20000-32020).
 */
const LOWEST = 10_000;
const HIGHEST = Math.min(20_000, ephemeralStart());
/** The ports handed out by this process: none is handed out twice. */
const handedOut = new Set<number>();

/**
 * Where the kernel's ephemeral ports start (ip_local_port_range): what outgoing connections
 * are given. A port chosen below it is not taken by one of them between our choosing it and
 * the process told of it binding it, as a port the kernel handed us for port 0 could be.
 */
function ephemeralStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) && start > 11_000 ? start : 32_768;
  } catch {
    return 32_768;
  }
}

/** Whether 127.0.0.1:port can be listened on now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 that is free now, for processes that must be told their port up
 * front (Caddy, a restarted server); anything in this process should listen on port 0 itself.
 * Chosen at random (see LOWEST) and never handed out twice by this process, so neither an
 * outgoing connection nor another freePort() of this process takes it before the process it is
 * meant for binds it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST));
    if (handedOut.has(port)) continue;
    if (!(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free TCP port on 127.0.0.1 between ${LOWEST} and ${HIGHEST}`);
}
