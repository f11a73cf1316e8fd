import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const crdDir = fileURLToPath(new URL('../../crds/', import.meta.url));

/** Applies crds/ as an admin would and waits until the apiserver serves the new types. */
export async function installCRDs(kubeconfig: string, binDir: string): Promise<void> {
  const run = (args: string[]) =>
    promisify(execFile)(join(binDir, 'kubectl'), args, { env: { ...process.env, KUBECONFIG: kubeconfig } });
  await run(['apply', '--server-side', '-f', crdDir]);
  await run(['wait', '--for=condition=Established', '--timeout=60s', '-f', crdDir]);
  // Established comes before the type's storage is ready: until then a list answers 429 "storage is
  // (re)initializing" (seen when the randomized run was the first test of a fresh control plane).
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await run(['get', 'oauthapps', '--all-namespaces']);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
