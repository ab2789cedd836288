// What the `pods` CLI exits with. Scripts switch on these codes, never on the message text.
export const ExitCode = {
  OK: 0,
  /** The API answered with an error (the Tapis envelope's message is shown). */
  API_ERROR: 1,
  /** The command line was wrong: unknown command or option, a missing argument. */
  USAGE: 2,
  /** The API could not be reached (refused, timed out, no such host, not the Pods API behind a proxy). */
  UNREACHABLE: 3,
  /** Not logged in, or the stored login has expired or was revoked: run `pods login`. */
  NOT_LOGGED_IN: 4,
  /** `pods exec`: the API ran the commands and one of them failed (its exit code is shown). */
  COMMAND_FAILED: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one line on stderr, exiting with `exitCode`. */
export class CliError extends Error {
  constructor(readonly exitCode: ExitCode, message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(ExitCode.USAGE, message);
