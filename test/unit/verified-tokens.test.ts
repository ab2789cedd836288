// The cache of verified tokens: a hit is only the very token that was verified, expiry still
// ends it, and a failure is never remembered.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { issueToken } from '../../coordinator/identity/jwt.js';
import { VerifiedTokens } from '../../coordinator/identity/verified-tokens.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const issue = (username: string, ttlS = 600, now = Date.now()) => issueToken(privateKey, { issuer: 'https://x/v3/tokens', tenant: 'dev', username, ttlS, now }).token;

describe('VerifiedTokens', () => {
  test('a verified token is accepted again, with its claims', () => {
    const cache = new VerifiedTokens(publicKey);
    const token = issue('alice');
    for (let i = 0; i < 3; i++) {
      const v = cache.verify(token);
      assert.ok(v.ok);
      assert.equal(v.claims['tapis/username'], 'alice');
    }
  });

  test("another payload under a remembered token's signature is refused", () => {
    const cache = new VerifiedTokens(publicKey);
    const token = issue('alice');
    assert.ok(cache.verify(token).ok);
    const [head, body, sig] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, 'tapis/username': 'root' })).toString('base64url');
    assert.deepEqual(cache.verify(`${head}.${forged}.${sig}`), { ok: false, reason: 'signature' });
    // Same length as the real payload, one character changed.
    const flipped = body.slice(0, -2) + (body.at(-2) === 'A' ? 'B' : 'A') + body.at(-1);
    assert.equal(cache.verify(`${head}.${flipped}.${sig}`).ok, false);
    // Another signature that ends as the remembered one does.
    const altered = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    assert.deepEqual(cache.verify(`${head}.${body}.${altered}`), { ok: false, reason: 'signature' });
    assert.ok(cache.verify(token).ok);
  });

  test('a remembered token still expires', () => {
    const cache = new VerifiedTokens(publicKey);
    const now = Date.now();
    const token = issue('alice', 60, now);
    assert.ok(cache.verify(token, now).ok);
    assert.deepEqual(cache.verify(token, now + 61_000), { ok: false, reason: 'expired' });
    assert.deepEqual(cache.verify(token, now + 61_000), { ok: false, reason: 'expired' });
  });

  test('a token signed by another key is refused every time', () => {
    const cache = new VerifiedTokens(publicKey);
    const token = issueToken(other.privateKey, { issuer: 'x', tenant: 'dev', username: 'eve', ttlS: 600 }).token;
    assert.deepEqual(cache.verify(token), { ok: false, reason: 'signature' });
    assert.deepEqual(cache.verify(token), { ok: false, reason: 'signature' });
  });

  test('it keeps at most its size, dropping the oldest', () => {
    const cache = new VerifiedTokens(publicKey, 2);
    const [a, b, c] = [issue('a'), issue('b'), issue('c')];
    for (const t of [a, b, c]) assert.ok(cache.verify(t).ok);
    // All three still verify (a again by RSA); the cache never grew past two.
    for (const t of [a, b, c]) assert.ok(cache.verify(t).ok);
    assert.equal((cache as unknown as { verified: Map<string, unknown> }).verified.size, 2);
  });
});
