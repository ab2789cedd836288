import { CliError, ExitCode } from './errors.js';
import type { Session } from './session.js';

// The CLI's one way to talk to the API: the Tapis envelope in, one CliError out for every way a
// call can fail, with the exit code that says which way.

const TIMEOUT_MS = 30_000;

export interface Envelope<T = any> {
  status: string;
  message: string;
  result: T;
  metadata?: Record<string, unknown>;
}

/** Why fetch failed, in the words of the system call (ECONNREFUSED, ENOTFOUND...) when there is one. */
function unreachable(baseUrl: string, err: unknown): CliError {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const why = e.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
  return new CliError(ExitCode.UNREACHABLE, `cannot reach the API at ${baseUrl}: ${why}`);
}

export class ApiClient {
  private baseUrl = '';
  private token: string | null = null;
  private loaded: Promise<void> | null = null;

  /** A client of the login `session` gives, read on the first call (so a usage error is found before a missing login). */
  constructor(private readonly session: () => Promise<Pick<Session, 'base_url' | 'access_token'> | { base_url: string; access_token: null }>) {}

  /** A client without a token (for the login itself). */
  static anonymous(baseUrl: string): ApiClient {
    return new ApiClient(async () => ({ base_url: baseUrl, access_token: null }));
  }

  private async load(): Promise<void> {
    this.loaded ??= this.session().then((s) => {
      this.baseUrl = s.base_url;
      this.token = s.access_token;
    });
    await this.loaded;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { 'x-tapis-token': this.token } : {}), ...extra };
  }

  /** The envelope of a successful call; an error envelope becomes a CliError carrying its message. */
  async call<T = any>(method: string, path: string, body?: unknown): Promise<Envelope<T>> {
    await this.load();
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      throw unreachable(this.baseUrl, err);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw unreachable(this.baseUrl, err);
    }
    let env: Envelope<T> | null = null;
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && typeof parsed.status === 'string' && typeof parsed.message === 'string') env = parsed;
    } catch {
      env = null;
    }
    if (!env) {
      // A proxy's own page (502, 503, 504) means the API behind it is not there.
      const code = res.status >= 502 && res.status <= 504 ? ExitCode.UNREACHABLE : ExitCode.API_ERROR;
      throw new CliError(code, `${this.baseUrl} answered ${method} ${path} with HTTP ${res.status}, not the Pods API's JSON`);
    }
    if (res.ok && env.status === 'success') return env;
    if (res.status === 401 && this.token) throw new CliError(ExitCode.NOT_LOGGED_IN, `${env.message}: run \`pods login\``);
    throw new CliError(ExitCode.API_ERROR, env.message || `HTTP ${res.status}`);
  }

  async result<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.call<T>(method, path, body)).result;
  }

  /**
   * A server-sent events stream: each event as it arrives, until the server ends it. Errors
   * before the stream starts are the same as call()'s.
   */
  async *events(path: string, lastEventId?: string): AsyncGenerator<SseEvent> {
    await this.load();
    // A deadline for the answer's headers only: the stream itself may be quiet for as long as the pod is.
    const abort = new AbortController();
    const deadline = setTimeout(() => abort.abort(Object.assign(new Error('timeout'), { name: 'TimeoutError' })), TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        headers: this.headers({ accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) }),
        signal: abort.signal,
      });
    } catch (err) {
      throw unreachable(this.baseUrl, abort.signal.aborted ? abort.signal.reason : err);
    } finally {
      clearTimeout(deadline);
    }
    if (!res.ok || !/^text\/event-stream/.test(res.headers.get('content-type') ?? '') || !res.body) {
      // Read as an envelope for its message (and exit code).
      const text = await res.text().catch(() => '');
      let message = `HTTP ${res.status}`;
      try {
        message = JSON.parse(text).message ?? message;
      } catch {
        // not JSON: the status says enough
      }
      if (res.status === 401 && this.token) throw new CliError(ExitCode.NOT_LOGGED_IN, `${message}: run \`pods login\``);
      throw new CliError(ExitCode.API_ERROR, message);
    }
    yield* parseSse(res.body);
  }
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string[];
}

/** Splits a text/event-stream body into events (comments dropped, `data` lines kept in order). */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const e: SseEvent = { data: [] };
      let any = false;
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') e.data.push(value);
        else if (field === 'id') e.id = value;
        else if (field === 'event') e.event = value;
        else continue;
        any = true;
      }
      if (any) yield e;
    }
  }
}
