// Site administration on the coordinator's host, straight against Redis with the coordinator's
// own configuration (PODS_* environment variables): `pods admin <command>` (the `pods` CLI,
// coordinator/cli/pods.ts), also `npm run pods -- <command>` and `node dist/coordinator/cli.js <command>`.
//
//   user add <username> [--tenant T] [--admin] [--site-admin]   password from PODS_NEW_PASSWORD or stdin
//   user passwd <username> [--tenant T]                         the same; ends the user's tokens
//   user disable|enable|delete <username> [--tenant T]
//   user list [--tenant T]
//   tenant add <tenant_id> <base_url>
//   tenant list
//   node list | node cordon|uncordon|drain <node_id>
//   node token add --node NODE_ID | node token list | node token revoke <token_id>
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadCoordinatorConfig } from '../shared/config.js';
import { createLogger } from '../shared/log.js';
import { connectRedis } from './store/redis.js';
import { NodeId } from '../shared/protocol.js';
import { Username } from './store/users.js';
import { openStores } from './stores.js';
import { CliError, ExitCode, usageError } from './cli/errors.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The admin commands, as `pods help` lists them. */
export const ADMIN_USAGE = [
  'admin user add USERNAME [--tenant T] [--admin] [--site-admin]   (password from PODS_NEW_PASSWORD or stdin)',
  'admin user passwd|disable|enable|delete USERNAME [--tenant T]',
  'admin user list [--tenant T]',
  'admin tenant add TENANT_ID BASE_URL | admin tenant list',
  'admin node list | admin node cordon|uncordon|drain NODE_ID',
  'admin node token add --node NODE_ID | admin node token list | admin node token revoke TOKEN_ID',
];

function usage(): never {
  throw usageError('admin: unknown or incomplete command (`pods help` lists them)');
}

/** Runs one admin command (the words after `pods admin`); a usage error is a CliError of ExitCode.USAGE. */
export async function runAdmin(args: string[]): Promise<void> {
  const [what, verb, ...rest] = args;
  if (!what || !verb) usage();
  // The CLI needs Redis only, but the same config loader, so it shares the coordinator's env file.
  const config = loadCoordinatorConfig(process.env);
  const redis = await connectRedis(config.redisUrl, createLogger('cli', 'warn'));
  try {
    const s = await openStores(redis, config);
    const tenant = flag(rest, '--tenant') ?? config.tenant;
    const newPassword = async () => {
      const password = process.env.PODS_NEW_PASSWORD ?? (await readStdin());
      if (password.length < 8) throw new Error('password: must be at least 8 characters');
      return password;
    };
    if (what === 'user' && verb === 'add') {
      const username = Username.safeParse(rest[0]);
      if (!username.success) throw new Error(`username: ${username.error.issues[0]?.message}`);
      if (!(await s.tenants.get(tenant))) throw new Error(`tenant "${tenant}" does not exist`);
      const site = rest.includes('--site-admin');
      const rec = await s.users.create(tenant, username.data, await newPassword(), { admin: site || rest.includes('--admin'), site_admin: site });
      if (!rec) throw new Error(`user ${username.data} already exists in tenant ${tenant}; use \`user passwd\` to change its password`);
      console.log(`user ${username.data} added to tenant ${tenant}`);
    } else if (what === 'user' && ['passwd', 'disable', 'enable', 'delete'].includes(verb)) {
      const username = rest[0];
      if (!username) usage();
      const done =
        verb === 'delete'
          ? await s.users.remove(tenant, username)
          : await s.users.update(tenant, username, verb === 'passwd' ? { password: await newPassword() } : { disabled: verb === 'disable' });
      if (!done) throw new Error(`user ${username} was not found in tenant ${tenant}`);
      console.log(`user ${username} of tenant ${tenant}: ${verb} done`);
    } else if (what === 'user' && verb === 'list') {
      for (const u of await s.users.list(tenant)) console.log([u.username, u.site_admin ? 'site admin' : u.admin ? 'admin' : '', u.disabled ? 'disabled' : ''].filter(Boolean).join('\t'));
    } else if (what === 'tenant' && verb === 'add') {
      const [id, baseUrl] = rest;
      if (!id || !baseUrl) usage();
      const r = await s.tenants.add({ tenant_id: id, base_url: baseUrl, description: '', created_by: 'cli' });
      if (r !== 'added') throw new Error(r === 'id-taken' ? `tenant ${id} already exists` : `another tenant already uses ${baseUrl}`);
      console.log(`tenant ${id} added at ${baseUrl}`);
    } else if (what === 'tenant' && verb === 'list') {
      for (const t of await s.tenants.list()) console.log(`${t.tenant_id}\t${t.base_url}`);
    } else if (what === 'node' && verb === 'list') {
      const admin = await s.nodes.admins();
      for (const n of await s.nodes.list()) {
        const a = admin.get(n.nodeId);
        const flags = [a?.cordoned && 'cordoned', a?.draining && 'draining', n.disconnectedAt && `disconnected since ${n.disconnectedAt}`].filter(Boolean).join(', ');
        console.log(`${n.nodeId}\t${n.capacity.cpuMilli}m CPU\t${n.capacity.memoryMb} MiB\tlast heartbeat ${n.lastHeartbeat}${flags ? `\t${flags}` : ''}`);
      }
    } else if (what === 'node' && ['cordon', 'uncordon', 'drain'].includes(verb)) {
      const nodeId = rest[0];
      if (!nodeId || !(await s.nodes.get(nodeId))) throw new Error(`node "${nodeId ?? ''}" was not found`);
      const cur = await s.nodes.admin(nodeId);
      await s.nodes.setAdmin(nodeId, verb === 'cordon' ? { ...cur, cordoned: true } : verb === 'drain' ? { ...cur, cordoned: true, draining: true } : { ...cur, cordoned: false, draining: false });
      console.log(`node ${nodeId}: ${verb} done (the coordinator acts on it within a second)`);
    } else if (what === 'node' && verb === 'token') {
      const [action, arg] = rest;
      if (action === 'add') {
        const nodeId = NodeId.safeParse(flag(rest, '--node'));
        if (!nodeId.success) throw new Error(`--node: a node token is bound to one node id; ${nodeId.error.issues[0]?.message}`);
        const { record, token } = await s.nodes.issueToken(nodeId.data, 'cli');
        console.log(`token ${record.token_id} for node ${record.node_id} (shown only now):\n${token}`);
      } else if (action === 'list') {
        for (const t of await s.nodes.tokens()) console.log(`${t.token_id}\t${t.node_id ?? '(any node)'}\t${t.created}\t${t.created_by}`);
      } else if (action === 'revoke' && arg) {
        if (!(await s.nodes.revokeToken(arg))) throw new Error(`node token "${arg}" was not found`);
        console.log(`token ${arg} revoked; its agent is cut off now`);
      } else usage();
    } else usage();
  } finally {
    await redis.quit();
  }
}

// Run directly (node dist/coordinator/cli.js ...): the admin commands without the `admin` word.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  runAdmin(process.argv.slice(2)).catch((err) => {
    console.error((err as Error).message);
    if (err instanceof CliError && err.exitCode === ExitCode.USAGE) console.error(ADMIN_USAGE.map((l) => `usage: ${l.replace(/^admin /, '')}`).join('\n'));
    process.exit(err instanceof CliError ? err.exitCode : ExitCode.API_ERROR);
  });
}
