import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** Runs a hack/ build script, which prints the directory of its (cached) binaries last. */
async function builtDirectory(script: string): Promise<string> {
  const path = fileURLToPath(new URL(`../../hack/${script}`, import.meta.url));
  const child = promisify(execFile)('bash', [path], { maxBuffer: 1 << 20 });
  child.child.stderr?.pipe(process.stderr);
  const { stdout } = await child;
  const dir = stdout.trim().split('\n').at(-1);
  if (!dir) throw new Error(`${path} printed no binary directory`);
  return dir;
}

/**
 * The directory of control-plane binaries, built from the pinned Go modules on first use and
 * cached outside the repo. The build's progress goes to this process's stderr.
 */
export function controlPlaneBinaries(): Promise<string> {
  return builtDirectory('controlplane/build.sh');
}

/** The helm binary, built from its pinned Go module on first use and cached the same way. */
export async function helmBinary(): Promise<string> {
  return join(await builtDirectory('helm/build.sh'), 'helm');
}

/** promtool (checks and tests the alert rules), built from the Prometheus module the same way. */
export async function promtoolBinary(): Promise<string> {
  return join(await builtDirectory('promtool/build.sh'), 'promtool');
}
