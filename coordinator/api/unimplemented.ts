import Router from '@koa/router';
import { PodsError } from '../../shared/errors.js';

// Every other operation of the Tapis Pods spec answers with a clear 501 until it is built.
const NOT_YET: Array<[method: 'get' | 'post' | 'put' | 'delete', path: string, what: string]> = [
  ['get', '/v3/traefik-config', 'Traefik configuration (this site routes with Caddy)'],
  ['get', '/v3/error-handler/:status', 'proxy error pages'],
];

export function unimplementedRouter(): Router {
  const router = new Router();
  for (const [method, path, what] of NOT_YET) {
    router[method](path, () => {
      throw new PodsError('NOT_IMPLEMENTED', `${what} are not implemented on this site yet`);
    });
  }
  return router;
}
