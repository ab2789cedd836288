// Stable error codes: callers switch on `code`, never on message text.
// `status` is the HTTP status the API answers with; `expose` says whether the
// message is safe to show to a user (otherwise a generic text is shown).

export const ErrorCodes = {
  BAD_REQUEST: { status: 400, expose: true },
  UNAUTHORIZED: { status: 401, expose: true },
  FORBIDDEN: { status: 403, expose: true },
  NOT_FOUND: { status: 404, expose: true },
  CONFLICT: { status: 409, expose: true },
  PAYLOAD_TOO_LARGE: { status: 413, expose: true },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, expose: true },
  TOO_MANY_REQUESTS: { status: 429, expose: true },
  NOT_IMPLEMENTED: { status: 501, expose: true },
  UNAVAILABLE: { status: 503, expose: true },
  INTERNAL: { status: 500, expose: false },
  // Wire protocol between coordinator and agent.
  PROTO_MALFORMED: { status: 400, expose: true },
  PROTO_UNKNOWN_TYPE: { status: 400, expose: true },
  PROTO_BAD_PAYLOAD: { status: 400, expose: true },
  PROTO_TOO_LARGE: { status: 413, expose: true },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class PodsError extends Error {
  readonly code: ErrorCode;
  /** Seconds the caller should wait before trying again (sent as Retry-After). */
  readonly retryAfterS?: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterS?: number }) {
    super(message, options);
    this.name = 'PodsError';
    this.code = code;
    if (options?.retryAfterS !== undefined) this.retryAfterS = options.retryAfterS;
  }
  get status(): number {
    return ErrorCodes[this.code].status;
  }
  get expose(): boolean {
    return ErrorCodes[this.code].expose;
  }
}

export function isPodsError(err: unknown): err is PodsError {
  return err instanceof PodsError;
}

export const badRequest = (message: string) => new PodsError('BAD_REQUEST', message);
export const notFound = (message: string) => new PodsError('NOT_FOUND', message);
export const forbidden = (message: string) => new PodsError('FORBIDDEN', message);
