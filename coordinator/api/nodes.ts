import Router from '@koa/router';
import { z } from 'zod';
import type { CoordinatorConfig } from '../../shared/config.js';
import { badRequest, notFound } from '../../shared/errors.js';
import type { Scheduler } from '../scheduler.js';
import { NodeId } from '../../shared/protocol.js';
import type { NodeAdmin, NodeStore } from '../store/nodes.js';
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

const NewNodeToken = z.strictObject({ node_id: NodeId });

const NodeLimits = z.strictObject({
  cpu_milli: z.number().int().min(0).nullable().optional(),
  memory_mb: z.number().int().min(0).nullable().optional(),
});

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
      reported_capacity: rec.reported ? { cpu_milli: rec.reported.cpuMilli, memory_mb: rec.reported.memoryMb } : null,
      limits: {
        cpu_milli: admin.max_cpu_milli ?? config.nodeMaxCpuMilli,
        memory_mb: admin.max_memory_mb ?? config.nodeMaxMemoryMb,
        set_for_node: admin.max_cpu_milli !== null || admin.max_memory_mb !== null,
      },
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

  const change = (verb: string, next: (cur: NodeAdmin) => NodeAdmin) =>
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
  change('drain', (c) => ({ ...c, cordoned: true, draining: true }));
  change('uncordon', (c) => ({ ...c, cordoned: false, draining: false }));

  // The most a node may claim (null: the site's ceiling); a node may be limited before it first connects.
  router.put('/v3/admin/nodes/:node_id/limits', async (ctx) => {
    requireSiteAdmin(ctx, 'limit nodes');
    const parsed = NodeId.safeParse(ctx.params.node_id);
    if (!parsed.success) throw badRequest(`node_id: ${parsed.error.issues[0]?.message}`);
    const nodeId = parsed.data;
    const body = validate(NodeLimits, await readJson(ctx, config.maxBodyBytes));
    const cur = await nodes.admin(nodeId);
    await nodes.setAdmin(nodeId, {
      ...cur,
      ...(body.cpu_milli !== undefined ? { max_cpu_milli: body.cpu_milli } : {}),
      ...(body.memory_mb !== undefined ? { max_memory_mb: body.memory_mb } : {}),
    });
    deps.kickAll();
    const v = await view(nodeId);
    ok(ctx, v ?? { node_id: nodeId, limits: await nodes.admin(nodeId) }, 'Node limits set; a connected node has them by its next heartbeat.');
  });

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
