import type Router from '@koa/router';

const PODS = '/v3/pods/';

/** The `x` of a path /v3/pods/x or /v3/pods/x/..., lowercased (routes match regardless of case); null for other paths. */
function segmentAfterPods(path: string): string | null {
  if (path.length < PODS.length || path.slice(0, PODS.length).toLowerCase() !== PODS) return null;
  const end = path.indexOf('/', PODS.length);
  return path.slice(PODS.length, end === -1 ? undefined : end).toLowerCase();
}

/** A route path's segments: '/v3/pods/:pod_id' gives ['v3', 'pods', ':pod_id']; none for a regular expression. */
const segmentsOf = (path: string | RegExp) => (typeof path === 'string' ? path.split('/').slice(1) : []);
const isLiteral = (segment: string | undefined) => segment !== undefined && /^[\w.-]+$/.test(segment);

/**
 * The authenticated routes as two routers, so that a request for one pod (/v3/pods/{pod_id}...,
 * most of the API's traffic) is matched against the pods' routes only: every route a router
 * holds costs each request it sees a regular expression and a call. `named` has the routes under
 * fixed names (/v3/pods/images..., /v3/pods/templates..., /v3/admin/...), `pods` those of
 * /v3/pods and /v3/pods/{pod_id}...: a request goes through `named` and then `pods`, as through
 * one router of both, except that a path /v3/pods/x... whose x no route of `named` names skips
 * `named`, where no route could match it. Routes on the wrong side are an error at start-up.
 */
export function routePodsApart(named: Router, pods: Router): ReturnType<Router['routes']> {
  const names = new Set<string>();
  for (const { path } of named.stack) {
    const [v3, second, third] = segmentsOf(path);
    const underPods = second?.toLowerCase() === 'pods';
    if (!isLiteral(v3) || !isLiteral(second) || (underPods && !isLiteral(third))) {
      throw new Error(`route ${path} can match a pod's path: it belongs with the pods' routes`);
    }
    if (underPods) names.add(third!.toLowerCase());
  }
  for (const { path } of pods.stack) {
    const [v3, second, third] = segmentsOf(path);
    if (v3 !== 'v3' || second !== 'pods' || (third !== undefined && !third.startsWith(':'))) {
      throw new Error(`route ${path} is not one of a pod's (/v3/pods/:pod_id...): it belongs with the named routes`);
    }
  }
  const namedRoutes = named.routes();
  const podRoutes = pods.routes();
  return (ctx, next) => {
    const x = segmentAfterPods(ctx.path);
    if (x !== null && !names.has(x)) return podRoutes(ctx, next);
    return namedRoutes(ctx, () => podRoutes(ctx, next));
  };
}
