import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from './api-client.js';
import { CliError, ExitCode, usageError } from './errors.js';
import { fields, podDetails, source, table } from './format.js';

// The user commands on pods and templates. Each takes the parsed command line and an API
// client and writes its result: human lines by default, the API's `result` as JSON with --json.

export interface Invocation {
  values: Record<string, string | boolean | string[] | undefined>;
  /** Arguments before a `--`. */
  positionals: string[];
  /** Arguments after a `--` (a command line for `create` and `exec`), null when there was no `--`. */
  rest: string[] | null;
  json: boolean;
}

export type Run = (inv: Invocation, api: ApiClient) => Promise<void>;

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
}
const printJson = (value: unknown): void => out(JSON.stringify(value, null, 2));
const podPath = (id: string, tail = '') => `/v3/pods/${encodeURIComponent(id)}${tail}`;

function podIdOf(inv: Invocation, command: string): string {
  const [id, ...extra] = inv.positionals;
  if (!id) throw usageError(`${command}: give the pod's id (pods ${command} POD_ID)`);
  if (extra.length) throw usageError(`${command}: unexpected argument "${extra[0]}"`);
  return id;
}

function wholeNumber(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw usageError(`--${name}: must be a whole number of at least ${min}, not "${value}"`);
  return n;
}

// ---- create, with its progress display -------------------------------------------------

/** Statuses a new pod does not leave by itself on the way to RUNNING. */
const FAILED = new Set(['ERROR', 'COMPLETE', 'STOPPED']);

/**
 * Status changes on stderr as they happen, one line each; on a terminal a spinner line under
 * them counts the seconds. stdout is left to the result.
 */
class Progress {
  private readonly started = Date.now();
  private readonly tty = Boolean(process.stderr.isTTY);
  private frame = 0;
  private timer: NodeJS.Timeout | null = null;
  private status = '';

  constructor(private readonly podId: string) {
    if (this.tty) this.timer = setInterval(() => this.spin(), 100);
  }

  private elapsed(): string {
    return `${((Date.now() - this.started) / 1000).toFixed(1)}s`;
  }

  private spin(): void {
    const frames = '|/-\\';
    process.stderr.write(`\r\x1b[K${frames[this.frame++ % frames.length]} ${this.podId}: ${this.status || 'creating'} ${this.elapsed()}`);
  }

  change(status: string, message: string): void {
    if (status === this.status) return;
    this.status = status;
    process.stderr.write(`${this.tty ? '\r\x1b[K' : ''}${this.elapsed().padStart(7)}  ${status.padEnd(13)} ${message}\n`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}

/** Polls the pod until it is RUNNING (its URL answers then), showing each status it passes. */
export async function waitRunning(api: ApiClient, podId: string, timeoutS: number): Promise<any> {
  const progress = new Progress(podId);
  const deadline = Date.now() + timeoutS * 1000;
  try {
    for (;;) {
      const pod = await api.result('GET', podPath(podId));
      const message = String(pod.status_container?.message ?? '').trim();
      progress.change(pod.status, message);
      if (pod.status === 'RUNNING') return pod;
      if (FAILED.has(pod.status)) throw new CliError(ExitCode.API_ERROR, `pod ${podId} is ${pod.status}: ${message || 'no reason given'} (see \`pods events ${podId}\`)`);
      if (Date.now() > deadline) throw new CliError(ExitCode.API_ERROR, `pod ${podId} is still ${pod.status} after ${timeoutS} s (${message}); it goes on: \`pods get ${podId}\``);
      await sleep(250);
    }
  } finally {
    progress.stop();
  }
}

function parseEnv(values: string[] | undefined): Record<string, string> | undefined {
  if (!values?.length) return undefined;
  const env: Record<string, string> = {};
  for (const kv of values) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw usageError(`--env: "${kv}" is not NAME=VALUE`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

export const create: Run = async (inv, api) => {
  const podId = podIdOf(inv, 'create');
  const { image, template, description } = inv.values as Record<string, string | undefined>;
  if (!image === !template) throw usageError('create: give exactly one of --image IMAGE and --template TEMPLATE');
  const port = wholeNumber(inv.values.port, 'port', 1);
  const timeoutS = wholeNumber(inv.values.timeout, 'timeout', 1) ?? 600;
  const body = {
    pod_id: podId,
    ...(image ? { image } : { template }),
    ...(description ? { description } : {}),
    ...(parseEnv(inv.values.env as string[] | undefined) ? { environment_variables: parseEnv(inv.values.env as string[]) } : {}),
    ...(port ? { networking: { default: { protocol: 'http', port } } } : {}),
    ...(inv.rest?.length ? { command: inv.rest } : {}),
  };
  const created = await api.result('POST', '/v3/pods', body);
  const pod = inv.values['no-wait'] ? created : await waitRunning(api, podId, timeoutS);
  if (inv.json) return printJson(pod);
  out(pod.status === 'RUNNING' ? `pod ${podId} is RUNNING${pod.url ? ` at ${pod.url}` : ''}` : `pod ${podId} created (${pod.status}); follow it with \`pods get ${podId}\``);
};

// ---- reading ----------------------------------------------------------------------------

export const list: Run = async (inv, api) => {
  if (inv.positionals.length) throw usageError(`ls: unexpected argument "${inv.positionals[0]}"`);
  const pods = await api.result<any[]>('GET', '/v3/pods');
  if (inv.json) return printJson(pods);
  if (!pods.length) return out('no pods');
  out(table(['POD_ID', 'STATUS', 'IMAGE / TEMPLATE', 'URL'], pods.map((p) => [p.pod_id, p.status, source(p), p.url])));
};

export const get: Run = async (inv, api) => {
  const pod = await api.result('GET', podPath(podIdOf(inv, 'get')));
  if (inv.json) return printJson(pod);
  out(podDetails(pod));
};

export const credentials: Run = async (inv, api) => {
  const creds = await api.result('GET', podPath(podIdOf(inv, 'creds'), '/credentials'));
  if (inv.json) return printJson(creds);
  out(fields([['user_username', creds.user_username], ['user_password', creds.user_password]]));
};

export const events: Run = async (inv, api) => {
  const list = await api.result<any[]>('GET', podPath(podIdOf(inv, 'events'), '/events'));
  if (inv.json) return printJson(list);
  if (!list.length) return out('no events');
  out(table(['TIME', 'EVENT', 'NODE', 'MESSAGE'], list.map((e) => [e.time, e.type, e.node ?? '', e.message])));
};

export const templates: Run = async (inv, api) => {
  if (inv.positionals.length) throw usageError(`templates: unexpected argument "${inv.positionals[0]}"`);
  const list = await api.result<any[]>('GET', '/v3/pods/templates');
  if (inv.json) return printJson(list);
  if (!list.length) return out('no templates');
  out(table(['TEMPLATE', 'DESCRIPTION'], list.map((t) => [t.template_id, t.description])));
};

// ---- logs -------------------------------------------------------------------------------

const RECONNECT_FOR_MS = 30_000;

/** Follows the server-sent events stream until its `end` event; a dropped stream is resumed from the last event id. */
async function follow(api: ApiClient, podId: string, tail: number, json: boolean): Promise<void> {
  let lastId: string | undefined;
  let failingSince: number | null = null;
  for (;;) {
    try {
      for await (const e of api.events(podPath(podId, `/logs?follow=true&tail=${tail}`), lastId)) {
        failingSince = null;
        if (e.id !== undefined) lastId = e.id;
        if (e.event === 'end') {
          process.stderr.write(`[pods: ${e.data.join(' ')}]\n`);
          return;
        }
        if (e.event) process.stderr.write(`[${e.data.join(' ')}]\n`);
        else for (const line of e.data) out(json ? JSON.stringify({ id: e.id, line }) : line);
      }
    } catch (err) {
      // Only a lost connection is worth another try; an API error (404, 401...) is the answer.
      const lost = !(err instanceof CliError) || err.exitCode === ExitCode.UNREACHABLE;
      if (!lost) throw err;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > RECONNECT_FOR_MS) throw err instanceof CliError ? err : new CliError(ExitCode.UNREACHABLE, `the log stream of ${podId} was lost: ${(err as Error).message}`);
    }
    await sleep(1000);
  }
}

export const logs: Run = async (inv, api) => {
  const podId = podIdOf(inv, 'logs');
  const tail = wholeNumber(inv.values.tail, 'tail', 0);
  if (inv.values.follow) return follow(api, podId, tail ?? 100, inv.json);
  const r = await api.result('GET', podPath(podId, '/logs'));
  if (inv.json) return printJson(r);
  const text: string = r.logs;
  if (tail === undefined) return out(text);
  const lines = text.replace(/\n$/, '').split('\n');
  if (tail > 0 && text) out(lines.slice(-tail).join('\n'));
};

// ---- acting on a pod --------------------------------------------------------------------

export const lifecycle = (verb: 'stop' | 'start' | 'restart'): Run => async (inv, api) => {
  const podId = podIdOf(inv, verb);
  const env = await api.call('GET', podPath(podId, `/${verb}`));
  if (inv.json) return printJson(env.result);
  out(`pod ${podId}: ${env.message} (status ${env.result?.status ?? 'unknown'})`);
};

export const remove: Run = async (inv, api) => {
  const podId = podIdOf(inv, 'rm');
  const env = await api.call('DELETE', podPath(podId, inv.values['keep-data'] ? '?keep_data=true' : ''));
  if (inv.json) return printJson({ pod_id: podId, message: env.message });
  out(`pod ${podId}: ${env.message}`);
};

/**
 * `pods exec POD -- ARGV...` runs an argv as it is (no shell); `pods exec POD 'LINE'` runs a
 * line with /bin/sh -c. The command's output goes to stdout and stderr; a failure exits 5.
 */
export const exec: Run = async (inv, api) => {
  const [podId, ...words] = inv.positionals;
  if (!podId) throw usageError("exec: give the pod's id and a command (pods exec POD_ID -- COMMAND ARGS... or pods exec POD_ID 'SHELL LINE')");
  let command: string | string[];
  if (inv.rest) {
    if (words.length) throw usageError(`exec: unexpected argument "${words[0]}" before --`);
    command = inv.rest;
  } else {
    if (words.length !== 1) throw usageError("exec: give the command after -- (pods exec POD_ID -- ls -l /), or one shell line in quotes");
    command = words[0]!;
  }
  if (!command.length) throw usageError('exec: the command is empty');
  const timeout = wholeNumber(inv.values.timeout, 'timeout', 1);
  const r = await api.result('POST', podPath(podId, '/exec'), { commands: [command], ...(timeout ? { command_timeout: timeout } : {}) });
  const res = r.execution_results?.[0];
  if (inv.json) printJson(r);
  else {
    if (res?.stdout) process.stdout.write(res.stdout);
    if (res?.stderr) process.stderr.write(res.stderr.endsWith('\n') ? res.stderr : `${res.stderr}\n`);
  }
  if (res && !res.success) throw new CliError(ExitCode.COMMAND_FAILED, `the command exited with code ${res.exit_code} in pod ${podId}`);
};
