import { z } from 'zod';
import { NetworkAccess, Protocol, StoredResources, HealthChecks } from './pod.js';

// What the REST API answers with. The handlers' results are typed by these schemas and the
// served OpenAPI document is generated from them, so the two cannot drift apart.

export const NetworkingView = z.object({ protocol: Protocol, port: z.number().int(), url: z.string(), dedicated_port: z.boolean().optional(), ...NetworkAccess.shape });

export const PodView = z.strictObject({
  pod_id: z.string(),
  image: z.string(),
  template: z.string(),
  description: z.string(),
  command: z.array(z.string()).nullable(),
  arguments: z.array(z.string()).nullable(),
  environment_variables: z.record(z.string(), z.string()),
  status_requested: z.enum(['ON', 'OFF', 'RESTART']),
  volume_mounts: z.record(z.string(), z.unknown()),
  /** Where the pod keeps its data (our extension; set by data templates or the user). */
  data_dir: z.string().optional(),
  /** The pod's data is kept as a volume when it is deleted (our extension). */
  keep_data: z.boolean().optional(),
  /** Health checks (our extension, in Tapis' newer shape). */
  healthchecks: HealthChecks.optional(),
  time_to_stop_default: z.number().int(),
  time_to_stop_instance: z.number().int().nullable(),
  networking: z.record(z.string(), NetworkingView),
  /** The default networking entry's URL (our addition; Tapis clients read networking.*.url). */
  url: z.string(),
  resources: StoredResources,
  compute_queue: z.string(),
  time_to_stop_ts: z.string().nullable(),
  status: z.enum(['REQUESTED', 'SPAWNER_SETUP', 'CREATING', 'RUNNING', 'DELETING', 'STOPPED', 'ERROR', 'COMPLETE']),
  status_container: z.record(z.string(), z.unknown()),
  creation_ts: z.string(),
  update_ts: z.string(),
  start_instance_ts: z.string().nullable(),
});
export type PodView = z.infer<typeof PodView>;

export const LogsView = z.strictObject({ logs: z.string(), action_logs: z.array(z.string()) });
export const CredentialsView = z.strictObject({ user_username: z.string(), user_password: z.string() });
export const PermissionsView = z.strictObject({ permissions: z.array(z.string()) });
export const ImageView = z.strictObject({
  image: z.string(),
  /** The tags and digests ("sha256:...") this entry pins; empty: any tag, but only as already present on a host. */
  tags: z.array(z.string()).default([]),
  tenants: z.array(z.string()),
  description: z.string(),
  creation_ts: z.string(),
  added_by: z.string(),
});

export function envelopeOf<T extends z.ZodType>(result: T) {
  return z.strictObject({
    status: z.literal('success'),
    message: z.string(),
    result,
    version: z.string(),
    metadata: z.record(z.string(), z.unknown()),
  });
}

export const ErrorEnvelope = z.strictObject({
  status: z.literal('error'),
  message: z.string(),
  result: z.null(),
  version: z.string(),
  metadata: z.record(z.string(), z.unknown()),
});
