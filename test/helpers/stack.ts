// The whole service on this machine for end-to-end tests: a real Redis, a real Caddy,
// the real coordinator and agent processes (compiled), and the host's real dockerd.
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { startCaddy, type RunningCaddy } from './caddy.js';
import { freePort } from './ports.js';
import { Proc, waitFor } from './procs.js';
import { startRedis, type TestRedis } from './redis.js';
import { repoRoot } from './root.js';

export { repoRoot };

export const TEST_IMAGE = 'pods-test/httpd';


export interface ApiResponse {
  status: number;
  contentType: string;
  body: { status: string; message: string; result: any; version: string; metadata: object };
}

export interface Stack {
  apiUrl: string;
  /** The coordinator's port (on 127.0.0.1): another tenant can be reached at http://localhost:{port}. */
  port: number;
  adminToken: string;
  userToken: string;
  otherTenantToken: string;
  nodeId: string;
  tenant: string;
  /** The coordinator's Redis key prefix (PODS_REDIS_PREFIX). */
  redisPrefix: string;
  baseDomain: string;
  redis: TestRedis;
  caddy: RunningCaddy;
  coordinator: Proc;
  agent: Proc;
  api(method: string, path: string, opts?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<ApiResponse>;
  /** GET through Caddy with the pod's Host header. */
  viaCaddy(host: string): Promise<{ status: number; body: string }>;
  waitStatus(podId: string, status: string, timeoutMs?: number): Promise<any>;
  /** Add a tenant through the site-admin API (POST /v3/admin/tenants); throws unless 200. */
  addTenant(tenantId: string, baseUrl: string): Promise<void>;
  /** Add a user through the site-admin API (POST /v3/admin/users); throws unless 200. */
  addUser(tenantId: string, username: string, password: string, admin?: boolean): Promise<void>;
  /** Ids of this stack's containers for a pod (any state), on the first node or the one named. */
  containers(podId: string, onNode?: string): Promise<string[]>;
  /** Another agent (with a Caddy of its own) on this machine's Docker engine: a second host. */
  addAgent(suffix: string, opts?: { token?: string; waitConnected?: boolean; coordinatorPort?: number }): Promise<{ nodeId: string; agent: Proc; caddy: RunningCaddy }>;
  /** A second coordinator process on the same Redis (same configuration, its own port). */
  addCoordinator(): Promise<{ port: number; proc: Proc; apiUrl: string }>;
  stop(): Promise<void>;
}

// Calls that get no answer fail the test after this long, rather than waiting undici's
// five minutes per call (the coordinator itself gives up on a request after 30 s).
const CALL_TIMEOUTS = { headersTimeout: 60_000, bodyTimeout: 60_000 };

const dockerSocket = new Agent({ connect: { socketPath: '/var/run/docker.sock' } });

/** A call to the host's Docker engine API, for checking what really runs. */
export async function docker(method: string, pathAndQuery: string): Promise<any> {
  const res = await request(`http://docker${pathAndQuery}`, { method: method as any, dispatcher: dockerSocket, ...CALL_TIMEOUTS });
  const text = await res.body.text();
  return text ? JSON.parse(text) : null;
}

export async function startStack(opts: { coordinatorEnv?: Record<string, string>; agentEnv?: Record<string, string> } = {}): Promise<Stack> {
  const root = repoRoot();
  const redis = await startRedis();
  const caddy = await startCaddy().catch(async (err) => {
    await redis.stop();
    throw err;
  });
  const port = await freePort();
  const apiUrl = `http://127.0.0.1:${port}`;
  const id = randomBytes(3).toString('hex');
  const adminToken = `admin-${randomBytes(16).toString('hex')}`;
  const userToken = `user-${randomBytes(16).toString('hex')}`;
  const otherTenantToken = `other-${randomBytes(16).toString('hex')}`;
  const nodeToken = `node-${randomBytes(16).toString('hex')}`;
  const tenant = `t${id}`;
  const nodeId = `test-${id}`;
  const redisPrefix = `test${id}:`;
  const baseDomain = 'localhost';
  const coordinatorEnv = (listenPort: number): Record<string, string> => ({
    PODS_LISTEN_HOST: '127.0.0.1',
    PODS_LISTEN_PORT: String(listenPort),
    PODS_REDIS_URL: redis.url,
    PODS_REDIS_PREFIX: redisPrefix,
    PODS_TENANT: tenant,
    PODS_BASE_DOMAIN: baseDomain,
    PODS_ADMIN_TOKEN: adminToken,
    PODS_EXTRA_TOKENS: JSON.stringify([
      { token: userToken, tenant, username: 'alice' },
      { token: otherTenantToken, tenant: `o${id}`, username: 'mallory' },
    ]),
    PODS_NODE_TOKENS: `${nodeId}=${nodeToken}`,
    PODS_MIN_TIME_TO_STOP_S: '2',
    PODS_RECONCILE_INTERVAL_MS: '250',
    PODS_AGENT_PING_MS: '1000',
    PODS_LOG_LEVEL: 'info',
    ...opts.coordinatorEnv,
  });
  const coordinatorProc = (listenPort: number) => new Proc('coordinator', process.execPath, [path.join(root, 'dist/coordinator/main.js')], coordinatorEnv(listenPort)).start();
  const coordinator = coordinatorProc(port);
  const agentProc = (id: string, c: RunningCaddy, token: string, env: Record<string, string> = {}, coordinatorPort = port) =>
    new Proc('agent', process.execPath, [path.join(root, 'dist/agent/main.js')], {
      PODS_COORDINATOR_URL: `ws://127.0.0.1:${coordinatorPort}/v3/agents/connect`,
      PODS_NODE_TOKEN: token,
      PODS_NODE_ID: id,
      PODS_CADDY_ADMIN_URL: c.adminUrl,
      PODS_CADDY_HTTP_LISTEN: c.httpListen,
      PODS_HEARTBEAT_MS: '1000',
      PODS_PROBE_INTERVAL_MS: '500',
      PODS_CADDY_CHECK_MS: '500',
      PODS_LOG_LEVEL: 'info',
      // Pods' data, volumes and snapshots of this stack's hosts, apart from any other stack's.
      PODS_DATA_ROOT: path.join(tmpdir(), `pods-test-data-${nodeId}`, id),
      // The agent's firewall rules need root; elsewhere pods run without them, with a warning.
      PODS_POD_ISOLATION: process.getuid?.() === 0 ? 'require' : 'best-effort',
      ...opts.agentEnv,
      ...env,
    }).start();
  const agent = agentProc(nodeId, caddy, nodeToken);
  const extra: Array<{ nodeId: string; agent: Proc; caddy: RunningCaddy }> = [];
  const coordinators: Proc[] = [];
  const removeNodeContainers = async (id: string) => {
    const filters = encodeURIComponent(JSON.stringify({ label: [`pods.node=${id}`] }));
    const list = (await docker('GET', `/containers/json?all=1&filters=${filters}`)) as Array<{ Id: string }>;
    for (const c of list) await docker('DELETE', `/containers/${c.Id}?force=1`).catch(() => undefined);
  };

  const api: Stack['api'] = async (method, p, o = {}) => {
    const token = o.token === undefined ? adminToken : o.token;
    const headers: Record<string, string> = { ...(token ? { 'x-tapis-token': token } : {}), ...o.headers };
    let body: string | undefined = o.raw;
    if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] = 'application/json';
    }
    const res = await request(`${apiUrl}${p}`, { method: method as any, headers, body, ...CALL_TIMEOUTS });
    const text = await res.body.text();
    let parsed: any;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${p} answered ${res.statusCode} with a non-JSON body: ${text.slice(0, 200)}`);
    }
    return { status: res.statusCode, contentType: String(res.headers['content-type']), body: parsed };
  };

  const stack: Stack = {
    apiUrl, port, adminToken, userToken, otherTenantToken, nodeId, tenant, redisPrefix, baseDomain, redis, caddy, coordinator, agent, api,
    async viaCaddy(host) {
      const res = await request(`${caddy.httpUrl}/`, { headers: { host }, headersTimeout: 5000, bodyTimeout: 5000 });
      return { status: res.statusCode, body: await res.body.text() };
    },
    async waitStatus(podId, status, timeoutMs = 30_000) {
      let last = '';
      try {
        return await waitFor(`pod ${podId} to be ${status}`, async () => {
          const r = await api('GET', `/v3/pods/${podId}`);
          last = r.body.result?.status ?? `${r.status} ${r.body.message}`;
          return last === status ? r.body.result : null;
        }, timeoutMs, 50);
      } catch (err) {
        throw new Error(`${(err as Error).message} (last seen: ${last})\n--- coordinator:\n${coordinator.output.slice(-3000)}\n--- agent:\n${agent.output.slice(-3000)}`);
      }
    },
    async addTenant(tenantId, baseUrl) {
      const r = await api('POST', '/v3/admin/tenants', { body: { tenant_id: tenantId, base_url: baseUrl } });
      if (r.status !== 200) throw new Error(`could not add tenant ${tenantId}: ${r.status} ${r.body.message}`);
    },
    async addUser(tenantId, username, password, admin = false) {
      const r = await api('POST', '/v3/admin/users', { body: { tenant_id: tenantId, username, password, admin } });
      if (r.status !== 200) throw new Error(`could not add user ${username} to ${tenantId}: ${r.status} ${r.body.message}`);
    },
    async containers(podId, onNode = nodeId) {
      const filters = encodeURIComponent(JSON.stringify({ label: [`pods.node=${onNode}`, `pods.pod_id=${podId}`] }));
      const list = (await docker('GET', `/containers/json?all=1&filters=${filters}`)) as Array<{ Id: string }>;
      return list.map((c) => c.Id);
    },
    async addCoordinator() {
      const p = await freePort();
      const proc = coordinatorProc(p);
      coordinators.push(proc);
      await waitFor('the second coordinator to answer', async () => {
        const r = await request(`http://127.0.0.1:${p}/v3/pods/healthcheck`).catch(() => null);
        await r?.body.dump();
        return r?.statusCode === 200;
      }, 20_000);
      return { port: p, proc, apiUrl: `http://127.0.0.1:${p}` };
    },
    async addAgent(suffix, o = {}) {
      const id = `${nodeId}-${suffix}`;
      const c = await startCaddy();
      // A node token is bound to one node: issue this node its own, as a site admin would.
      let token = o.token;
      if (!token) {
        const issued = await api('POST', '/v3/admin/node-tokens', { body: { node_id: id } });
        if (issued.status !== 200) throw new Error(`could not issue a node token for ${id}: ${issued.body.message}`);
        token = issued.body.result.token as string;
      }
      const a = agentProc(id, c, token, {}, o.coordinatorPort);
      extra.push({ nodeId: id, agent: a, caddy: c });
      if (o.waitConnected !== false) {
        await waitFor(`agent ${id} to connect`, async () => a.output.includes('connected to coordinator'), 20_000).catch((err) => {
          throw new Error(`${(err as Error).message}\n${a.output}`);
        });
      }
      return { nodeId: id, agent: a, caddy: c };
    },
    async stop() {
      // Every step runs even when one before it failed: a process left running keeps the test file alive.
      const steps = [
        ...extra.map((x) => () => x.agent.kill('SIGTERM')),
        ...coordinators.map((x) => () => x.kill('SIGTERM')),
        () => agent.kill('SIGTERM'),
        () => coordinator.kill('SIGTERM'),
        // Remove whatever this stack's nodes left behind.
        ...[nodeId, ...extra.map((x) => x.nodeId)].map((id) => () => removeNodeContainers(id)),
        ...extra.map((x) => () => x.caddy.stop()),
        () => caddy.stop(),
        () => redis.stop(),
      ];
      const failed: Error[] = [];
      for (const step of steps) await step().catch((err: Error) => failed.push(err));
      if (failed.length) throw new Error(`stopping the stack: ${failed.map((err) => err.message).join('; ')}`);
    },
  };

  try {
    await waitFor('the coordinator to answer', async () => (await api('GET', '/v3/pods/healthcheck', { token: null })).status === 200, 20_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${coordinator.output}`);
    });
    await waitFor('the agent to connect', async () => agent.output.includes('connected to coordinator'), 20_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${agent.output}`);
    });
    const added = await api('POST', '/v3/pods/images', { body: { image: TEST_IMAGE, description: 'test image' } });
    if (added.status !== 200) throw new Error(`could not allow the test image: ${added.body.message}`);
  } catch (err) {
    // The caller never gets the stack to stop: stop it here, or its processes outlive the test.
    await stack.stop().catch(() => undefined);
    throw err;
  }
  return stack;
}
