import { connect } from 'node:net';

/** Whether a TCP connection to host:port opens within `timeoutMs`. */
export function tcpProbe(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Probe until the port answers or `deadlineMs` passes; true when it answered. */
export async function waitForPort(host: string, port: number, deadlineMs: number, everyMs = 25): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (await tcpProbe(host, port, Math.min(1000, Math.max(50, end - Date.now())))) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}
