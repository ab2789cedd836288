import type { KeyObject } from 'node:crypto';
import { BoundedMap } from '../../shared/bounded-map.js';
import { verifyToken, type VerifyResult } from './jwt.js';

interface Verified {
  /** The whole token as verified: a hit must be this very token. */
  token: string;
  claims: Extract<VerifyResult, { ok: true }>['claims'];
}

/**
 * How many of a token's last characters (its signature's) key it: a short key is quick to hash,
 * where hashing the whole signature and comparing the signed part took most of a hit's time.
 */
const KEY_CHARS = 32;

/**
 * RS256 verification, remembered: a token whose signature checked out once is not checked again
 * until it expires (an RSA verify is most of the CPU a read costs). Entries hold the whole token
 * they verified and a hit must be equal to it, so only that very token hits; failures are never
 * kept. Expiry is checked on every use. Revocation (the user's epoch) is not a property of the
 * token: the caller checks it against Redis on every request.
 */
export class VerifiedTokens {
  private readonly verified: BoundedMap<string, Verified>;

  constructor(private readonly key: KeyObject, max = 10_000) {
    this.verified = new BoundedMap(max);
  }

  verify(token: string, now = Date.now()): VerifyResult {
    const key = token.slice(-KEY_CHARS);
    const hit = this.verified.get(key);
    if (hit && hit.token === token) {
      if (hit.claims.exp * 1000 > now) return { ok: true, claims: hit.claims };
      this.verified.delete(key);
      return { ok: false, reason: 'expired' };
    }
    const v = verifyToken(this.key, token, now);
    if (v.ok) this.verified.set(key, { token, claims: v.claims });
    return v;
  }
}

const byKey = new WeakMap<KeyObject, VerifiedTokens>();

/** The one cache of tokens verified with `key` (every guard of a process shares it). */
export function verifiedTokens(key: KeyObject): VerifiedTokens {
  let v = byKey.get(key);
  if (!v) byKey.set(key, (v = new VerifiedTokens(key)));
  return v;
}
