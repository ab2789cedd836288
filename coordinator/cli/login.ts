import { ApiClient } from './api-client.js';
import { CliError, ExitCode, usageError } from './errors.js';
import { fields } from './format.js';
import type { Invocation } from './pod-commands.js';
import { ask, askHidden, interactive, readStdinLine } from './prompt.js';
import { currentSession, normalizeBaseUrl, readSession, removeSession, writeSession, type Session } from './session.js';

// `pods login`, `logout`, `whoami`. Login asks on a terminal for what the flags and the
// environment (PODS_BASE_URL, PODS_USERNAME, PODS_PASSWORD: var/up.env's names) do not give;
// without a terminal the password is the first line of stdin. A password is never an argument.

/** The claims of a JWT, read without checking it (the API checks it): for the tenant shown. */
function claimsOf(token: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

export async function login(inv: Invocation, env: NodeJS.ProcessEnv): Promise<void> {
  if (inv.positionals.length) throw usageError(`login: unexpected argument "${inv.positionals[0]}" (the password is read from stdin or PODS_PASSWORD, never an argument)`);
  const before = await readSession(env).catch(() => null);
  const tty = interactive();
  let url = (inv.values.url as string | undefined) ?? env.PODS_BASE_URL;
  if (!url && tty) url = await ask("The Pods API's base URL", before?.base_url);
  if (!url) throw usageError('login: give the API base URL with --url or PODS_BASE_URL');
  const baseUrl = normalizeBaseUrl(url);
  let username = (inv.values.user as string | undefined) ?? env.PODS_USERNAME;
  if (!username && tty) username = await ask('Username', before?.base_url === baseUrl ? before.username : undefined);
  if (!username) throw usageError('login: give the username with --user or PODS_USERNAME');
  let password = env.PODS_PASSWORD;
  if (password === undefined) password = tty ? await askHidden('Password') : await readStdinLine();
  if (!password) throw usageError('login: no password (type it at the prompt, pipe it on stdin or set PODS_PASSWORD)');

  const api = ApiClient.anonymous(baseUrl);
  let result: any;
  try {
    result = await api.result('POST', '/v3/oauth2/tokens', { username, password, grant_type: 'password' });
  } catch (err) {
    if (err instanceof CliError && err.exitCode === ExitCode.API_ERROR) throw new CliError(ExitCode.API_ERROR, `login to ${baseUrl} failed: ${err.message}`);
    throw err;
  }
  const token = result?.access_token;
  if (typeof token?.access_token !== 'string') throw new CliError(ExitCode.API_ERROR, `${baseUrl} answered the login without a token: is it a Pods API?`);
  const tenant = claimsOf(token.access_token)['tapis/tenant_id'];
  const session: Session = {
    base_url: baseUrl,
    username,
    ...(typeof tenant === 'string' ? { tenant } : {}),
    access_token: token.access_token,
    ...(typeof token.expires_at === 'string' ? { expires_at: token.expires_at } : {}),
  };
  const file = await writeSession(env, session);
  if (inv.json) {
    process.stdout.write(`${JSON.stringify({ base_url: baseUrl, username, tenant: session.tenant ?? null, expires_at: session.expires_at ?? null, session_file: file }, null, 2)}\n`);
  } else {
    process.stdout.write(`logged in to ${baseUrl} as ${username}${session.tenant ? ` (tenant ${session.tenant})` : ''}; the token is valid until ${session.expires_at ?? 'it is revoked'}\n`);
  }
}

export async function logout(inv: Invocation, env: NodeJS.ProcessEnv): Promise<void> {
  const removed = await removeSession(env);
  if (inv.json) process.stdout.write(`${JSON.stringify({ logged_out: removed })}\n`);
  else process.stdout.write(removed ? 'logged out: the stored token is removed\n' : 'not logged in\n');
}

export async function whoami(inv: Invocation, env: NodeJS.ProcessEnv): Promise<void> {
  const s = await currentSession(env);
  const view = { base_url: s.base_url, username: s.username, tenant: s.tenant ?? null, expires_at: s.expires_at ?? null };
  if (inv.json) process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
  else process.stdout.write(`${fields([['api', s.base_url], ['username', s.username], ['tenant', s.tenant], ['expires', s.expires_at]])}\n`);
}
