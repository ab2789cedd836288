// Generated pod passwords: 32 characters from a URL- and shell-safe alphabet, every character used.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newSecret } from '../../coordinator/store/pods.js';

test('a generated password is 32 safe characters, and no two are alike', () => {
  const secrets = Array.from({ length: 2000 }, newSecret);
  for (const s of secrets) assert.match(s, /^[A-HJ-NP-Za-km-z2-9]{32}$/);
  assert.equal(new Set(secrets).size, secrets.length);
  // Over 64,000 characters every one of the 57 shows up, none far more often than the others.
  const counts = new Map<string, number>();
  for (const c of secrets.join('')) counts.set(c, (counts.get(c) ?? 0) + 1);
  assert.equal(counts.size, 57);
  const expected = 64_000 / 57;
  for (const [c, n] of counts) assert.ok(n > expected * 0.8 && n < expected * 1.2, `${c} appears ${n} times, expected about ${Math.round(expected)}`);
});
