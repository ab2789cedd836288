// The installers on booted Debian 12 machines, as a site admin runs them: a coordinator and two
// Docker hosts provisioned from scratch by ops/machines/provision.sh (the Vagrantfile's entry
// point), then a user's pod made with tapipy from this machine against the coordinator's TLS
// address, served by its host's Caddy; then the agent restarted, the host powered off and booted (the pod comes back by itself),
// the installers run again (nothing changes), run with a new version (an upgrade in place, the
// pod kept running) and run with --uninstall. Prints how long each phase and the whole run took.
// `npm run test:machines`; part of `npm test` as root unless PODS_SKIP_MACHINES is set.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/procs.js';
import { python } from '../helpers/python.js';
import { repoRoot } from '../helpers/stack.js';
import { Cluster, COORDINATOR_URL, HOSTS, inMachine, machines, sh, skipWithoutMachines, TEST_IMAGE, throughCaddy } from './machines.js';

const POD = 'hello';
const POD_HOST = `${POD}.pods.dev.localhost`;
const user = { name: 'alice', password: `pw-${randomBytes(12).toString('hex')}` };

interface PodSeen {
  status: string;
  url: string;
  node: string | null;
  container_id: string | null;
}

/** What is true of a machine's installation: files' checksums and mtimes, services' PIDs, users. */
const STATE_OF_INSTALL = `
shopt -s nullglob
files=(/etc/systemd/system/pods-*.service /etc/pods/*.env /etc/pods/*.conf /etc/pods/*.json /etc/pods/*.crt /etc/pods/tls/* /etc/redis/redis.conf /etc/docker/daemon.json /opt/pods/.pods-digest /opt/pods-node/bin/node /usr/local/bin/pods-caddy)
sha256sum "\${files[@]}"
stat -c '%n %Y' "\${files[@]}" /opt/pods /opt/pods-node
for unit in pods-coordinator redis-server pods-agent pods-caddy docker; do echo "$unit $(systemctl show -p MainPID --value $unit)"; done
echo "users named pods: $(getent passwd | grep -c '^pods:')"
echo "groups of pods: $(id -nG pods)"
iptables -S 2>/dev/null | grep -c PODS || true
`;
const stateOfInstall = (machine: string) => inMachine(machine, 'bash', '-c', STATE_OF_INSTALL);

/** The containers of the pod on host K (docker ps, by the agent's labels). */
async function podContainers(k: number): Promise<string[]> {
  const out = await inMachine(`host${k}`, 'docker', 'ps', '-q', '--filter', `label=pods.pod_id=${POD}`);
  return out.split('\n').filter(Boolean);
}

describe('installers on booted machines: a coordinator and two Docker hosts', { skip: skipWithoutMachines(), timeout: 30 * 60_000 }, () => {
  let cluster: Cluster | undefined;
  let py: string;
  const started = Date.now();
  const timings: string[] = [];
  /** The host running the pod (1 or 2), and its container there. */
  let podHost = 0;
  let containerId = '';

  const tapipy = async (action: 'create' | 'get' | 'restart' | 'logs'): Promise<any> => {
    const out = await sh(py, [path.join(repoRoot(), 'test', 'machines', 'tapipy_user.py'), action, POD], {
      env: { PODS_BASE_URL: COORDINATOR_URL, PODS_CA: cluster!.caFile, PODS_USERNAME: user.name, PODS_PASSWORD: user.password, PODS_IMAGE: TEST_IMAGE },
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  };
  const served = async (): Promise<boolean> => {
    const r = await throughCaddy(podHost, POD_HOST).catch(() => null);
    return r?.status === 200 && r.body.startsWith('hello from');
  };
  const allContainers = async () => (await Promise.all(HOSTS.map(podContainers))).flat();
  const timed = async (what: string, fn: () => Promise<void>) => {
    const t = Date.now();
    await fn();
    timings.push(`${what} ${((Date.now() - t) / 1000).toFixed(1)} s`);
  };

  before(async () => {
    py = await python();
    cluster = await Cluster.start();
  });

  after(async () => {
    await cluster?.stop();
    // Every machine goes, whatever happened: no mounts, bridge, cgroups or processes are left
    // (PODS_MACHINES_KEEP=1 leaves them up for a look around; `ops/machines/machines.sh down`).
    if (!process.env.PODS_MACHINES_KEEP) await machines('down');
    const total = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`machines: ${[...(cluster?.timings ?? []), ...timings].join('; ')}; whole run ${total} s (load: ${(await sh('cat', ['/proc/loadavg'])).trim()})`);
  });

  test('an admin creates a user; the user makes a pod with tapipy; its host Caddy serves it; logs work', async () => {
    const c = cluster!;
    const allowed = await c.api('POST', '/v3/pods/images', { image: TEST_IMAGE, description: 'the test image, loaded into each host' });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.json));
    const added = await c.api('POST', '/v3/admin/users', { tenant_id: 'dev', username: user.name, password: user.password });
    assert.equal(added.status, 200, JSON.stringify(added.json));
    await waitFor('both hosts connected', async () => {
      const nodes = (await c.api('GET', '/v3/admin/nodes')).json.result as { node_id: string; state: string }[];
      return nodes.map((n) => `${n.node_id} ${n.state}`).sort().join() === 'host1 ready,host2 ready';
    }, 30_000, 250);

    let pod: PodSeen = await tapipy('create');
    assert.equal(pod.status, 'RUNNING', JSON.stringify(pod));
    assert.equal(pod.url, POD_HOST);
    assert.match(pod.node ?? '', /^host[12]$/);
    podHost = Number(pod.node!.slice(4));
    containerId = pod.container_id!;
    await waitFor('the pod served through its host Caddy', served, 20_000, 200);
    assert.deepEqual(await allContainers(), [containerId.slice(0, 12)]);
    const logs = await waitFor('the pod log', async () => {
      const l = (await tapipy('logs')).logs as string;
      return l.includes('pod starting') && l;
    }, 20_000, 500);
    assert.match(logs, /pod starting/);
    pod = await tapipy('get');
    assert.equal(pod.status, 'RUNNING');
  });

  test('systemctl restart pods-agent: the pod keeps serving, the same container, nothing duplicated', async () => {
    assert.ok(podHost, 'the pod was made');
    const c = cluster!;
    const before = (await c.api('GET', '/v3/admin/nodes')).json.result.find((n: { node_id: string }) => n.node_id === `host${podHost}`);
    await timed('agent restart', async () => {
      await inMachine(`host${podHost}`, 'systemctl', 'restart', 'pods-agent');
      assert.ok(await served(), 'served while the agent restarts');
      await waitFor('the agent connected again', async () => {
        const n = (await c.api('GET', '/v3/admin/nodes')).json.result.find((x: { node_id: string }) => x.node_id === `host${podHost}`);
        return n.state === 'ready' && n.connected_at !== before.connected_at;
      }, 30_000, 250);
    });
    assert.ok(await served());
    assert.deepEqual(await allContainers(), [containerId.slice(0, 12)]);
    assert.equal((await tapipy('get')).status, 'RUNNING');
  });

  test('the host is powered off and booted: Docker, Caddy and the agent come back, the agent reconnects', async () => {
    assert.ok(podHost, 'the pod was made');
    const c = cluster!;
    await timed('host poweroff and boot', async () => {
      await machines('poweroff', `host${podHost}`);
      await machines('boot', `host${podHost}`);
      await waitFor('the agent connected again after the boot', async () => {
        const n = (await c.api('GET', '/v3/admin/nodes')).json.result.find((x: { node_id: string }) => x.node_id === `host${podHost}`);
        return n.state === 'ready' && (await inMachine(`host${podHost}`, 'systemctl', 'is-active', 'docker', 'pods-caddy', 'pods-agent')).trim() === 'active\nactive\nactive';
      }, 90_000, 500);
    });
    // Nothing runs twice: no second instance was made elsewhere meanwhile.
    assert.deepEqual(await podContainers(podHost === 1 ? 2 : 1), []);
  });

  test('after the boot the pod serves again by itself: the same container, RUNNING, a restart in its events', async () => {
    assert.ok(podHost, 'the pod was made');
    await waitFor('the pod served again after the boot', served, 30_000, 500);
    assert.deepEqual(await allContainers(), [containerId.slice(0, 12)], 'the same container, started again in place');
    assert.equal((await tapipy('get')).status, 'RUNNING');
    const events = (await cluster!.api('GET', `/v3/pods/${POD}/events`)).json;
    assert.match(JSON.stringify(events), /restarted[^}]*the host or its Docker engine went down/, JSON.stringify(events));
  });

  test('the user restarts the pod after the boot: it runs again on its host, once', async () => {
    assert.ok(podHost, 'the pod was made');
    const pod: PodSeen = await tapipy('restart');
    assert.equal(pod.status, 'RUNNING', JSON.stringify(pod));
    await waitFor('the pod served again', served, 20_000, 200);
    const containers = await allContainers();
    assert.equal(containers.length, 1, `one container of the pod on all hosts: ${containers.join(' ')}`);
    podHost = Number(pod.node!.slice(4));
    containerId = containers[0];
  });

  test('the installers run again: nothing changes (files, services, users), the pod keeps serving', async () => {
    assert.ok(podHost, 'the pod was made');
    const c = cluster!;
    const machinesNamed = ['coordinator', ...HOSTS.map((k) => `host${k}`)];
    const before = await Promise.all(machinesNamed.map(stateOfInstall));
    assert.match(before[0], /users named pods: 1/);
    await timed('installers again', () => c.provisionAll());
    const after = await Promise.all(machinesNamed.map(stateOfInstall));
    machinesNamed.forEach((m, i) => assert.equal(after[i], before[i], `${m}: the second run changed something`));
    assert.ok(await served());
    assert.deepEqual(await allContainers(), [containerId]);
  });

  test('a new version is installed in place: services restart on it, the pod keeps running', async () => {
    assert.ok(podHost, 'the pod was made');
    const c = cluster!;
    const machinesNamed = ['coordinator', ...HOSTS.map((k) => `host${k}`)];
    // The new version: the copy each machine holds, with its version raised.
    await Promise.all(machinesNamed.map((m) => inMachine(m, 'sed', '-i', 's/"version": "[^"]*"/"version": "99.0.0"/', '/root/pods/package.json')));
    const pids = (m: string) => inMachine(m, 'systemctl', 'show', '-p', 'MainPID', '--value', m === 'coordinator' ? 'pods-coordinator' : 'pods-agent');
    const before = await Promise.all(machinesNamed.map(pids));
    const linked = (await c.api('GET', '/v3/admin/nodes')).json.result as { connected_at: string }[];
    await timed('upgrade', () => c.provisionAll());
    for (const m of machinesNamed) assert.match(await inMachine(m, 'cat', '/opt/pods/package.json'), /"version": "99.0.0"/);
    const restarted = await Promise.all(machinesNamed.map(pids));
    machinesNamed.forEach((m, i) => assert.notEqual(restarted[i], before[i], `${m}: the service runs the new version`));
    await waitFor('both agents connected again', async () => {
      const nodes = (await c.api('GET', '/v3/admin/nodes')).json.result as { state: string; connected_at: string }[];
      return nodes.length === 2 && nodes.every((n) => n.state === 'ready' && !linked.some((l) => l.connected_at === n.connected_at));
    }, 30_000, 250);
    assert.ok(await served());
    assert.deepEqual(await allContainers(), [containerId]);
    assert.equal((await tapipy('get')).status, 'RUNNING');
  });

  test('--uninstall removes units, files and the user; --purge also the pods and their data', async () => {
    assert.ok(podHost, 'the pod was made');
    const other = podHost === 1 ? 2 : 1;
    await inMachine(`host${other}`, 'bash', '/root/pods/ops/install-agent.sh', '--uninstall', '--purge');
    await inMachine(`host${podHost}`, 'bash', '/root/pods/ops/install-agent.sh', '--uninstall');
    await inMachine('coordinator', 'bash', '/root/pods/ops/install-coordinator.sh', '--uninstall');
    const left = 'ls -d /etc/systemd/system/pods-*.service /etc/pods/*.env /etc/pods/*.json /opt/pods /opt/pods-node /usr/local/bin/pods-caddy 2>/dev/null; getent passwd pods; systemctl list-units --no-legend "pods-*"; true';
    for (const m of ['coordinator', ...HOSTS.map((k) => `host${k}`)]) {
      assert.equal((await inMachine(m, 'bash', '-c', left)).trim(), '', `${m}: something of Pods is left`);
    }
    assert.equal((await inMachine(`host${other}`, 'bash', '-c', 'ls -d /etc/pods /var/lib/pods 2>/dev/null; true')).trim(), '');
    // Without --purge the pod's container (on its host) and the coordinator's data stay.
    assert.deepEqual(await podContainers(podHost), [containerId]);
    const keys = 'REDISCLI_AUTH=$(sed -n \'s/^requirepass "\\(.*\\)"$/\\1/p\' /etc/pods/redis-auth.conf) redis-cli --no-auth-warning DBSIZE';
    assert.ok(Number(await inMachine('coordinator', 'bash', '-c', keys)) > 0, 'the data in Redis is kept');
    await inMachine('coordinator', 'bash', '/root/pods/ops/install-coordinator.sh', '--uninstall', '--purge');
    assert.equal((await inMachine('coordinator', 'bash', '-c', 'ls -d /etc/pods 2>/dev/null; grep -c pods /etc/redis/redis.conf; redis-cli DBSIZE; true')).trim(), '0\n0');
  });
});
