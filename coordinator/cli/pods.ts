#!/usr/bin/env node
// `pods`: the command line for users of a Pods (or Tapis Pods) API, and `pods admin` for a site's
// operators on the coordinator's host. The `bin` of package.json; `npm run pods -- ...` too.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiClient } from './api-client.js';
import { CliError, ExitCode, usageError } from './errors.js';
import { login, logout, whoami } from './login.js';
import * as pod from './pod-commands.js';
import type { Invocation } from './pod-commands.js';
import { currentSession } from './session.js';

type Options = NonNullable<ParseArgsConfig['options']>;

interface Command {
  options?: Options;
  /** Commands that talk to the API with the user's login get a client; the others get the environment. */
  run: ((inv: Invocation, api: ApiClient) => Promise<void>) | { local: (inv: Invocation, env: NodeJS.ProcessEnv) => Promise<void> };
}

const timeout: Options = { timeout: { type: 'string' } };

const COMMANDS: Record<string, Command> = {
  login: { options: { url: { type: 'string' }, user: { type: 'string' } }, run: { local: login } },
  logout: { run: { local: logout } },
  whoami: { run: { local: whoami } },
  create: {
    options: {
      image: { type: 'string' }, template: { type: 'string' }, description: { type: 'string' },
      env: { type: 'string', multiple: true }, port: { type: 'string' }, 'no-wait': { type: 'boolean' }, ...timeout,
    },
    run: pod.create,
  },
  ls: { run: pod.list },
  get: { run: pod.get },
  logs: { options: { follow: { type: 'boolean', short: 'f' }, tail: { type: 'string' } }, run: pod.logs },
  events: { run: pod.events },
  exec: { options: timeout, run: pod.exec },
  stop: { run: pod.lifecycle('stop') },
  start: { run: pod.lifecycle('start') },
  restart: { run: pod.lifecycle('restart') },
  rm: { options: { 'keep-data': { type: 'boolean' } }, run: pod.remove },
  creds: { run: pod.credentials },
  templates: { run: pod.templates },
};

/** The admin commands' first words: `pods user add ...` is `pods admin user add ...`, as `npm run pods` took it before. */
const ADMIN_WORDS = new Set(['user', 'tenant', 'node']);

const HELP = `pods: run containers on a Pods service (Tapis Pods compatible)

usage: pods COMMAND [ARGUMENTS] [--json]

  login [--url URL] [--user NAME]   log in; asks on a terminal for what is not given; else reads
                                    PODS_BASE_URL, PODS_USERNAME, and the password from PODS_PASSWORD
                                    or the first line of stdin. The token is kept in
                                    $XDG_CONFIG_HOME/pods/session.json (~/.config/pods/), mode 600
  logout | whoami
  create POD_ID (--image IMAGE | --template TEMPLATE[:TAG]) [--description TEXT] [--env NAME=VALUE]...
         [--port PORT] [--timeout SECONDS] [--no-wait] [-- COMMAND ARGS...]
                                    create a pod and show its status until it is RUNNING (its URL answers)
  ls                                your pods
  get POD_ID                        one pod: status, URL, node, networking
  logs POD_ID [-f] [--tail N]       its output; -f follows it live until the pod stops
  events POD_ID                     what happened to it, oldest first
  exec POD_ID [--timeout S] -- COMMAND ARGS...   run a command in it (as an argv, no shell)
  exec POD_ID 'SHELL LINE'                       run a line with /bin/sh -c
  stop | start | restart POD_ID
  rm POD_ID [--keep-data]           delete it (--keep-data keeps its data directory as a volume)
  creds POD_ID                      its generated user name and password
  templates                         the templates you may create pods from

site administration, on the coordinator's host, straight against its Redis (the coordinator's
PODS_* environment: PODS_REDIS_URL, PODS_ADMIN_TOKEN...); \`pods user ...\` is short for \`pods admin user ...\`:
${'@ADMIN@'}

  --json        print the API's result as JSON (scripts); errors stay one line on stderr
  PODS_TOKEN    use this token (with PODS_BASE_URL) instead of the stored login

exit codes: 0 done; 1 the API answered with an error; 2 wrong usage; 3 the API cannot be reached;
            4 not logged in, or the login expired or was revoked (run \`pods login\`);
            5 exec: the command ran and failed (its exit code is on stderr)
`;

async function help(): Promise<string> {
  const { ADMIN_USAGE } = await import('../cli.js');
  return HELP.replace('@ADMIN@', ADMIN_USAGE.map((l) => `  ${l}`).join('\n'));
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function parse(name: string, args: string[], options: Options = {}): Invocation {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw usageError(`${name}: ${(err as Error).message.split(/\.\s|\n/)[0]}`);
  }
  const terminator = parsed.tokens.find((t) => t.kind === 'option-terminator');
  const cut = terminator ? terminator.index : Infinity;
  return {
    values: parsed.values as Invocation['values'],
    positionals: parsed.tokens.filter((t) => t.kind === 'positional' && t.index < cut).map((t) => (t as { value: string }).value),
    rest: terminator ? args.slice(terminator.index + 1) : null,
    json: parsed.values.json === true,
  };
}

async function main(argv: string[]): Promise<void> {
  // `pods --json COMMAND ...`: the option goes right after the command, before any `--`.
  const [name, ...args] = argv[0] === '--json' ? [argv[1], '--json', ...argv.slice(2)] : argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(await help());
    return;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (name === 'admin' || ADMIN_WORDS.has(name)) {
    const { runAdmin } = await import('../cli.js');
    return runAdmin(name === 'admin' ? args : [name, ...args]);
  }
  const command = COMMANDS[name];
  if (!command) throw usageError(`unknown command "${name}" (\`pods help\` lists them)`);
  const inv = parse(name, args, command.options);
  if (inv.values.help) {
    process.stdout.write(await help());
    return;
  }
  if ('local' in command.run) return command.run.local(inv, process.env);
  return command.run(inv, new ApiClient(() => currentSession(process.env)));
}

main(process.argv.slice(2)).then(
  () => process.exit(ExitCode.OK),
  (err: unknown) => {
    const code = err instanceof CliError ? err.exitCode : ExitCode.API_ERROR;
    // One line: the API's message, or what went wrong here.
    process.stderr.write(`pods: ${String((err as Error)?.message ?? err).replace(/\s*\n\s*/g, ' ')}\n`);
    process.exit(code);
  },
);
