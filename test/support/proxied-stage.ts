// The stage of tests that lose apiserver answers: a control plane of the file's own, the
// fault-injecting proxy in front of it, a strict sandbox provider (rotating refresh tokens, a replay
// revokes the grant), and the operator as a process that talks to the apiserver only through the
// proxy. Call useProxiedStage() at the top of a test file.
import { afterAll, beforeAll } from '@jest/globals';
import { startAPIServerProxy, type APIServerProxy } from './apiserver-proxy.ts';
import { startOperatorProcess, type OperatorProcess } from './operator-process.ts';
import { startPrivateCluster, type PrivateCluster } from './private-cluster.ts';
import type { AppView } from './resources.ts';
import { startTestProvider, type TestProvider } from './sandbox.ts';

export const namespace = 'apps';
export const operatorNamespace = 'oauthapp-system';

export interface ProxiedStage {
  readonly cluster: PrivateCluster;
  readonly proxy: APIServerProxy;
  readonly provider: TestProvider;
  /** Client secrets and tokens in play, for the leak check. */
  readonly canaries: string[];
  /** Starts the operator through the proxy; it is killed (SIGKILL) after the file. */
  startOperator(options: { leaderElect: boolean; flags?: string[] }): OperatorProcess;
  getApp(name: string): Promise<AppView>;
}

export function useProxiedStage(name: string): ProxiedStage {
  let cluster: PrivateCluster | undefined;
  let proxy: APIServerProxy | undefined;
  let provider: TestProvider | undefined;
  const operators: OperatorProcess[] = [];
  const canaries: string[] = [];

  beforeAll(async () => {
    cluster = await startPrivateCluster(name, [namespace, operatorNamespace]);
    proxy = await startAPIServerProxy({ upstreamKubeconfig: cluster.controlPlane.adminKubeconfigPath });
    provider = await startTestProvider({ rotateRefreshTokens: true, revokeGrantOnReplay: true });
    canaries.push(provider.clientSecret);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(operators.map((operator) => operator.kill('SIGKILL')));
    await proxy?.close();
    await provider?.close();
    await cluster?.stop();
  });

  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the stage is used before its beforeAll ran');
    return value;
  };

  return {
    get cluster() {
      return started(cluster);
    },
    get proxy() {
      return started(proxy);
    },
    get provider() {
      return started(provider);
    },
    canaries,
    startOperator({ leaderElect, flags = [] }) {
      const through = started(proxy).kubeconfigPath;
      const args = started(cluster)
        .operatorArgs({ leaderElect, flags })
        .map((arg) => (arg.startsWith('--kubeconfig=') ? `--kubeconfig=${through}` : arg));
      const operator = startOperatorProcess(args);
      operators.push(operator);
      return operator;
    },
    async getApp(appName) {
      return JSON.parse(await started(cluster).run(['get', 'oauthapp', appName, '-n', namespace, '-o', 'json'])) as AppView;
    },
  };
}
