import { mkdir, readFile, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { CliError, ExitCode } from './errors.js';

// The user's login: the API's base URL and a token, in $XDG_CONFIG_HOME/pods/session.json
// (~/.config/pods/ without it), readable by the user alone (mode 600, in a directory of mode 700).
// PODS_TOKEN (with PODS_BASE_URL) stands in for it, for scripts and a site admin's token.

export const Session = z.object({
  base_url: z.string(),
  username: z.string(),
  tenant: z.string().optional(),
  access_token: z.string(),
  /** ISO time; absent for a token given in PODS_TOKEN. */
  expires_at: z.string().optional(),
});
export type Session = z.infer<typeof Session>;

export function configDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(homedir(), '.config');
  return path.join(base, 'pods');
}

export const sessionFile = (env: NodeJS.ProcessEnv) => path.join(configDir(env), 'session.json');

/** The stored session, or null when there is none; a file that cannot be read as one is an error that says where it is. */
export async function readSession(env: NodeJS.ProcessEnv): Promise<Session | null> {
  const file = sessionFile(env);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(ExitCode.NOT_LOGGED_IN, `cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const s = Session.safeParse(parsed);
  if (!s.success) throw new CliError(ExitCode.NOT_LOGGED_IN, `${file} is not a pods login; run \`pods login\` again`);
  return s.data;
}

/** Written to a new file of mode 600 and renamed over the old one, so no reader sees half a token. */
export async function writeSession(env: NodeJS.ProcessEnv, session: Session): Promise<string> {
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = sessionFile(env);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(session, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600); // a umask cannot widen it, but a leftover file of the same name could be wider
  await rename(tmp, file);
  return file;
}

export async function removeSession(env: NodeJS.ProcessEnv): Promise<boolean> {
  const file = sessionFile(env);
  try {
    await rm(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * The credentials a command uses: PODS_TOKEN (with PODS_BASE_URL, or the stored login's URL)
 * when set, else the stored login, which must not have expired.
 */
export async function currentSession(env: NodeJS.ProcessEnv, now = Date.now()): Promise<Session> {
  // With PODS_TOKEN the stored login only lends its URL: a broken file is no reason to fail.
  const stored = await readSession(env).catch((err: unknown) => (env.PODS_TOKEN ? null : Promise.reject(err)));
  if (env.PODS_TOKEN) {
    const baseUrl = env.PODS_BASE_URL ?? stored?.base_url;
    if (!baseUrl) throw new CliError(ExitCode.USAGE, 'PODS_TOKEN is set but no API URL: set PODS_BASE_URL too');
    return { base_url: normalizeBaseUrl(baseUrl), username: '(PODS_TOKEN)', access_token: env.PODS_TOKEN };
  }
  if (!stored) throw new CliError(ExitCode.NOT_LOGGED_IN, 'not logged in: run `pods login` (or set PODS_TOKEN and PODS_BASE_URL)');
  if (stored.expires_at && Date.parse(stored.expires_at) <= now) {
    throw new CliError(ExitCode.NOT_LOGGED_IN, `your login to ${stored.base_url} as ${stored.username} expired at ${stored.expires_at}: run \`pods login\``);
  }
  return stored;
}

/** An http(s) URL without a trailing slash; anything else is a usage error. */
export function normalizeBaseUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new CliError(ExitCode.USAGE, `"${raw}" is not a URL; give the API's base URL, such as https://pods.example.org`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError(ExitCode.USAGE, `"${raw}": the API's base URL must start with http:// or https://`);
  return u.href.replace(/\/+$/, '');
}
