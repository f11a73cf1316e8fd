// `npm start`: the operator against the configured cluster, or, with none configured, the local
// sandbox demo (a real control plane, the sandbox provider and the operator on this machine).
import { runDemo } from './localcluster/demo.ts';

const argv = process.argv.slice(2);
const clusterConfigured =
  argv.some((arg) => arg.startsWith('--kubeconfig')) ||
  Boolean(process.env.OAUTHAPP_KUBECONFIG || process.env.KUBECONFIG || process.env.KUBERNETES_SERVICE_HOST);

if (clusterConfigured) {
  await import('./main.ts');
} else {
  const interrupted = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await runDemo({ exitAfterRefresh: argv.includes('--exit-after-refresh'), print: (line) => process.stdout.write(`${line}\n`), interrupted });
  process.exit(0);
}
