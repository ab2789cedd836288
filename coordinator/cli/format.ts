// Human output of the `pods` CLI: aligned columns and key/value blocks. `--json` bypasses all of it.

/** Rows under a header, each column as wide as its widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `key  value` lines, keys aligned; empty values are left out. */
export function fields(pairs: Array<[string, string | undefined | null]>): string {
  const shown = pairs.filter((p): p is [string, string] => p[1] !== undefined && p[1] !== null && p[1] !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

/** A pod as `pods get` shows it. */
export function podDetails(pod: any): string {
  const sc = pod.status_container ?? {};
  const nets = Object.entries((pod.networking ?? {}) as Record<string, { protocol: string; port: number; url: string }>);
  return fields([
    ['pod_id', pod.pod_id],
    ['status', sc.message ? `${pod.status} (${sc.message})` : pod.status],
    ['url', pod.url],
    ['image', pod.image],
    ['template', pod.template],
    ['description', pod.description],
    ['requested', pod.status_requested],
    ['node', sc.node ? `${sc.node}${sc.node_reachable === false ? ' (unreachable)' : ''}` : undefined],
    ['started', pod.start_instance_ts],
    ['created', pod.creation_ts],
    ['stops at', pod.time_to_stop_ts],
    ['resources', pod.resources ? `cpu ${pod.resources.cpu_request}m-${pod.resources.cpu_limit}m, memory ${pod.resources.mem_request}-${pod.resources.mem_limit} MB` : undefined],
    ...nets.map(([name, n], i): [string, string] => [i === 0 ? 'networking' : '', `${name}: ${n.protocol} port ${n.port}${n.url ? ` at ${n.url}` : ''}`]),
  ]);
}

/** What the image or template column shows: the template when there is one. */
export const source = (pod: any) => (pod.template ? `template ${pod.template}` : pod.image);
