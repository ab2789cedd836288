export type CaddyErrorCode = 'CADDY_UNREACHABLE' | 'CADDY_REJECTED';

/**
 * CADDY_UNREACHABLE: the admin endpoint did not answer (down, refused, timed out).
 * CADDY_REJECTED: Caddy answered non-2xx (`status` set, message is Caddy's
 * error text), or the route was refused here before sending (`status` unset).
 */
export class CaddyError extends Error {
  readonly code: CaddyErrorCode;
  readonly status?: number;
  constructor(code: CaddyErrorCode, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options);
    this.name = 'CaddyError';
    this.code = code;
    if (options?.status !== undefined) this.status = options.status;
  }
}

/** A route refused here, before anything is sent to Caddy. */
export function refused(message: string): CaddyError {
  return new CaddyError('CADDY_REJECTED', message);
}
