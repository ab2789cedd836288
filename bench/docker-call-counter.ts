// A proxy in front of the Docker engine's socket that counts the API calls made through it:
// point a client's socket path at it (PODS_DOCKER_SOCKET for the agent). Every request is
// passed on as it is, streams (logs, events) and upgraded connections (exec) included.
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface DockerCallCounter {
  /** The proxy's socket: give it to the client as its Docker socket. */
  socketPath: string;
  /** Calls since the last reset, by "METHOD /path" with ids and names replaced by ":id". */
  calls(): Map<string, number>;
  total(): number;
  reset(): void;
  close(): Promise<void>;
}

/** "/v1.44/containers/3f2a.../json?all=1" -> "/containers/:id/json" */
export function callShape(method: string, url: string): string {
  const p = (url.split('?')[0] ?? '').replace(/^\/v\d+\.\d+/, '');
  const parts = p.split('/').map((seg, i, all) => (i === 2 && ['containers', 'exec', 'images', 'networks'].includes(all[1] ?? '') && seg !== 'json' && seg !== 'create' ? ':id' : seg));
  return `${method} ${parts.join('/')}`;
}

export async function startDockerCallCounter(engineSocket = '/var/run/docker.sock'): Promise<DockerCallCounter> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pods-docker-counter-'));
  const socketPath = path.join(dir, 'docker.sock');
  let counts = new Map<string, number>();
  const count = (req: http.IncomingMessage) => {
    const shape = callShape(req.method ?? 'GET', req.url ?? '/');
    counts.set(shape, (counts.get(shape) ?? 0) + 1);
  };
  const open = new Set<Socket>();
  const server = http.createServer((req, res) => {
    count(req);
    const upstream = http.request({ socketPath: engineSocket, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  // exec's attach asks for an upgrade: count it, then join the two connections byte for byte.
  server.on('upgrade', (req: http.IncomingMessage, client: Socket, head: Buffer) => {
    count(req);
    const engine = connect(engineSocket, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`, ...Object.entries(req.headers).map(([k, v]) => `${k}: ${String(v)}`), '', ''];
      engine.write(lines.join('\r\n'));
      if (head.length) engine.write(head);
      engine.pipe(client);
      client.pipe(engine);
    });
    engine.on('error', () => client.destroy());
    client.on('error', () => engine.destroy());
  });
  server.on('connection', (s: Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    calls: () => new Map(counts),
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    reset: () => {
      counts = new Map();
    },
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
