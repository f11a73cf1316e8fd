// The operator as its own process (node runs src/main.ts as it is), for tests that kill it.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const mainPath = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface OperatorProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<number | NodeJS.Signals>;
  kill(signal: NodeJS.Signals): Promise<number | NodeJS.Signals>;
}

/**
 * Test providers are sandboxes on loopback that stand in for the pipedrive preset, so loopback
 * providers and preset overrides are allowed through the environment (a flag, or `env`, wins);
 * their short-lived tokens need a low --min-refresh-interval.
 */
const testProviderEnv = {
  OAUTHAPP_ALLOW_LOOPBACK_PROVIDERS: 'true',
  OAUTHAPP_ALLOW_PRESET_OVERRIDES: 'true',
  // Test tokens live a few seconds; the default floor on refresh frequency (30 s) would outlast them.
  OAUTHAPP_MIN_REFRESH_INTERVAL: '1',
};

export function startOperatorProcess(args: string[], env: Record<string, string> = {}): OperatorProcess {
  const child = spawn(process.execPath, [mainPath, ...args], { env: { PATH: process.env.PATH ?? '', ...testProviderEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code ?? 0)));
  return {
    child,
    output: () => chunks.join(''),
    exited,
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
