// Direct apiserver access for tests that sample faster than kubectl can (the same client code
// the operator uses, as the cluster admin).
import { loadKubeConfigFile } from '../../src/kube/kubeconfig.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { KubeHTTP } from '../../src/kube/http.ts';
import { decodeData } from '../../src/kube/objects.ts';
import { requiredEnvironment } from './environment.ts';

export interface AdminClient {
  kube: KubeClient;
  http: KubeHTTP;
  secretData(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  close(): Promise<void>;
}

export async function adminClient(kubeconfigPath = requiredEnvironment('kubeconfig')): Promise<AdminClient> {
  const config = loadKubeConfigFile(kubeconfigPath);
  const http = await KubeHTTP.fromKubeConfig(config);
  const kube = new KubeClient(http);
  return {
    kube,
    http,
    async secretData(namespace, name) {
      const secret = await kube.getSecret(namespace, name);
      return secret ? decodeData(secret.data) : undefined;
    },
    close: () => http.close(),
  };
}
