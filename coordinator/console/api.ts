// The console's one way to call the API: the user's token in X-Tapis-Token, the Tapis
// envelope unwrapped, and an error as an ApiError carrying the API's own message.

const TOKEN_KEY = 'pods.console.token';
const USER_KEY = 'pods.console.user';

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface Session {
  token: string;
  username: string;
}

/** Kept for this tab only: sessionStorage is cleared when the tab closes. */
export function loadSession(): Session | null {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const username = sessionStorage.getItem(USER_KEY);
  return token && username ? { token, username } : null;
}

export function saveSession(s: Session): void {
  sessionStorage.setItem(TOKEN_KEY, s.token);
  sessionStorage.setItem(USER_KEY, s.username);
}

export function clearSession(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
}

/** Called when the API says the token is no good (expired, revoked): back to the login form. */
let onUnauthorized: (message: string) => void = () => undefined;
export function setUnauthorizedHandler(fn: (message: string) => void): void {
  onUnauthorized = fn;
}

async function messageOf(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const env = JSON.parse(text) as { message?: unknown };
    if (typeof env.message === 'string' && env.message) return env.message;
  } catch {
    // not the envelope: fall through
  }
  return `${res.status} ${res.statusText}`.trim();
}

export async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const session = loadSession();
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (session) headers['X-Tapis-Token'] = session.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'the API did not answer; check your connection');
  }
  if (!res.ok) {
    const message = await messageOf(res);
    if (res.status === 401 && session) onUnauthorized(message);
    throw new ApiError(res.status, message);
  }
  const env = (await res.json()) as { result: T };
  return env.result;
}

/** POST /v3/oauth2/tokens: the password grant. */
export async function login(username: string, password: string): Promise<Session> {
  const res = await fetch('/v3/oauth2/tokens', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ grant_type: 'password', username, password }),
    cache: 'no-store',
  }).catch(() => null);
  if (!res) throw new ApiError(0, 'the API did not answer; check your connection');
  if (!res.ok) throw new ApiError(res.status, await messageOf(res));
  const env = (await res.json()) as { result: { access_token: { access_token: string } } };
  return { token: env.result.access_token.access_token, username };
}

export const podPath = (podId: string, rest = '') => `/v3/pods/${encodeURIComponent(podId)}${rest}`;
