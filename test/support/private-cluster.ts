// A control plane of a test file's own, for tests that freeze, restart or cut off the apiserver
// (which would disturb the files sharing the run's control plane): the CRD installed, an app and an
// operator namespace, an admin client and kubectl against it.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type RunningControlPlane } from '../../src/localcluster/controlplane.ts';
import { installCRDs } from './crds.ts';
import { requiredEnvironment } from './environment.ts';
import { adminClient, type AdminClient } from './kube.ts';
import { kubectlOK } from './kubectl.ts';

export interface PrivateCluster {
  controlPlane: RunningControlPlane;
  admin: AdminClient;
  /** kubectl as the cluster admin; must succeed. */
  run(args: string[], input?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startPrivateCluster(name: string, namespaces: readonly string[]): Promise<PrivateCluster> {
  const binDir = requiredEnvironment('binDir');
  const controlPlane = await startControlPlane({ binDir, workDir: await mkdtemp(join(tmpdir(), `oauthapp-${name}-`)), controllerManager: false });
  const run = (args: string[], input?: string) =>
    kubectlOK(args, { kubeconfig: controlPlane.adminKubeconfigPath, ...(input !== undefined ? { input } : {}) });
  await installCRDs(controlPlane.adminKubeconfigPath, binDir);
  for (const namespace of namespaces) await run(['create', 'namespace', namespace]);
  const admin = await adminClient(controlPlane.adminKubeconfigPath);
  return {
    controlPlane,
    admin,
    run,
    async stop() {
      controlPlane.freezeAPIServer(false);
      await admin.close();
      await controlPlane.stop();
    },
  };
}
