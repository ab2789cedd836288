// Each shipped template's own client, as a user reaches the pod: psql and redis-cli through
// Caddy's TLS listener by SNI, the mariadb client on the pod's dedicated port, Neo4j's HTTP API
// through Caddy by Host (and Bolt's handshake through TLS by SNI), Jupyter's REST API through
// Caddy with the pod's password as its token. Shared by test/e2e/templates.test.ts and
// bench/templates.ts. Every secret goes in an environment variable or a header, never in argv.
import { connect } from 'node:tls';
import { request } from 'undici';
import { run } from './run.js';

/** A running pod as its user sees it: where it is served and its credentials. */
export interface PodAccess {
  podId: string;
  /** The pod's host name, {pod_id}.pods.{tenant}.{base_domain}. */
  host: string;
  /** Its networking, as GET /v3/pods/{id} shows it. */
  networking: Record<string, { url: string }>;
  username: string;
  password: string;
  /** Caddy's shared TLS port, and its HTTP URL. */
  tlsPort: number;
  httpUrl: string;
}

export interface TemplateClient {
  /** What the client is, for test names. */
  via: string;
  /** One query with the pod's credentials: true once the service answers it. */
  ping(p: PodAccess): Promise<boolean>;
  /** Store value under a name of the client's choosing; throws unless it was stored. */
  write(p: PodAccess, value: string): Promise<void>;
  /** What write stored (null when nothing or an error came back). */
  read(p: PodAccess): Promise<string | null>;
  /** The same query with a wrong password: true when it is refused. */
  refusesWrongPassword(p: PodAccess): Promise<boolean>;
}

const WRONG = 'not-the-password';

/** A dedicated port's number, from a url host:port. */
function portOf(url: string): number {
  return Number(url.split(':').at(-1));
}

// ---- postgres: psql, sslmode=require, by host name on the shared TLS port -------------------

function psql(p: PodAccess, sql: string, password = p.password) {
  return run('psql', [`hostaddr=127.0.0.1 host=${p.host} port=${p.tlsPort} user=${p.username} dbname=${p.podId} sslmode=require`, '-Atc', sql], {
    env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: '5' },
  });
}

const postgres: TemplateClient = {
  via: 'psql with sslmode=require by the pod host name',
  ping: async (p) => (await psql(p, 'SELECT 1')).out.trim() === '1',
  async write(p, value) {
    const r = await psql(p, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('${value}')`);
    if (r.code !== 0) throw new Error(`psql: ${r.out}`);
  },
  async read(p) {
    const r = await psql(p, 'SELECT v FROM kept');
    return r.code === 0 ? r.out.trim() : null;
  },
  refusesWrongPassword: async (p) => /password authentication failed/.test((await psql(p, 'SELECT 1', WRONG)).out),
};

// ---- redis: redis-cli over TLS by SNI ---------------------------------------------------

function redisCli(p: PodAccess, args: string[], password = p.password) {
  // REDISCLI_AUTH: redis-cli's own way to take the password from the environment.
  return run('redis-cli', ['--tls', '--sni', p.host, '--insecure', '-h', '127.0.0.1', '-p', String(p.tlsPort), ...args], { env: { REDISCLI_AUTH: password } });
}

const redis: TemplateClient = {
  via: 'redis-cli over TLS by SNI',
  ping: async (p) => (await redisCli(p, ['PING'])).out.trim() === 'PONG',
  async write(p, value) {
    const r = await redisCli(p, ['SET', 'kept', value]);
    if (r.out.trim() !== 'OK') throw new Error(`redis-cli SET: ${r.out}`);
  },
  async read(p) {
    const r = await redisCli(p, ['GET', 'kept']);
    return r.code === 0 ? r.out.trim() : null;
  },
  refusesWrongPassword: async (p) => /WRONGPASS|invalid password|NOAUTH/.test((await redisCli(p, ['PING'], WRONG)).out),
};

// ---- mariadb: the mariadb client on the pod's dedicated port ---------------------------

function mariadb(p: PodAccess, sql: string, password = p.password) {
  return run('mariadb', ['--protocol=tcp', '-h', '127.0.0.1', '-P', String(portOf(p.networking.default!.url)), '-u', p.username, '-D', p.podId, '--connect-timeout=5', '-N', '-B', '-e', sql], {
    env: { MYSQL_PWD: password },
  });
}

const mariadbClient: TemplateClient = {
  via: 'the mariadb client on the dedicated port',
  ping: async (p) => (await mariadb(p, 'SELECT 1')).out.trim() === '1',
  async write(p, value) {
    const r = await mariadb(p, `CREATE TABLE kept (v varchar(64)); INSERT INTO kept VALUES ('${value}')`);
    if (r.code !== 0) throw new Error(`mariadb: ${r.out}`);
  },
  async read(p) {
    const r = await mariadb(p, 'SELECT v FROM kept');
    return r.code === 0 ? r.out.trim() : null;
  },
  refusesWrongPassword: async (p) => /Access denied/.test((await mariadb(p, 'SELECT 1', WRONG)).out),
};

// ---- neo4j: the HTTP API through Caddy (the browser entry); Bolt by SNI ------------------

async function cypher(p: PodAccess, statement: string, password = p.password): Promise<{ status: number; body: any }> {
  try {
    const res = await request(`${p.httpUrl}/db/neo4j/tx/commit`, {
      method: 'POST',
      headers: {
        host: new URL(`http://${p.networking.browser!.url.replace(/^https?:\/\//, '')}`).host,
        'content-type': 'application/json',
        authorization: `Basic ${Buffer.from(`${p.username}:${password}`).toString('base64')}`,
      },
      body: JSON.stringify({ statements: [{ statement }] }),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: Caddy's or a proxy's page
    }
    return { status: res.statusCode, body };
  } catch (err) {
    return { status: 0, body: (err as Error).message };
  }
}

/** The first value of the first row, when the statement ran without errors. */
function firstValue(r: { status: number; body: any }): unknown {
  if (r.status !== 200 || r.body?.errors?.length) return undefined;
  return r.body?.results?.[0]?.data?.[0]?.row?.[0];
}

/**
 * Bolt's handshake through Caddy's TLS listener by the pod's host name: the magic and the
 * versions 5.0-5.4 offered; the server's answer is the version it picked (its major, 5).
 */
export function boltHandshake(p: PodAccess, timeoutMs = 5000): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: p.tlsPort, servername: p.host, rejectUnauthorized: false });
    const done = (v: number | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    let got = Buffer.alloc(0);
    socket.once('secureConnect', () => {
      socket.write(Buffer.from([0x60, 0x60, 0xb0, 0x17, 0, 4, 4, 5, 0, 0, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0]));
    });
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 4) done(got[3]!);
    });
    socket.once('error', () => done(null));
    socket.once('close', () => done(null));
  });
}

const neo4j: TemplateClient = {
  via: 'the HTTP API through Caddy, and Bolt by SNI',
  ping: async (p) => firstValue(await cypher(p, 'RETURN 1')) === 1,
  async write(p, value) {
    const r = await cypher(p, `CREATE (k:Kept {v: '${value}'}) RETURN k.v`);
    if (firstValue(r) !== value) throw new Error(`neo4j CREATE: ${r.status} ${JSON.stringify(r.body)}`);
  },
  async read(p) {
    const v = firstValue(await cypher(p, 'MATCH (k:Kept) RETURN k.v'));
    return typeof v === 'string' ? v : null;
  },
  refusesWrongPassword: async (p) => (await cypher(p, 'RETURN 1', WRONG)).status === 401,
};

// ---- jupyter: its REST API through Caddy, the pod's password as the token ----------------

async function contents(p: PodAccess, method: 'GET' | 'PUT', body?: object, token = p.password): Promise<{ status: number; body: any }> {
  try {
    const res = await request(`${p.httpUrl}/api/contents/kept.txt${method === 'GET' ? '?content=1&type=file&format=text' : ''}`, {
      method,
      headers: { host: p.host, authorization: `token ${token}`, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.statusCode, body: parsed };
  } catch (err) {
    return { status: 0, body: (err as Error).message };
  }
}

async function jupyterApi(p: PodAccess, token = p.password): Promise<number> {
  try {
    const res = await request(`${p.httpUrl}/api/status`, { headers: { host: p.host, authorization: `token ${token}` }, headersTimeout: 10_000, bodyTimeout: 10_000 });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 0;
  }
}

const jupyter: TemplateClient = {
  via: 'the Jupyter REST API through Caddy with the token',
  ping: async (p) => (await jupyterApi(p)) === 200,
  async write(p, value) {
    const r = await contents(p, 'PUT', { type: 'file', format: 'text', content: value });
    if (r.status !== 201 && r.status !== 200) throw new Error(`jupyter PUT /api/contents: ${r.status} ${JSON.stringify(r.body)}`);
  },
  async read(p) {
    const r = await contents(p, 'GET');
    return r.status === 200 && typeof r.body?.content === 'string' ? r.body.content : null;
  },
  refusesWrongPassword: async (p) => [401, 403].includes(await jupyterApi(p, WRONG)),
};

/** The client of each shipped template, by template id. */
export const TEMPLATE_CLIENTS: Record<string, TemplateClient> = { postgres, redis, mariadb: mariadbClient, neo4j, jupyter };
