import Router from '@koa/router';
import { z } from 'zod';
import { CredentialsView, envelopeOf, ErrorEnvelope, ImageView, LogsView, PermissionsView, PodView } from '../../shared/api.js';
import { NewPod, UpdatePod } from '../../shared/pod.js';
import { NewImage, NewImages } from './images.js';
import { JupyterView } from './jupyter.js';
import { NewTemplateTagFromPod } from './pod-as-template.js';
import { SetTemplatePermission, TagView } from './templates.js';
import { ExecRequest } from './pod-files.js';
import { SetPermission } from './pods.js';
import { NewSnapshot, NewVolume, snapshotView, UpdateSnapshot, UpdateVolume, volumeView } from './shares.js';

// The OpenAPI 3 document the service serves, generated from the zod schemas it validates
// requests with and types its answers by. Paths and operationIds are the Tapis reference's
// (paths without the /v3 that clients add, which is the server URL). Only what is built is
// listed: operations that answer 501 are left out.

type Json = Record<string, unknown>;

function schema(s: z.ZodType, io: 'input' | 'output'): Json {
  const out = z.toJSONSchema(s, { target: 'openapi-3.0', io, unrepresentable: 'any' }) as Json;
  delete out.$schema;
  return out;
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: schema(ErrorEnvelope, 'output') } } });

interface Op {
  operationId: string;
  summary: string;
  tag: string;
  result: z.ZodType;
  body?: z.ZodType;
  params?: string[];
  query?: Json[];
  open?: boolean;
  errors?: number[];
}

function operation(o: Op): Json {
  const errors = o.errors ?? [400, 401, 403, 404];
  return {
    tags: [o.tag],
    summary: o.summary,
    operationId: o.operationId,
    ...(o.open ? { security: [] } : {}),
    parameters: [
      ...(o.params ?? []).map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      ...(o.query ?? []),
    ],
    ...(o.body ? { requestBody: { required: true, content: { 'application/json': { schema: schema(o.body, 'input') } } } } : {}),
    responses: {
      '200': { description: 'Successful Response', content: { 'application/json': { schema: schema(envelopeOf(o.result), 'output') } } },
      ...Object.fromEntries(errors.map((code) => [String(code), errorResponse(ERROR_TEXT[code] ?? 'Error')])),
    },
  };
}

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid request: the message names the field',
  401: 'Missing, invalid or expired X-Tapis-Token',
  403: 'Not enough permission',
  404: 'No such pod or image in this tenant',
  405: 'Method not allowed',
  413: 'Request body too large',
  415: 'Request body is not JSON',
};

const withBody = [400, 401, 403, 404, 413, 415];

export function openApiDocument(version: string): Json {
  const p = (...ops: Array<[method: string, op: Op]>) => Object.fromEntries(ops.map(([m, op]) => [m, operation(op)]));
  return {
    openapi: '3.0.3',
    info: { title: 'Pods', version, description: 'A Tapis-Pods-compatible pods service.' },
    servers: [{ url: '/v3' }],
    components: { securitySchemes: { TapisToken: { type: 'apiKey', in: 'header', name: 'X-Tapis-Token' } } },
    security: [{ TapisToken: [] }],
    paths: {
      '/healthcheck': p(['get', { operationId: 'healthcheck', summary: 'healthcheck', tag: 'Misc', result: z.object({ status: z.string() }), open: true, errors: [] }]),
      '/pods/images': p(
        ['get', { operationId: 'get_images', summary: 'get_images', tag: 'Images', result: z.array(ImageView), errors: [401] }],
        ['post', { operationId: 'add_image', summary: 'add_image', tag: 'Images', result: ImageView, body: NewImage, errors: [400, 401, 403, 413, 415] }],
      ),
      '/pods/images/bulk': p(['post', {
        operationId: 'add_images', summary: 'add_images', tag: 'Images', result: z.array(ImageView), body: NewImages, errors: [400, 401, 403, 413, 415],
        query: [{ name: 'skip_duplicates', in: 'query', required: false, schema: { type: 'boolean', default: false } }],
      }]),
      '/pods/images/{image_id}': p(
        ['get', { operationId: 'get_image', summary: 'get_image', tag: 'Images', result: ImageView, params: ['image_id'], errors: [401, 404] }],
        ['delete', { operationId: 'delete_image', summary: 'delete_image', tag: 'Images', result: z.string(), params: ['image_id'], errors: [401, 403, 404] }],
      ),
      '/pods': p(
        ['get', { operationId: 'list_pods', summary: 'list_pods', tag: 'Pods', result: z.array(PodView), errors: [401] }],
        ['post', { operationId: 'create_pod', summary: 'create_pod', tag: 'Pods', result: PodView, body: NewPod, errors: withBody }],
      ),
      '/pods/{pod_id}': p(
        ['get', { operationId: 'get_pod', summary: 'get_pod', tag: 'Pods', result: PodView, params: ['pod_id'] }],
        ['put', { operationId: 'update_pod', summary: 'update_pod', tag: 'Pods', result: PodView, params: ['pod_id'], body: UpdatePod, errors: withBody }],
        ['delete', { operationId: 'delete_pod', summary: 'delete_pod', tag: 'Pods', result: z.string(), params: ['pod_id'] }],
      ),
      '/pods/{pod_id}/derived': p(['get', { operationId: 'get_derived_pod', summary: 'get_derived_pod', tag: 'Pods', result: PodView, params: ['pod_id'] }]),
      '/pods/{pod_id}/credentials': p(['get', { operationId: 'get_pod_credentials', summary: 'get_pod_credentials', tag: 'Pods', result: CredentialsView, params: ['pod_id'] }]),
      '/pods/{pod_id}/logs': p(['get', { operationId: 'get_pod_logs', summary: 'get_pod_logs', tag: 'Pods', result: LogsView, params: ['pod_id'] }]),
      '/pods/{pod_id}/permissions': p(
        ['get', { operationId: 'get_pod_permissions', summary: 'get_pod_permissions', tag: 'Permissions', result: PermissionsView, params: ['pod_id'] }],
        ['post', { operationId: 'set_pod_permission', summary: 'set_pod_permission', tag: 'Permissions', result: PermissionsView, params: ['pod_id'], body: SetPermission, errors: withBody }],
      ),
      '/pods/{pod_id}/permissions/{user}': p(['delete', { operationId: 'delete_pod_permission', summary: 'delete_pod_permission', tag: 'Permissions', result: PermissionsView, params: ['pod_id', 'user'] }]),
      '/pods/{pod_id}/exec': p(['post', { operationId: 'exec_pod_commands', summary: 'exec_pod_commands', tag: 'Pods', result: ExecResultView, params: ['pod_id'], body: ExecRequest, errors: [...withBody, 409, 503] }]),
      ...shareOps('volume', VolumeView, NewVolume, UpdateVolume),
      ...shareOps('snapshot', SnapshotView, NewSnapshot, UpdateSnapshot),
      '/pods/templates/{template_id}/permissions': p(
        ['get', { operationId: 'get_template_permissions', summary: 'get_template_permissions', tag: 'Permissions', result: PermissionsView, params: ['template_id'] }],
        ['post', { operationId: 'set_template_permission', summary: 'set_template_permission', tag: 'Permissions', result: PermissionsView, params: ['template_id'], body: SetTemplatePermission, errors: withBody }],
      ),
      '/pods/templates/{template_id}/permissions/{user}': p(['delete', { operationId: 'delete_template_permission', summary: 'delete_template_permission', tag: 'Permissions', result: PermissionsView, params: ['template_id', 'user'] }]),
      '/pods/{pod_id_net}/save_pod_as_template_tag': p(['post', {
        operationId: 'save_pod_as_template_tag', summary: 'save_pod_as_template_tag', tag: 'Pods', result: TagView, params: ['pod_id_net'], body: NewTemplateTagFromPod, errors: withBody,
      }]),
      '/pods/jupyter/ensure': p(['get', { operationId: 'ensure_jupyter_pod', summary: 'ensure_jupyter_pod', tag: 'Jupyter', result: JupyterView, errors: [400, 401, 403, 404, 409] }]),
      '/pods/{pod_id}/stop': p(['get', { operationId: 'stop_pod', summary: 'stop_pod', tag: 'Pods', result: PodView, params: ['pod_id'], errors: [401, 403, 404, 409] }]),
      '/pods/{pod_id}/start': p(['get', { operationId: 'start_pod', summary: 'start_pod', tag: 'Pods', result: PodView, params: ['pod_id'], errors: [401, 403, 404, 409] }]),
      '/pods/{pod_id}/restart': p(['get', {
        operationId: 'restart_pod', summary: 'restart_pod', tag: 'Pods', result: PodView, params: ['pod_id'], errors: [400, 401, 403, 404, 409],
        query: [{ name: 'grab_latest_template_tag', in: 'query', required: false, schema: { type: 'boolean', default: false } }],
      }]),
    },
  };
}

const VolumeView = z.strictObject(Object.fromEntries(Object.keys(volumeView({} as never)).map((k) => [k, k === 'size' || k === 'size_limit' ? z.number().int() : z.string()])));
const SnapshotView = z.strictObject(Object.fromEntries(Object.keys(snapshotView({} as never)).map((k) => [k, k === 'size' || k === 'size_limit' ? z.number().int() : z.string()])));
const ExecResultView = z.object({
  execution_results: z.array(z.object({ command: z.unknown(), stdout: z.string(), stderr: z.string(), success: z.boolean(), exit_code: z.number().int(), duration_sec: z.number(), timestamp: z.string() })),
  total_commands: z.number().int(),
  successful_commands: z.number().int(),
});

/** The JSON operations of volumes or snapshots (their files and uploads are binary and left out). */
function shareOps(kind: 'volume' | 'snapshot', view: z.ZodType, create: z.ZodType, update: z.ZodType): Json {
  const id = `${kind}_id`;
  const tag = kind === 'volume' ? 'Volumes' : 'Snapshots';
  const op = (name: string, o: Omit<Op, 'operationId' | 'summary' | 'tag'>) => operation({ operationId: name, summary: name, tag, ...o });
  const errs = [401, 403, 404, 503];
  return {
    [`/pods/${kind}s`]: {
      get: op(`list_${kind}s`, { result: z.array(view), errors: [401] }),
      post: op(`create_${kind}`, { result: view, body: create, errors: [...withBody, 409, 503] }),
    },
    [`/pods/${kind}s/{${id}}`]: {
      get: op(`get_${kind}`, { result: view, params: [id], errors: errs }),
      put: op(`update_${kind}`, { result: view, params: [id], body: update, errors: [...withBody, 503] }),
      delete: op(`delete_${kind}`, { result: z.string(), params: [id], errors: [401, 403, 404, 409] }),
    },
    [`/pods/${kind}s/{${id}}/list`]: { get: op(`list_${kind}_files`, { result: z.array(z.record(z.string(), z.unknown())), params: [id], errors: [400, ...errs, 409] }) },
    [`/pods/${kind}s/{${id}}/permissions`]: {
      get: op(`get_${kind}_permissions`, { result: PermissionsView, params: [id] }),
      post: op(`set_${kind}_permission`, { result: PermissionsView, params: [id], body: SetPermission, errors: withBody }),
    },
    [`/pods/${kind}s/{${id}}/permissions/{user}`]: { delete: op(`delete_${kind}_permission`, { result: PermissionsView, params: [id, 'user'] }) },
  };
}

export function openApiRouter(version: string): Router {
  const router = new Router();
  // Made on the first request and kept: making it at start grew every coordinator's heap for a
  // document few ever ask for.
  let doc: string | null = null;
  router.get('/v3/pods/openapi.json', (ctx) => {
    doc ??= JSON.stringify(openApiDocument(version));
    ctx.status = 200;
    ctx.body = doc;
    ctx.set('Content-Type', 'application/json');
  });
  return router;
}
