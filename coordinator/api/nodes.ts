import Router from '@koa/router';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { notFound } from '../../shared/errors.js';
import type { Scheduler } from '../scheduler.js';
import type { NodeStore } from '../store/nodes.js';
import { requireSiteAdmin } from './auth.js';
import { readJson, validate } from './body.js';
import { ok } from './envelope.js';

export interface NodesDeps {
  config: CoordinatorConfig;
  nodes: NodeStore;
  scheduler: Pick<Scheduler, 'usage'>;
  nodeConnected: (nodeId: string) => boolean;
  /** Cut the links that used a revoked token; how many were cut. */
  revokeLinks: (tokenId: string) => number;
  /** Look at a node's pods now (after cordon/drain). */
  kickAll: () => void;
}

const NewNodeToken = z.strictObject({ node_id: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/).max(128).nullable().default(null) });

/** Site administration of Docker hosts (our extension): nodes, cordon, drain, node tokens. */
export function nodesRouter(deps: NodesDeps): Router {
  const { config, nodes, scheduler } = deps;
  const router = new Router();

  const view = async (nodeId: string) => {
    const rec = await nodes.get(nodeId);
    if (!rec) return null;
    const admin = await nodes.admin(nodeId);
    const usage = await scheduler.usage(nodeId);
    const connected = deps.nodeConnected(nodeId);
    const lost = !connected && Date.now() - Date.parse(rec.lastHeartbeat) > config.lostAfterS * 1000;
    return {
      node_id: nodeId,
      state: connected ? 'ready' : lost ? 'lost' : 'unreachable',
      cordoned: admin.cordoned,
      draining: admin.draining,
      capacity: { cpu_milli: rec.capacity.cpuMilli, memory_mb: rec.capacity.memoryMb },
      usage: { cpu_milli: usage.cpuMilli, memory_mb: usage.memoryMb, pods: usage.pods },
      running_containers: rec.running,
      last_heartbeat: rec.lastHeartbeat,
      connected_at: rec.connectedAt,
      docker_version: rec.dockerVersion,
      agent_version: rec.agentVersion,
    };
  };

  router.get('/v3/admin/nodes', async (ctx) => {
    requireSiteAdmin(ctx, 'list nodes');
    const out = [];
    for (const rec of (await nodes.list()).sort((a, b) => a.nodeId.localeCompare(b.nodeId))) out.push(await view(rec.nodeId));
    ok(ctx, out, 'Nodes retrieved successfully.');
  });

  router.get('/v3/admin/nodes/:node_id', async (ctx) => {
    requireSiteAdmin(ctx, 'see nodes');
    const v = await view(ctx.params.node_id!);
    if (!v) throw notFound(`node "${ctx.params.node_id}" was not found`);
    ok(ctx, v, 'Node retrieved successfully.');
  });

  const change = (verb: string, next: (cur: { cordoned: boolean; draining: boolean }) => { cordoned: boolean; draining: boolean }) =>
    router.post(`/v3/admin/nodes/:node_id/${verb}`, async (ctx) => {
      requireSiteAdmin(ctx, `${verb} nodes`);
      const nodeId = ctx.params.node_id!;
      if (!(await nodes.get(nodeId))) throw notFound(`node "${nodeId}" was not found`);
      await nodes.setAdmin(nodeId, next(await nodes.admin(nodeId)));
      deps.kickAll();
      ok(ctx, await view(nodeId), `Node ${verb} done.`);
    });
  // cordon: no new pods; drain: cordon and move every pod off; uncordon: take pods again.
  change('cordon', (c) => ({ ...c, cordoned: true }));
  change('drain', () => ({ cordoned: true, draining: true }));
  change('uncordon', () => ({ cordoned: false, draining: false }));

  router.get('/v3/admin/node-tokens', async (ctx) => {
    requireSiteAdmin(ctx, 'list node tokens');
    ok(ctx, (await nodes.tokens()).map(({ sha256: _secretDigest, ...t }) => t), 'Node tokens retrieved successfully.');
  });

  router.post('/v3/admin/node-tokens', async (ctx) => {
    const id = requireSiteAdmin(ctx, 'issue node tokens');
    const body = validate(NewNodeToken, await readJson(ctx, config.maxBodyBytes));
    const { record, token } = await nodes.issueToken(body.node_id, id.username);
    const { sha256: _secretDigest, ...shown } = record;
    ok(ctx, { ...shown, token }, 'Node token issued; it is shown only this once.');
  });

  router.delete('/v3/admin/node-tokens/:token_id', async (ctx) => {
    requireSiteAdmin(ctx, 'revoke node tokens');
    if (!(await nodes.revokeToken(ctx.params.token_id!))) throw notFound(`node token "${ctx.params.token_id}" was not found`);
    const cut = deps.revokeLinks(ctx.params.token_id!);
    ok(ctx, `Node token ${ctx.params.token_id} revoked; ${cut} link(s) closed.`, 'Node token revoked.');
  });

  return router;
}
