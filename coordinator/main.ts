import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { loadCoordinatorConfig } from '../shared/config.js';
import { createLogger } from '../shared/log.js';
import { AgentHub } from './agents/hub.js';
import { AgentsBackend } from './backend/agents.js';
import type { PodBackend } from './backend/backend.js';
import { createApp } from './app.js';
import { EdgeRouter } from './edge.js';
import { createListener } from './listener.js';
import { CoordinatorMetrics } from './metrics.js';
import { NodeLiveness } from './node-liveness.js';
import { Reconciler } from './reconciler.js';
import { Scheduler } from './scheduler.js';
import { DEFAULT_TEMPLATES_DIR, installBuiltinTemplates } from './builtin-templates.js';
import { SnapshotScheduler } from './snapshot-schedule.js';
import { StorageClient } from './storage.js';
import { openStores } from './stores.js';
import { ChangeFeed } from './store/changes.js';
import { connectRedis, preloadScripts } from './store/redis.js';
import * as scripts from './store/scripts.js';

/**
 * How far V8 lets the heap grow past what the last full collection kept before it collects again:
 * by half (its own factor, chosen for throughput on a machine with memory to spare, is up to 4x).
 * What the coordinator keeps per pod stays small, but a burst of creates leaves behind what
 * its caches held before; at 10,000 pods this keeps it near 150 MB instead of 200-230 MB, at no
 * measurable cost in CPU (bench:scale). A `--heap-growing-percent` given to node wins.
 */
const HEAP_GROWING_PERCENT = 50;

async function main(): Promise<void> {
  if (![...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(' ')].some((a) => a.startsWith('--heap-growing-percent'))) {
    setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  }
  const log = createLogger('coordinator');
  let config;
  try {
    config = loadCoordinatorConfig(process.env);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  const redis = await connectRedis(config.redisUrl, log.child({ component: 'redis' }));
  await preloadScripts(redis, Object.values(scripts), log.child({ component: 'redis' }));
  // This coordinator's name: the same across its restarts (where it follows the change stream
  // from), and with this run's own tag (the changes it makes, its links' leases).
  const name = `${hostname()}:${config.listenHost}:${config.listenPort}`;
  const run = `${name}/${randomBytes(4).toString('hex')}`;
  const stores = await openStores(redis, config, { origin: run });
  await installBuiltinTemplates(config.templatesDir ?? DEFAULT_TEMPLATES_DIR, stores.templates, log.child({ component: 'templates' }), config.templatesLocalDir);
  const { pods, nodes } = stores;
  // Told of every tenant added and every change to the image allow-list anywhere, this
  // coordinator answers a Host no tenant has, and a create's image check, from what it read
  // before (until then, and without it, it reads for each).
  const stopWatches: Array<() => void> = [];
  const watches = { 'tenants being added': () => stores.tenants.watchAdded(), 'the image allow-list': () => stores.images.watchChanges() };
  for (const [what, watch] of Object.entries(watches)) {
    watch().then(
      (stop) => stopWatches.push(stop),
      (err) => log.error({ err: (err as Error).message }, `cannot watch ${what}`),
    );
  }

  // The hub, the reconciler and storage need each other; late binding through closures.
  let reconciler: Reconciler;
  let storage: StorageClient;
  let snapshotScheduler: SnapshotScheduler;
  const hub = new AgentHub({
    instance: run,
    config,
    log: log.child({ component: 'hub' }),
    pods,
    nodes,
    assignmentsFor: (nodeId) => reconciler.assignmentsFor(nodeId),
    onReport: (tenant, podId, observed, stored) => reconciler.onReport(tenant, podId, observed, stored),
    onNodeUp: (nodeId) => {
      reconciler.onNodeUp();
      void storage.collectGarbage(nodeId);
      snapshotScheduler.retrySoon();
    },
  });
  const metrics = new CoordinatorMetrics({ pods, links: () => hub.connected() });
  storage = new StorageClient({ hub, nodes, log: log.child({ component: 'storage' }), sharedStorage: config.sharedStorage });
  const liveness = new NodeLiveness(nodes, hub);
  await liveness.start();
  const stopWatchingLinks = await liveness.watch();
  // Any coordinator may place any pod, on any reachable host (see Scheduler).
  const scheduler = new Scheduler(
    pods,
    () => liveness.reachableNodes(),
    async () => {
      const closed = new Set<string>();
      for (const [id, a] of await nodes.admins()) if (a.cordoned || a.draining) closed.add(id);
      return closed;
    },
    { overcommit: { cpu: config.nodeOvercommitCpu, memory: config.nodeOvercommitMemory }, linkedHere: (nodeId) => hub.isConnected(nodeId) },
  );
  // Loaded only when chosen: dockerode brings ssh2 and gRPC along, about 40 MB of a process's memory.
  const backend: PodBackend =
    config.backend === 'swarm'
      ? new (await import('./backend/swarm/backend.js')).SwarmBackend({ config, log: log.child({ component: 'swarm' }), pods, nodes, watchMs: Math.min(1000, config.reconcileIntervalMs) })
      : new AgentsBackend(scheduler);
  reconciler = new Reconciler({ config, log: log.child({ component: 'reconciler' }), pods, nodes, hub, backend, liveness, storage, volumes: stores.volumes, snapshots: stores.snapshots, metrics });
  snapshotScheduler = new SnapshotScheduler({
    config, log: log.child({ component: 'snapshots' }), volumes: stores.volumes, snapshots: stores.snapshots, pods, storage, scheduler, tenants: stores.tenants,
    intervalMs: Math.min(1000, config.reconcileIntervalMs),
  });

  const app = createApp({
    ...stores,
    config,
    log: log.child({ component: 'api' }),
    storage,
    scheduler,
    metrics,
    kick: (tenant, podId, made) => reconciler.kick(tenant, podId, made),
    nodeConnected: (nodeId) => liveness.reachable(nodeId),
    nodesApi: {
      scheduler,
      nodeConnected: (nodeId) => liveness.reachable(nodeId),
      revokeLinks: (tokenId) => hub.revokeLinks(tokenId),
      kickAll: () => void reconciler.sweep(),
    },
  });
  const { server, scheme } = createListener(config, app.callback());
  server.requestTimeout = 30_000;
  hub.attach(server);
  await new Promise<void>((resolve) => server.listen(config.listenPort, config.listenHost, resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listenPort;
  log.info({ url: `${scheme}://${config.listenHost}:${port}` }, 'coordinator listening');
  reconciler.start();
  backend.start((tenant, podId) => reconciler.kick(tenant, podId));
  snapshotScheduler.start();
  const edge = config.edgeAdminUrl ? new EdgeRouter({ config, log: log.child({ component: 'edge' }), pods, nodes }) : null;
  edge?.start();
  // Changes made through any coordinator: kick the reconciler here for the pods of nodes linked
  // here (which it then tells), and update the edge. A gap means a look at every pod.
  const feed = new ChangeFeed(redis, config.redisPrefix, {
    consumer: name,
    log: log.child({ component: 'changes' }),
    onChanges: (changes) => {
      reconciler.onChanges(changes);
      edge?.onChanges(changes);
    },
    onGap: () => {
      void reconciler.sweep();
      edge?.resync();
    },
  });
  await feed.start();

  const shutdown = () => {
    log.info('shutting down');
    reconciler.stop();
    backend.stop();
    liveness.stop();
    void stopWatchingLinks();
    void feed.stop();
    for (const stop of stopWatches) stop();
    snapshotScheduler.stop();
    edge?.stop();
    hub.close();
    server.close();
    void redis.quit().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
