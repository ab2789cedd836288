import type { KeyObject } from 'node:crypto';
import { verifyToken, type VerifyResult } from './jwt.js';

interface Verified {
  /** The token's header and payload, as signed: a hit must present these same bytes. */
  signed: string;
  claims: Extract<VerifyResult, { ok: true }>['claims'];
}

/**
 * RS256 verification, remembered: a token whose signature checked out once is not checked again
 * until it expires (an RSA verify is most of the CPU a read costs). Entries are keyed by the
 * signature and hold the exact header and payload it signed, so only that very token hits;
 * failures are never kept. Expiry is checked on every use. Revocation (the user's epoch) is not
 * a property of the token: the caller checks it against Redis on every request.
 */
export class VerifiedTokens {
  private readonly verified = new Map<string, Verified>();

  constructor(private readonly key: KeyObject, private readonly max = 10_000) {}

  verify(token: string, now = Date.now()): VerifyResult {
    const dot = token.lastIndexOf('.');
    const signature = token.slice(dot + 1);
    const hit = dot > 0 ? this.verified.get(signature) : undefined;
    if (hit && hit.signed.length === dot && token.startsWith(hit.signed)) {
      if (hit.claims.exp * 1000 > now) return { ok: true, claims: hit.claims };
      this.verified.delete(signature);
      return { ok: false, reason: 'expired' };
    }
    const v = verifyToken(this.key, token, now);
    if (v.ok) this.remember(signature, token.slice(0, dot), v.claims);
    return v;
  }

  private remember(signature: string, signed: string, claims: Verified['claims']): void {
    // Oldest out first (a Map keeps insertion order).
    if (this.verified.size >= this.max) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(signature, { signed, claims });
  }
}

const byKey = new WeakMap<KeyObject, VerifiedTokens>();

/** The one cache of tokens verified with `key` (every guard of a process shares it). */
export function verifiedTokens(key: KeyObject): VerifiedTokens {
  let v = byKey.get(key);
  if (!v) byKey.set(key, (v = new VerifiedTokens(key)));
  return v;
}
