import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const buildScript = fileURLToPath(new URL('../../hack/controlplane/build.sh', import.meta.url));

/**
 * The directory of control-plane binaries, built from the pinned Go modules on first use and
 * cached outside the repo. The build's progress goes to this process's stderr.
 */
export async function controlPlaneBinaries(): Promise<string> {
  const child = promisify(execFile)('bash', [buildScript], { maxBuffer: 1 << 20 });
  child.child.stderr?.pipe(process.stderr);
  const { stdout } = await child;
  const dir = stdout.trim().split('\n').at(-1);
  if (!dir) throw new Error(`${buildScript} printed no binary directory`);
  return dir;
}
