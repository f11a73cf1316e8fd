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
import { oauthAppManifest, opaqueSecret } from './resources.ts';
import type { TestProvider } from './sandbox.ts';

export interface PrivateCluster {
  controlPlane: RunningControlPlane;
  admin: AdminClient;
  /** kubectl as the cluster admin; must succeed. */
  run(args: string[], input?: string): Promise<string>;
  /** Flags for an operator process watching `namespace` of this cluster; `extra` goes last. */
  operatorArgs(extra: { leaderElect: boolean; metricsAddr?: string; flags?: string[] }): string[];
  /**
   * `<name>-client` and `<name>-bootstrap` Secrets and an OAuthApp seeded from `provider`, its
   * token requests sent to `tokenURL` (a proxy in front of the provider, say). Returns the seed.
   */
  applySeededApp(name: string, provider: TestProvider, tokenURL?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startPrivateCluster(name: string, [namespace, operatorNamespace]: readonly [string, string]): Promise<PrivateCluster> {
  const binDir = requiredEnvironment('binDir');
  const controlPlane = await startControlPlane({ binDir, workDir: await mkdtemp(join(tmpdir(), `oauthapp-${name}-`)), controllerManager: false });
  const run = (args: string[], input?: string) =>
    kubectlOK(args, { kubeconfig: controlPlane.adminKubeconfigPath, ...(input !== undefined ? { input } : {}) });
  await installCRDs(controlPlane.adminKubeconfigPath, binDir);
  for (const each of [namespace, operatorNamespace]) await run(['create', 'namespace', each]);
  const admin = await adminClient(controlPlane.adminKubeconfigPath);
  return {
    controlPlane,
    admin,
    run,
    operatorArgs: ({ leaderElect, metricsAddr = '127.0.0.1:0', flags = [] }) => [
      `--kubeconfig=${controlPlane.adminKubeconfigPath}`,
      `--namespaces=${namespace}`,
      `--operator-namespace=${operatorNamespace}`,
      leaderElect ? '--leader-elect' : '--no-leader-elect',
      `--metrics-addr=${metricsAddr}`,
      '--callback-addr=127.0.0.1:0',
      // Sandbox providers on loopback, standing in for the pipedrive preset.
      '--allow-loopback-providers',
      '--allow-preset-overrides',
      ...flags,
    ],
    async applySeededApp(appName, provider, tokenURL = provider.tokenURL) {
      const seed = provider.sandbox.issueRefreshToken(provider.clientId);
      const apply = (manifest: object) => run(['apply', '-n', namespace, '-f', '-'], JSON.stringify(manifest));
      await apply(opaqueSecret(`${appName}-client`, { client_secret: provider.clientSecret }));
      await apply(opaqueSecret(`${appName}-bootstrap`, { refresh_token: seed }));
      await apply(
        oauthAppManifest({ name: appName, clientId: provider.clientId, tokenURL, redirectURI: provider.redirectURI, refreshTokenRef: { name: `${appName}-bootstrap`, key: 'refresh_token' } }),
      );
      return seed;
    },
    async stop() {
      controlPlane.freezeAPIServer(false);
      await admin.close();
      await controlPlane.stop();
    },
  };
}
