// The plugin from argv to exit code: parse, connect, run one command, report a failure as one
// line. Everything it touches outside (environment, files, clock, output) is passed in.
import { KubeConfigError } from '../kube/kubeconfig.ts';
import { proxySettingsFrom } from '../oauth/proxy.ts';
import { operatorVersion } from '../version.ts';
import { parseCommandLine } from './args.ts';
import { authorizeCommand } from './authorize.ts';
import { connect, loadConfig, type Cluster } from './cluster.ts';
import type { CommandContext, Output } from './context.ts';
import { CliError, exitCodes } from './errors.ts';
import { kubeconfigSource } from './kubeconfig-path.ts';
import { rotateCommand } from './rotate.ts';
import { statusCommand } from './status.ts';
import { verifyCommand, verifyTokenClient } from './verify.ts';
import type { Clock } from './wait.ts';

export interface Runtime {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly home: string | undefined;
  readonly exists: (path: string) => boolean;
  readonly io: Output;
  readonly clock: Clock;
  readonly pollIntervalMs?: number;
}

export const programName = 'kubectl-oauthapp';

export async function run(argv: readonly string[], runtime: Runtime): Promise<number> {
  const { io } = runtime;
  const invocation = parseCommandLine(argv);
  switch (invocation.kind) {
    case 'help':
      io.out(invocation.text);
      return exitCodes.ok;
    case 'version':
      io.out(`${programName} ${operatorVersion}\n`);
      return exitCodes.ok;
    case 'error':
      io.err(`error: ${invocation.message}\n`);
      return exitCodes.failed;
  }
  let cluster: Cluster | undefined;
  try {
    const { target } = invocation;
    const source = kubeconfigSource({ flag: target.kubeconfig, env: runtime.env, home: runtime.home, exists: runtime.exists });
    cluster = await connect(loadConfig(source, target.context), target.namespace);
    return await dispatch(invocation, { cluster, io, clock: runtime.clock, pollIntervalMs: runtime.pollIntervalMs ?? 1_000 }, runtime.env);
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`error: ${error.message}\n`);
      return error.exitCode;
    }
    // KubeConfigError messages name the file and field, never a credential (src/kube/kubeconfig.ts).
    io.err(`error: ${error instanceof KubeConfigError ? error.message : `unexpected: ${error instanceof Error ? error.message : String(error)}`}\n`);
    return exitCodes.failed;
  } finally {
    await cluster?.close();
  }
}

type CommandInvocation = Exclude<ReturnType<typeof parseCommandLine>, { kind: 'help' | 'version' | 'error' }>;

function dispatch(invocation: CommandInvocation, context: CommandContext, env: Runtime['env']): Promise<number> {
  const { name } = invocation.target;
  switch (invocation.kind) {
    case 'status':
      return statusCommand(context, name, invocation.operatorNamespace);
    case 'authorize':
      return authorizeCommand(context, name, invocation.timeoutMs);
    case 'rotate':
      return rotateCommand(context, name, { timeoutMs: invocation.timeoutMs, wait: invocation.wait });
    case 'verify': {
      const proxy = proxySettingsFrom(env);
      if (!proxy.ok) throw new CliError(proxy.error);
      return verifyCommand(context, name, verifyTokenClient(proxy.settings, `${programName}/${operatorVersion}`));
    }
  }
}
