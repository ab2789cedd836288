import { randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';

// RS256 JSON Web Tokens, signed and checked with node:crypto only.

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export const TokenClaims = z.object({
  iss: z.string(),
  sub: z.string(),
  jti: z.string(),
  iat: z.number().int(),
  exp: z.number().int(),
  'tapis/tenant_id': z.string(),
  'tapis/username': z.string(),
  'tapis/token_type': z.literal('access'),
  'tapis/account_type': z.literal('user'),
  'tapis/delegation': z.boolean(),
  /** The user's epoch when the token was issued (ours): a password change or disable bumps it. */
  'pods/epoch': z.number().int().min(0).default(0),
});
export type TokenClaims = z.infer<typeof TokenClaims>;

export function issueToken(key: KeyObject, c: { issuer: string; tenant: string; username: string; epoch?: number; ttlS: number; now?: number }) {
  const iat = Math.floor((c.now ?? Date.now()) / 1000);
  const claims: TokenClaims = {
    iss: c.issuer,
    sub: `${c.username}@${c.tenant}`,
    jti: randomUUID(),
    iat,
    exp: iat + c.ttlS,
    'tapis/tenant_id': c.tenant,
    'tapis/username': c.username,
    'tapis/token_type': 'access',
    'tapis/account_type': 'user',
    'tapis/delegation': false,
    'pods/epoch': c.epoch ?? 0,
  };
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), key);
  return { token: `${head}.${body}.${b64url(sig)}`, claims };
}

export type VerifyResult = { ok: true; claims: TokenClaims } | { ok: false; reason: 'malformed' | 'signature' | 'expired' | 'claims' };

/** Check signature, algorithm, expiry and claim shapes. Never throws. */
export function verifyToken(key: KeyObject, token: string, now = Date.now()): VerifyResult {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'malformed' };
  const [head, body, sig] = parts as [string, string, string];
  let header: unknown;
  let payload: unknown;
  try {
    header = JSON.parse(Buffer.from(head, 'base64url').toString());
    payload = JSON.parse(Buffer.from(body, 'base64url').toString());
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if ((header as { alg?: unknown })?.alg !== 'RS256') return { ok: false, reason: 'signature' };
  if (!verify('sha256', Buffer.from(`${head}.${body}`), key, Buffer.from(sig, 'base64url'))) return { ok: false, reason: 'signature' };
  const claims = TokenClaims.safeParse(payload);
  if (!claims.success) return { ok: false, reason: 'claims' };
  if (claims.data.exp * 1000 <= now) return { ok: false, reason: 'expired' };
  return { ok: true, claims: claims.data };
}
