// A failure the plugin reports as one line on stderr, with the exit code it ends with.

/** 0 success; 1 an error, a timeout, or `verify`'s "rejected"; 2 `verify`'s "unknown". */
export const exitCodes = { ok: 0, failed: 1, unknown: 2 } as const;

export class CliError extends Error {
  readonly code = 'KUBECTL_OAUTHAPP';
  readonly exitCode: number;
  /** Worth trying again while waiting: the apiserver was out of reach, overloaded or failing. */
  readonly transient: boolean;

  constructor(message: string, options: { exitCode?: number; transient?: boolean } = {}) {
    super(message);
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? exitCodes.failed;
    this.transient = options.transient ?? false;
  }
}

export const appNotFound = (namespace: string, name: string) => new CliError(`oauthapp ${JSON.stringify(name)} not found in namespace ${JSON.stringify(namespace)}`);
