import type { PodView } from '../shared/api.js';
import { accessOf, podHost, type PodSpec } from '../shared/pod.js';
import { render, type Placeholder } from '../shared/template.js';
import { deriveStatus, isCurrent } from '../shared/status.js';
import type { ContainerSpec, RouteAccess } from '../shared/protocol.js';
import type { Mount } from '../shared/storage.js';
import type { PodRecord } from './store/pods.js';

/**
 * The URL users are given for one networking entry: '' for local_only; host:port for a dedicated
 * port, and for SNI-routed TCP when the shared TLS port is not 443; the host name otherwise.
 */
export function entryUrl(spec: PodSpec, name: string, baseDomain: string, ports: Record<string, number> = {}, tlsPort = 443): string {
  const net = spec.networking[name]!;
  if (net.protocol === 'local_only') return '';
  const host = podHost(spec.pod_id, name, spec.tenant, baseDomain);
  if (net.dedicated_port) return ports[name] ? `${host}:${ports[name]}` : host;
  return net.protocol !== 'http' && tlsPort !== 443 ? `${host}:${tlsPort}` : host;
}

/** A pod as the Tapis API shows it. */
export function podResponse(rec: PodRecord, baseDomain: string, nodeConnected: (nodeId: string) => boolean, tlsPort = 443): PodView {
  const { spec, desired, placement, observed } = rec;
  const derived = deriveStatus(desired, placement, observed);
  const current = isCurrent(desired, observed) ? observed : null;
  const networking = Object.fromEntries(
    Object.entries(spec.networking).map(([name, n]) => [name, { protocol: n.protocol, port: n.port, url: entryUrl(spec, name, baseDomain, rec.ports, tlsPort), ...(n.dedicated_port ? { dedicated_port: true } : {}), ...accessOf(n) }]),
  );
  return {
    pod_id: spec.pod_id,
    image: spec.image,
    template: spec.template,
    description: spec.description,
    command: spec.command ?? null,
    arguments: spec.arguments ?? null,
    environment_variables: spec.environment_variables,
    status_requested: desired.status_requested,
    volume_mounts: spec.volume_mounts,
    ...(spec.data_dir ? { data_dir: spec.data_dir } : {}),
    ...(spec.keep_data ? { keep_data: true } : {}),
    ...(spec.healthchecks ? { healthchecks: spec.healthchecks } : {}),
    time_to_stop_default: spec.time_to_stop_default,
    time_to_stop_instance: spec.time_to_stop_instance ?? null,
    networking,
    url: networking.default?.url ?? '',
    resources: spec.resources,
    compute_queue: spec.compute_queue,
    time_to_stop_ts: desired.time_to_stop_ts,
    status: derived.status,
    status_container: {
      message:
        derived.status === 'REQUESTED' && rec.note
          ? `Pod is waiting for a host: ${rec.note}.`
          : rec.note && placement && !nodeConnected(placement.nodeId)
            ? `${derived.message} ${rec.note}.`
            : derived.message,
      ...(current
        ? {
            phase: current.phase,
            start_time: current.startedAt ?? null,
            finish_time: current.finishedAt ?? null,
            exit_code: current.exitCode ?? null,
            health: current.health,
            container_id: current.containerId?.slice(0, 12) ?? null,
            ...(current.message ? { reason: current.message } : {}),
          }
        : {}),
      ...(placement ? { node: placement.nodeId, node_reachable: nodeConnected(placement.nodeId) } : {}),
    },
    creation_ts: spec.creation_ts,
    update_ts: spec.update_ts,
    start_instance_ts: desired.start_instance_ts,
  };
}

/** What an agent needs to run the pod's current instance, with the template placeholders filled in. */
export function containerSpec(spec: PodSpec, baseDomain: string, secrets: Record<Placeholder, string>, tcpPorts: Record<string, number> = {}, mounts: Mount[] = []): ContainerSpec {
  const fill = (xs: string[]) => xs.map((x) => render(x, secrets));
  return {
    image: spec.image,
    pull: spec.image_pull !== false,
    ...(spec.command ? { command: fill(spec.command) } : {}),
    ...(spec.arguments ? { args: fill(spec.arguments) } : {}),
    env: Object.fromEntries(Object.entries(spec.environment_variables).map(([k, v]) => [k, render(v, secrets)])),
    ports: Object.entries(spec.networking).map(([name, n]) => ({
      name,
      port: n.port,
      protocol: n.protocol,
      host: podHost(spec.pod_id, name, spec.tenant, baseDomain),
      ...(n.dedicated_port && tcpPorts[name] ? { dedicatedPort: tcpPorts[name] } : {}),
      ...routeAccess(spec.pod_id, name, n),
    })),
    ...(spec.user ? { user: spec.user } : {}),
    ...(spec.init ? { init: spec.init.map(fill) } : {}),
    ...(spec.readiness ? { readiness: { exec: fill(spec.readiness.exec) } } : {}),
    ...(spec.healthchecks ? { healthchecks: spec.healthchecks } : {}),
    mounts,
    cpuLimitMilli: spec.resources.cpu_limit,
    memLimitMb: spec.resources.mem_limit,
    cpuRequestMilli: spec.resources.cpu_request,
    memRequestMb: spec.resources.mem_request,
  };
}

/** What the host's Caddy enforces for one networking entry; nothing when the entry sets no access field. */
function routeAccess(podId: string, name: string, n: PodSpec['networking'][string]): { access?: RouteAccess } {
  const access: RouteAccess = {};
  if (n.ip_allow_list?.length) access.ipAllow = n.ip_allow_list;
  if (n.protocol === 'http' && n.cors_allow_origins?.length) {
    access.cors = {
      origins: n.cors_allow_origins,
      methods: n.cors_allow_methods ?? [],
      headers: n.cors_allow_headers ?? [],
      credentials: n.cors_allow_credentials ?? false,
      maxAge: n.cors_max_age ?? 100,
    };
  }
  if (n.protocol === 'http' && n.tapis_auth) {
    access.auth = { path: `/v3/pods/${podIdNet(podId, name)}/auth`, headers: Object.keys(n.tapis_auth_response_headers ?? {}) };
  }
  return Object.keys(access).length > 0 ? { access } : {};
}

/** The name Tapis gives one networking entry of a pod in URLs: the pod id, or pod id and entry name. */
export function podIdNet(podId: string, name: string): string {
  return name === 'default' ? podId : `${podId}-${name}`;
}
