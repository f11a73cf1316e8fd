// The apiserver, as the plugin's user: the kubeconfig they chose, the project's own loader and
// KubeHTTP, and the few reads and the one write the commands need.
import type { OAuthAppStatus } from '../api/oauthapp.ts';
import { oauthAppPath, secretPath } from '../kube/client.ts';
import { isTransient, KubeAPIError } from '../kube/errors.ts';
import { KubeHTTP } from '../kube/http.ts';
import { loadInClusterConfig, loadKubeConfigFile, type KubeConfig } from '../kube/kubeconfig.ts';
import { leasePath } from '../kube/leader-election.ts';
import type { Secret } from '../kube/objects.ts';
import { rotateAnnotation } from '../oauthapp/labels.ts';
import { appNotFound, CliError } from './errors.ts';
import type { KubeconfigSource } from './kubeconfig-path.ts';

/** An OAuthApp as the commands read it: the spec is parsed where it is used (verify). */
export interface AppView {
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec?: unknown;
  status?: OAuthAppStatus;
}

export interface LeaseView {
  spec?: { holderIdentity?: string | null; renewTime?: string | null; leaseDurationSeconds?: number | null };
}

/** The Lease the operator's replicas elect a leader with (src/kube/leader-election.ts). */
export const leaseName = 'oauthapp-operator';

export interface Cluster {
  /** The apps' namespace: -n, else the kubeconfig context's, else `default`. */
  readonly namespace: string;
  getApp(name: string): Promise<AppView>;
  /** Merge-patches the oauthapp.dev/rotate annotation. */
  requestRotate(name: string, value: string): Promise<void>;
  getSecret(namespace: string, name: string): Promise<Secret | undefined>;
  getLease(namespace: string): Promise<LeaseView>;
  close(): Promise<void>;
}

export function loadConfig(source: KubeconfigSource, context: string | undefined): KubeConfig {
  switch (source.kind) {
    case 'file':
      return loadKubeConfigFile(source.path, context === undefined ? {} : { context });
    case 'in-cluster':
      if (context !== undefined) throw new CliError('--context needs a kubeconfig file (none was found)');
      return loadInClusterConfig();
    case 'none':
      throw new CliError(source.problem);
  }
}

export async function connect(config: KubeConfig, namespaceFlag: string | undefined): Promise<Cluster> {
  const http = await KubeHTTP.fromKubeConfig(config);
  const namespace = namespaceFlag ?? config.namespace ?? 'default';
  const failure = (what: string) => (error: unknown): never => {
    throw describeKubeError(error, what, http.serverURL);
  };
  return {
    namespace,
    async getApp(name) {
      try {
        return await http.json<AppView>({ method: 'GET', path: oauthAppPath(namespace, name) });
      } catch (error) {
        if (error instanceof KubeAPIError && error.reason === 'NotFound') {
          // An object it lacks is `oauthapps.oauthapp.dev "NAME" not found`; anything else is a
          // resource type it does not serve ("404 page not found", "could not find the requested resource").
          if (error.message.includes(`"${name}" not found`)) throw appNotFound(namespace, name);
          throw new CliError('the apiserver does not serve oauthapps.oauthapp.dev/v1alpha1: is the OAuthApp CRD installed?');
        }
        return failure(`get oauthapp ${JSON.stringify(name)} in namespace ${JSON.stringify(namespace)}`)(error);
      }
    },
    async requestRotate(name, value) {
      try {
        await http.json({
          method: 'PATCH',
          path: oauthAppPath(namespace, name),
          contentType: 'application/merge-patch+json',
          query: { fieldManager: 'kubectl-oauthapp' },
          body: { metadata: { annotations: { [rotateAnnotation]: value } } },
        });
      } catch (error) {
        if (error instanceof KubeAPIError && error.reason === 'NotFound') throw appNotFound(namespace, name);
        failure(`annotate oauthapp ${JSON.stringify(name)} in namespace ${JSON.stringify(namespace)}`)(error);
      }
    },
    async getSecret(secretNamespace, name) {
      try {
        return await http.json<Secret>({ method: 'GET', path: secretPath(secretNamespace, name) });
      } catch (error) {
        if (error instanceof KubeAPIError && error.reason === 'NotFound') return undefined;
        return failure(`get secret ${JSON.stringify(name)} in namespace ${JSON.stringify(secretNamespace)}`)(error);
      }
    },
    getLease: (leaseNamespace) => http.json<LeaseView>({ method: 'GET', path: leasePath(leaseNamespace, leaseName) }).catch(failure(`get lease ${leaseName} in namespace ${JSON.stringify(leaseNamespace)}`)),
    close: () => http.close(),
  };
}

/** An apiserver failure in a user's words: what could not be done, and why. */
export function describeKubeError(error: unknown, what: string, server: string): Error {
  if (error instanceof CliError) return error;
  if (!(error instanceof KubeAPIError)) return error instanceof Error ? error : new Error(String(error));
  const prefix = `${error.method} ${error.path}: ${error.reason}${error.status ? ` (${error.status})` : ''}: `;
  const detail = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  const transient = isTransient(error);
  switch (error.reason) {
    case 'NetworkError':
      return new CliError(`cannot ${what}: the apiserver at ${server} is out of reach (${detail})`, { transient });
    case 'Unauthorized':
      return new CliError(`cannot ${what}: the apiserver did not accept the kubeconfig's credentials (401 Unauthorized)`);
    default:
      return new CliError(`cannot ${what}: ${detail} (${error.reason}${error.status ? `, HTTP ${error.status}` : ''})`, { transient });
  }
}
