// The yardstick: a bare watch-then-write loop. It watches Secrets labelled bench-role=source and
// copies each one's data to <name>-copy as soon as it changes: no cache beyond the watch, no
// queue, no reads, nothing to decide. Run as its own process by rotation-propagation.ts.
import { loadKubeConfigFile } from '../src/kube/kubeconfig.ts';
import { KubeHTTP } from '../src/kube/http.ts';
import { KubeClient } from '../src/kube/client.ts';
import { Informer } from '../src/kube/informer.ts';
import { isNotFound } from '../src/kube/errors.ts';
import type { Secret } from '../src/kube/objects.ts';
import { createLogger } from '../src/log.ts';

const [kubeconfigPath, namespace] = process.argv.slice(2);
if (!kubeconfigPath || !namespace) throw new Error('usage: baseline-copier.ts KUBECONFIG NAMESPACE');
const config = loadKubeConfigFile(kubeconfigPath);
const http = await KubeHTTP.fromKubeConfig(config);
const kube = new KubeClient(http);
const sources = new Informer<Secret>({ name: 'baseline', http, path: `/api/v1/namespaces/${namespace}/secrets`, labelSelector: 'bench-role=source', logger: createLogger({ level: 'warn' }) });

sources.on((event, secret) => {
  if (event === 'deleted') return;
  const copy: Secret = { metadata: { name: `${secret.metadata.name}-copy`, namespace, labels: { 'bench-role': 'copy' } }, type: 'Opaque', data: secret.data ?? {} };
  kube.replaceSecret(namespace, copy).catch(async (error: unknown) => {
    if (isNotFound(error)) await kube.createSecret(namespace, copy);
    else throw error;
  }).catch((error: unknown) => process.stderr.write(`copy failed: ${String(error)}\n`));
});
sources.start();
await sources.synced;
process.stdout.write('synced\n');
process.on('SIGTERM', () => {
  void sources.stop().then(() => http.close()).then(() => process.exit(0));
});
