import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from '../shared/log.js';
import { authenticate, tenantResolver } from './api/auth.js';
import { consoleRouter } from './api/console.js';
import { errorEnvelope, ok } from './api/envelope.js';
import { identityRouter, type IdentityDeps } from './api/identity.js';
import { imagesRouter } from './api/images.js';
import { nodesRouter, type NodesDeps } from './api/nodes.js';
import { openApiRouter } from './api/openapi.js';
import { podAuthRouter } from './api/pod-auth.js';
import { podFilesRouter } from './api/pod-files.js';
import { jupyterRouter } from './api/jupyter.js';
import { podMetricsRouter, prometheusRouter } from './api/metrics.js';
import type { CoordinatorMetrics } from './metrics.js';
import { podAsTemplateRouter } from './api/pod-as-template.js';
import { podsApi, type PodsDeps } from './api/pods.js';
import { sharesRouter } from './api/shares.js';
import type { Scheduler } from './scheduler.js';
import { templatesRouter } from './api/templates.js';
import { unimplementedRouter } from './api/unimplemented.js';

export interface AppDeps extends PodsDeps, IdentityDeps {
  log: Logger;
  /** The nodes API; without it (API-only tests) /v3/admin/nodes is not served. */
  nodesApi?: Omit<NodesDeps, 'config' | 'nodes'>;
  /** Where new volumes go. */
  scheduler: Pick<Scheduler, 'pick'>;
  /** Prometheus metrics; without them (API-only tests) GET /metrics is not served. */
  metrics?: CoordinatorMetrics;
}

/** The REST API as a Koa app, testable without a port (app.callback()). */
export function createApp(deps: AppDeps): Koa {
  const { config, log } = deps;
  const app = new Koa();
  app.proxy = false;
  app.use(errorEnvelope(log, config.version));
  app.use(tenantResolver(deps.tenants));

  // Routers are merged into as few as the order allows: each one a request passes costs a host
  // lookup and a match (sixteen of them were a third of a GET's routing time).
  const open = new Router();
  // The reference serves /healthcheck (tapipy calls /v3/healthcheck); Tapis deployments also answer under /pods.
  for (const path of ['/v3/healthcheck', '/v3/pods/healthcheck']) open.get(path, (ctx) => ok(ctx, { status: 'healthy' }, 'Healthy.'));
  open.use(openApiRouter(config.version).routes());
  // tapis_auth's login: browsers and the hosts' Caddy call it without a token.
  open.use(podAuthRouter(deps).routes());
  app.use(open.routes());
  app.use(identityRouter(deps).routes()); // apart: its admin routes authenticate as router middleware
  app.use(consoleRouter().routes()); // the web console's static files, at /ui/ (a strict router)

  // Prometheus scrapes with a Bearer token of its own; a site admin's X-Tapis-Token works too.
  if (deps.metrics) app.use(prometheusRouter({ config, metrics: deps.metrics, authenticate: authenticate(deps) }).routes());
  app.use(authenticate(deps));
  // One router for every authenticated route, in this order: literal segments (/pods/images,
  // /pods/templates, ...) are routed before /pods/{pod_id}. None has router middleware.
  const api = new Router();
  if (deps.nodesApi) api.use(nodesRouter({ ...deps.nodesApi, config, nodes: deps.nodes }).routes());
  const shares = sharesRouter({ ...deps, log: log.child({ component: 'storage' }) });
  const podFiles = podFilesRouter(deps);
  const pods = podsApi(deps);
  const jupyter = jupyterRouter({ ...deps, createPod: pods.createPod });
  for (const router of [imagesRouter(config, deps.images), templatesRouter(config, deps.templates), shares, jupyter, podAsTemplateRouter(deps), unimplementedRouter(), podFiles, podMetricsRouter(deps), pods.router]) {
    api.use(router.routes());
  }
  app.use(api.routes());
  return app;
}
