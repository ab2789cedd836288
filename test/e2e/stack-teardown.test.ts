// The test stack itself: a start that fails, a wait that gets no answer and a process that
// ignores SIGTERM each end in bounded time and leave no process behind. A child left running
// keeps its test file's process alive, and node's test runner then waits for that file forever
// (capacity.test.ts once hung so, with Redis, Caddy and an agent left and no coordinator).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { Proc, waitFor } from '../helpers/procs.js';
import { startStack } from '../helpers/stack.js';

/** The processes this test process started that are still running (`ps` itself left out). */
function children(): string[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out.split('\n').map((line) => line.trim()).filter((line) => line && !line.includes('--ppid'));
}

/** A listener that accepts connections and never says anything (until closed, which drops them). */
async function silentListener(): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => void sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

describe('the test stack never outlives a failure', { skip: skipWithoutCaddy() }, () => {
  test('a stack whose coordinator cannot start fails, says why, and leaves no process', { timeout: 90_000 }, async () => {
    // Another process took the coordinator's port: the coordinator exits at once.
    const squatter = await silentListener();
    try {
      await assert.rejects(startStack({ coordinatorEnv: { PODS_LISTEN_PORT: String(squatter.port) } }), (err: Error) => {
        assert.match(err.message, /timed out after 20000 ms waiting for the coordinator to answer/);
        assert.match(err.message, /EADDRINUSE/);
        return true;
      });
    } finally {
      squatter.close();
    }
    assert.deepEqual(children(), []);
  });

  test('a wait whose try never answers ends at its deadline', { timeout: 30_000 }, async () => {
    const squatter = await silentListener();
    try {
      const asked = Date.now();
      await assert.rejects(
        waitFor('a silent server', async () => (await request(`http://127.0.0.1:${squatter.port}/`)).statusCode === 200, 1_000),
        /timed out after 1000 ms waiting for a silent server: timed out after \d+ ms waiting for its last try to answer/,
      );
      assert.ok(Date.now() - asked < 2_000, `gave up after ${Date.now() - asked} ms`);
    } finally {
      squatter.close();
    }
  });

  test('a process that ignores SIGTERM is killed with SIGKILL', { timeout: 30_000 }, async () => {
    const stubborn = new Proc('stubborn', 'bash', ['-c', 'trap "" TERM; echo ready; while :; do sleep 0.1; done']).start();
    await waitFor('the process to trap SIGTERM', async () => stubborn.output.includes('ready'), 5_000);
    await stubborn.kill('SIGTERM');
    assert.equal(stubborn.running, false);
  });
});
