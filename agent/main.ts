import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { loadAgentConfig } from '../shared/config.js';
import { createLogger, type Logger } from '../shared/log.js';
import { CaddyClient } from './caddy.js';
import { PodIsolation } from './isolation.js';
import { CoordinatorLink } from './link.js';
import { AgentMetrics } from './metrics.js';
import { DockerRuntime } from './runtime/docker.js';
import { SwarmTaskRuntime } from './runtime/swarm-task.js';
import { AreaStore } from './storage/areas.js';
import { StorageService } from './storage/service.js';
import { Transfers } from './storage/transfers.js';
import { Supervisor } from './supervisor.js';
import { UsageSampler } from './usage.js';

const AGENT_VERSION = '0.1.0';

async function main(): Promise<void> {
  let config;
  try {
    config = loadAgentConfig(process.env);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  const log = createLogger('agent').child({ nodeId: config.nodeId });
  const runtimeOptions = {
    socketPath: config.dockerSocket,
    nodeId: config.nodeId,
    publishHost: config.publishHost,
    user: config.containerUser,
    network: config.dockerNetwork,
    pidsLimit: config.pidsLimit,
    log: log.child({ component: 'docker' }),
  };
  const runtime = config.backend === 'swarm' ? new SwarmTaskRuntime(runtimeOptions, await swarmNodeId(config.dockerSocket, log)) : new DockerRuntime(runtimeOptions);
  let dockerVersion = '';
  let bridge = '';
  for (let i = 0; ; i++) {
    try {
      dockerVersion = await runtime.version();
      bridge = await runtime.ensureNetwork();
      break;
    } catch (err) {
      if (i % 10 === 0) log.warn({ err: (err as Error).message }, 'docker not reachable yet');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const isolation = new PodIsolation({
    bridge,
    blockedEgress: [...config.blockedEgress, ...(await controlPlane(config.coordinatorUrl, log))],
    mode: config.podIsolation,
    log: log.child({ component: 'isolation' }),
  });
  await isolation.apply();
  setInterval(() => void isolation.apply(), 30_000).unref();
  // tapis_auth checks go to the coordinator this agent dials: its Caddy reaches it the same way.
  const coordinator = new URL(config.coordinatorUrl);
  const access = {
    coordinator: { dial: `${coordinator.hostname}:${coordinator.port || (coordinator.protocol === 'wss:' ? '443' : '80')}`, tls: coordinator.protocol === 'wss:' },
    edgeSources: config.edgeSourceNetworks,
  };
  const metrics = new AgentMetrics(config.nodeId);
  const caddy = new CaddyClient({
    adminUrl: config.caddyAdminUrl, httpListen: config.caddyHttpListen, tlsListen: config.caddyTlsListen, access, log, onWrite: metrics.onCaddyWrite,
  });
  if (config.metricsListen) await metrics.serve(config.metricsListen, log.child({ component: 'metrics' }));

  const areas = new AreaStore(config.dataRoot, config.containerUser, log.child({ component: 'storage' }));
  await areas.init();
  const transfers = new Transfers(config.dataRoot, config.maxUploadBytes);
  await transfers.init();

  let link: CoordinatorLink;
  const supervisor = new Supervisor({
    config,
    runtime,
    caddy,
    log: log.child({ component: 'supervisor' }),
    reporter: {
      status: (tenant, podId, observed) => link.send('pod_status', { tenant, podId, observed }),
      logs: (msg) => link.send('pod_logs', msg),
    },
    binds: (a) => areas.bindsFor(a.spec.mounts, a.spec.user ?? config.containerUser),
    isolation,
  });
  // The pods' containers as the supervisor follows them: a round of samples lists nothing (a listing inspects every container).
  const usage = new UsageSampler({
    source: { list: async () => supervisor.containers(), stats: (id) => runtime.docker.getContainer(id).stats({ stream: false, 'one-shot': true }) },
    intervalMs: config.metricsSampleMs,
    log: log.child({ component: 'usage' }),
    onRound: metrics.onUsage,
  });
  const storage = new StorageService({ areas, transfers, runtime, pods: supervisor, log: log.child({ component: 'storage' }) });
  let running = 0;
  link = new CoordinatorLink(config, log.child({ component: 'link' }), {
    hello: async () => {
      const containers = await supervisor.inventory();
      running = containers.filter((c) => c.phase === 'running').length;
      return {
        nodeId: config.nodeId,
        agentVersion: AGENT_VERSION,
        dockerVersion,
        capacity: { cpuMilli: cpus().length * 1000, memoryMb: Math.floor(totalmem() / 1024 / 1024) },
        endpoints: { http: config.caddyHttpListen, tls: config.caddyTlsListen, tcpHost: config.tcpListenHost },
        containers,
      };
    },
    sync: (s) => supervisor.sync(s.assignments),
    apply: (a) => supervisor.apply(a.assignment),
    remove: (r) => supervisor.remove(r),
    heartbeat: () => ({ running }),
    serve: (peer) => {
      storage.serve(peer);
      usage.serve(peer);
    },
  });
  supervisor.start();
  usage.start();
  link.start();
  log.info({ coordinator: config.coordinatorUrl, docker: dockerVersion }, 'agent started');

  const shutdown = () => {
    log.info('shutting down; containers keep running');
    link.stop();
    usage.stop();
    supervisor.stop();
    transfers.stop();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

/** This engine's Swarm node id, waiting for dockerd and for it to join a Swarm. */
async function swarmNodeId(socketPath: string, log: Logger): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return await SwarmTaskRuntime.nodeIdOf(socketPath);
    } catch (err) {
      if (i % 10 === 0) log.warn({ err: (err as Error).message }, 'waiting for the Docker engine to be a Swarm node');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** The coordinator's address as a CIDR pods may not reach (none when it is on loopback, which pods never reach). */
async function controlPlane(coordinatorUrl: string, log: Logger): Promise<string[]> {
  const host = new URL(coordinatorUrl).hostname;
  try {
    const { address } = isIP(host) ? { address: host } : await lookup(host, { family: 4 });
    return isIP(address) === 4 && !address.startsWith('127.') ? [`${address}/32`] : [];
  } catch (err) {
    log.warn({ host, err: (err as Error).message }, 'cannot resolve the coordinator; pods are not kept from it by address');
    return [];
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
