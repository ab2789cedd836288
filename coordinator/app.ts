import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from '../shared/log.js';
import { authenticate, tenantResolver } from './api/auth.js';
import { consoleRouter } from './api/console.js';
import { errorEnvelope, ok } from './api/envelope.js';
import { identityAdminRouter, identityRouter, type IdentityDeps } from './api/identity.js';
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
import { routePodsApart } from './api/pod-routes-apart.js';
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

  // Every route that needs no token in one router, before the authentication: each router a
  // request passes costs it a host lookup and a match of every route the router holds. No
  // router here has router middleware.
  const open = new Router();
  // The reference serves /healthcheck (tapipy calls /v3/healthcheck); Tapis deployments also answer under /pods.
  for (const path of ['/v3/healthcheck', '/v3/pods/healthcheck']) open.get(path, (ctx) => ok(ctx, { status: 'healthy' }, 'Healthy.'));
  open.use(openApiRouter(config.version).routes());
  // tapis_auth's login: browsers and the hosts' Caddy call it without a token.
  open.use(podAuthRouter(deps).routes());
  open.use(identityRouter(deps).routes()); // sites, tenants, and tokens for a password
  open.use(consoleRouter().routes()); // the web console's static files, at /ui/ (strict routes)
  // Prometheus scrapes with a Bearer token of its own; a site admin's X-Tapis-Token works too.
  if (deps.metrics) open.use(prometheusRouter({ config, metrics: deps.metrics, authenticate: authenticate(deps) }).routes());
  app.use(open.routes());

  app.use(authenticate(deps));
  // Every authenticated route: those under fixed names (/pods/images, /pods/templates, ...)
  // before those of /pods/{pod_id}, which a request for a pod meets alone (see routePodsApart).
  const named = new Router();
  named.use(identityAdminRouter(deps).routes());
  if (deps.nodesApi) named.use(nodesRouter({ ...deps.nodesApi, config, nodes: deps.nodes }).routes());
  const shares = sharesRouter({ ...deps, log: log.child({ component: 'storage' }) });
  const pods = podsApi(deps);
  const jupyter = jupyterRouter({ ...deps, createPod: pods.createPod });
  for (const router of [imagesRouter(config, deps.images), templatesRouter(config, deps.templates), shares, jupyter, unimplementedRouter()]) {
    named.use(router.routes());
  }
  const ofPods = new Router();
  for (const router of [podAsTemplateRouter(deps), podFilesRouter(deps), podMetricsRouter(deps), pods.router]) ofPods.use(router.routes());
  app.use(routePodsApart(named, ofPods));
  return app;
}
