import { cpus, totalmem } from 'node:os';
import { loadAgentConfig } from '../shared/config.js';
import { createLogger } from '../shared/log.js';
import { CaddyClient } from './caddy.js';
import { CoordinatorLink } from './link.js';
import { DockerRuntime } from './runtime/docker.js';
import { AreaStore } from './storage/areas.js';
import { StorageService } from './storage/service.js';
import { Transfers } from './storage/transfers.js';
import { Supervisor } from './supervisor.js';

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
  const runtime = new DockerRuntime({
    socketPath: config.dockerSocket,
    nodeId: config.nodeId,
    publishHost: config.publishHost,
    user: config.containerUser,
    network: config.dockerNetwork,
    pidsLimit: config.pidsLimit,
    log: log.child({ component: 'docker' }),
  });
  let dockerVersion = '';
  for (let i = 0; ; i++) {
    try {
      dockerVersion = await runtime.version();
      await runtime.ensureNetwork();
      break;
    } catch (err) {
      if (i % 10 === 0) log.warn({ err: (err as Error).message }, 'docker not reachable yet');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const caddy = new CaddyClient({ adminUrl: config.caddyAdminUrl, httpListen: config.caddyHttpListen, tlsListen: config.caddyTlsListen, log });

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
    serve: (peer) => storage.serve(peer),
  });
  supervisor.start();
  link.start();
  log.info({ coordinator: config.coordinatorUrl, docker: dockerVersion }, 'agent started');

  const shutdown = () => {
    log.info('shutting down; containers keep running');
    link.stop();
    supervisor.stop();
    transfers.stop();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
