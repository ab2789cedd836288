// Pods reach neither one another, nor the host, nor blocked addresses, whatever else the
// host's firewall says. Measured on one host before the agent kept its own rules: dockerd ran
// with --icc=false, yet a pod connected to another pod's port on its bridge address, because
// the FORWARD rules in effect accepted bridge-to-bridge traffic; this test puts such a rule in
// place itself. No packet leaves this machine: the "outside" is a network namespace the test
// makes, one of its two addresses configured as blocked.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { connect, createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { passesFrom } from '../../agent/isolation.js';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { Proc, waitFor } from '../helpers/procs.js';
import { docker, startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

const run = promisify(execFile);
const root = process.getuid?.() === 0;

/** What a pod gets from `nc` to host:port within 3 s ('' when it cannot connect). */
async function fromPod(containerId: string, host: string, port: number): Promise<string> {
  const r = await run('docker', ['exec', containerId, 'sh', '-c', `nc -w 3 ${host} ${port} </dev/null`]).catch((err) => ({ stdout: '', stderr: String(err.stderr ?? '') }));
  return r.stdout.trim();
}

/** What the host gets from a TCP connection to host:port within 3 s ('' when it cannot connect). */
function fromHost(host: string, port: number, send = ''): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const c = connect({ host, port, timeout: 3000 }, () => c.end(send));
    c.on('data', (d) => (got += d));
    c.on('end', () => resolve(got.trim()));
    c.on('timeout', () => c.destroy());
    c.on('error', () => resolve(''));
    c.on('close', () => resolve(got.trim()));
  });
}

describe('pod isolation', { skip: skipWithoutCaddy() || (!root && 'needs root (iptables, network namespaces)') }, () => {
  let s: Stack;
  const id = randomBytes(3).toString('hex');
  const ns = `pods-egress-${id}`;
  const vethHost = `pe${id}h`;
  const net = `10.213.${randomInt(1, 250)}`;
  const blocked = `${net}.2`;
  const open = `${net}.3`;
  let outside: Proc;
  let hostServer: Server;
  let hostPort = 0;
  let acceptRule: string[] | null = null;

  before(async () => {
    // The "outside": a namespace behind a veth, two addresses, a TCP server answering on both.
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['link', 'add', vethHost, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await run('ip', ['addr', 'add', `${net}.1/29`, 'dev', vethHost]);
    await run('ip', ['link', 'set', vethHost, 'up']);
    for (const a of [blocked, open]) await run('ip', ['-n', ns, 'addr', 'add', `${a}/29`, 'dev', 'eth0']);
    await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', ns, 'route', 'add', 'default', 'via', `${net}.1`]);
    outside = new Proc('outside', 'ip', ['netns', 'exec', ns, process.execPath, '-e', "require('net').createServer((c) => c.end('outside-ok\\n')).listen(7000, () => console.log('listening'))"]).start();
    await waitFor('the outside server', async () => outside.output.includes('listening'));
    // A server on every address of the host.
    hostServer = createServer((c) => c.end('host-ok\n'));
    await new Promise<void>((r) => hostServer.listen(0, '0.0.0.0', r));
    hostPort = (hostServer.address() as { port: number }).port;

    s = await startStack({ agentEnv: { PODS_BLOCKED_EGRESS: `169.254.169.254/32,${blocked}/32` } });
    for (const podId of ['isoa', 'isob']) assert.equal((await s.api('POST', '/v3/pods', { body: { pod_id: podId, image: TEST_IMAGE } })).status, 200);
    for (const podId of ['isoa', 'isob']) await s.waitStatus(podId, 'RUNNING');
  });
  after(async () => {
    if (acceptRule) await run('iptables', ['-D', 'FORWARD', ...acceptRule]).catch(() => undefined);
    await s?.stop();
    hostServer?.close();
    await outside?.kill('SIGTERM');
    await run('ip', ['link', 'del', vethHost]).catch(() => undefined);
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  });

  const container = async (podId: string) => (await s.containers(podId))[0]!;
  const bridgeIp = async (podId: string) => (await docker('GET', `/containers/${await container(podId)}/json`)).NetworkSettings.IPAddress as string;

  test('the rules in effect: FORWARD goes to DOCKER-USER, then to the agent\'s chain, which drops pod-to-pod traffic and names the metadata address', async () => {
    const forward = (await run('iptables', ['-S', 'FORWARD'])).stdout.split('\n').filter((l) => l.startsWith('-A'));
    const jump = forward.indexOf('-A FORWARD -j DOCKER-USER');
    assert.ok(jump >= 0, forward.join('\n'));
    assert.deepEqual(forward.slice(0, jump).filter((r) => passesFrom(r, 'docker0')), [], 'nothing before DOCKER-USER lets pod traffic through');
    const user = (await run('iptables', ['-S', 'DOCKER-USER'])).stdout.split('\n').filter((l) => l.startsWith('-A'));
    assert.equal(user[0], '-A DOCKER-USER -j PODS-ISOLATION');
    const chain = (await run('iptables', ['-S', 'PODS-ISOLATION'])).stdout;
    assert.match(chain, /-A PODS-ISOLATION -i docker0 -o docker0 -j DROP/);
    assert.match(chain, /-A PODS-ISOLATION -d 169\.254\.169\.254\/32 -i docker0 -j DROP/);
    assert.ok(chain.includes(`-A PODS-ISOLATION -d ${blocked}/32 -i docker0 -j DROP`), chain);
    assert.match((await run('iptables', ['-S', 'INPUT'])).stdout.split('\n').filter((l) => l.startsWith('-A'))[0]!, /-A INPUT -j PODS-HOST/);
  });

  test("a pod cannot reach another pod's bridge address, even where FORWARD accepts bridge-to-bridge traffic", async () => {
    // The host as measured: an ACCEPT for docker0 -> docker0 in FORWARD (after the jump to DOCKER-USER).
    acceptRule = ['-i', 'docker0', '-o', 'docker0', '-j', 'ACCEPT'];
    await run('iptables', ['-I', 'FORWARD', '2', ...acceptRule]);
    const target = await bridgeIp('isoa');
    // The target answers the host, so a refusal is the firewall's doing.
    assert.match(await fromHost(target, 5000, 'GET / HTTP/1.0\r\n\r\n'), /hello from/);
    assert.equal(await fromPod(await container('isob'), target, 5000), '', 'isob reached isoa');
  });

  test("a pod cannot reach the host's own addresses", async () => {
    const gateway = (await docker('GET', '/networks/bridge')).IPAM.Config[0].Gateway as string;
    assert.equal(await fromHost(gateway, hostPort), 'host-ok', 'the host answers on that address');
    assert.equal(await fromPod(await container('isob'), gateway, hostPort), '', 'a pod reached a port of the host');
  });

  test('egress to a blocked address is dropped; an address that is not blocked is reached', async () => {
    const pod = await container('isob');
    assert.equal(await fromPod(pod, open, 7000), 'outside-ok', 'the outside is reachable at its other address');
    assert.equal(await fromPod(pod, blocked, 7000), '', 'a pod reached a blocked address');
  });
});
