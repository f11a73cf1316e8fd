// Which kubeconfig the plugin uses, as kubectl picks it: --kubeconfig, else $KUBECONFIG, else
// ~/.kube/config, else the pod's service account. The project's loader reads one file, so of a
// $KUBECONFIG list the first file that exists is used (kubectl would merge them).
import { delimiter, join } from 'node:path';

export type KubeconfigSource = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'in-cluster' } | { readonly kind: 'none'; readonly problem: string };

export interface KubeconfigLookup {
  readonly flag: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly home: string | undefined;
  readonly exists: (path: string) => boolean;
}

export function kubeconfigSource({ flag, env, home, exists }: KubeconfigLookup): KubeconfigSource {
  if (flag !== undefined) return { kind: 'file', path: flag };
  const listed = (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  if (listed.length > 0) {
    const found = listed.find(exists);
    return found ? { kind: 'file', path: found } : { kind: 'none', problem: `no file named in $KUBECONFIG exists (${listed.join(delimiter)})` };
  }
  const standard = home ? join(home, '.kube', 'config') : undefined;
  if (standard !== undefined && exists(standard)) return { kind: 'file', path: standard };
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) return { kind: 'in-cluster' };
  return { kind: 'none', problem: `no kubeconfig: pass --kubeconfig, set $KUBECONFIG, or create ${standard ?? '~/.kube/config'}` };
}
