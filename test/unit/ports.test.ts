// The test helpers' freePort: ports for processes told theirs up front.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freePort } from '../helpers/ports.js';

test('freePort never hands out a port twice, nor one in the ephemeral range, and each can be listened on', async () => {
  const ephemeral = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports: number[] = [];
  for (let i = 0; i < 300; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, ports.length, 'no port twice');
  for (const p of ports) assert.ok(p >= 10_000 && p < Math.min(20_000, ephemeral), `${p} is outside 10000-19999 or in the ephemeral range`);
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(ports.at(-1), '127.0.0.1', resolve));
  server.close();
});

