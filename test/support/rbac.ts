// Acting as a ServiceAccount against the test control plane: a token from the TokenRequest API
// (`kubectl create token`, as an admin would mint one) in a kubeconfig of its own, and the
// apiserver's own RBAC answers through `kubectl auth can-i`.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { renderKubeconfig } from '../../src/localcluster/kubeconfig.ts';
import { requiredEnvironment } from './environment.ts';
import { kubectl, kubectlOK } from './kubectl.ts';

export interface ServiceAccountKubeconfig {
  /** A kubeconfig file that authenticates as the ServiceAccount with a bearer token. */
  path: string;
  remove(): Promise<void>;
}

interface AdminKubeconfig {
  clusters?: Array<{ cluster?: { server?: string; 'certificate-authority-data'?: string } }>;
}

/** The admin kubeconfig's server URL and CA, so that the ServiceAccount talks to the same apiserver. */
async function adminCluster(adminKubeconfig: string): Promise<{ serverURL: string; caPEM: string }> {
  const config = parse(await readFile(adminKubeconfig, 'utf8')) as AdminKubeconfig;
  const cluster = config.clusters?.[0]?.cluster;
  if (!cluster?.server || !cluster['certificate-authority-data']) throw new Error('the admin kubeconfig names no server and CA');
  return { serverURL: cluster.server, caPEM: Buffer.from(cluster['certificate-authority-data'], 'base64').toString('utf8') };
}

/**
 * Mints a short-lived token for namespace/name and writes a kubeconfig that uses it; `adminKubeconfig`
 * names the cluster (default: the run's control plane).
 */
export async function serviceAccountKubeconfig(namespace: string, name: string, adminKubeconfig = requiredEnvironment('kubeconfig')): Promise<ServiceAccountKubeconfig> {
  const token = (await kubectlOK(['create', 'token', name, '-n', namespace, '--duration=600s'], { kubeconfig: adminKubeconfig })).trim();
  if (!token) throw new Error(`kubectl create token ${name} -n ${namespace} printed no token`);
  const dir = await mkdtemp(join(tmpdir(), 'oauthapp-sa-'));
  const path = join(dir, 'kubeconfig');
  await writeFile(path, renderKubeconfig({ ...(await adminCluster(adminKubeconfig)), user: { token }, namespace }), { mode: 0o600 });
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface AccessQuestion {
  verb: string;
  /** As kubectl takes it: `secrets`, `leases.coordination.k8s.io/oauthapp-operator`, `*`. */
  resource: string;
  /** Omitted: all namespaces (`--all-namespaces`). */
  namespace?: string;
  subresource?: string;
}

/** The apiserver's answer (a SelfSubjectAccessReview) to "may this kubeconfig's user do this?". */
export async function canI(kubeconfig: string, question: AccessQuestion): Promise<boolean> {
  const args = ['auth', 'can-i', question.verb, question.resource, ...(question.namespace ? ['-n', question.namespace] : ['--all-namespaces'])];
  if (question.subresource) args.push(`--subresource=${question.subresource}`);
  const result = await kubectl(args, { kubeconfig });
  const answer = result.stdout.trim().split(/\s/)[0];
  if (answer === 'yes' && result.code === 0) return true;
  if (answer === 'no' && result.code === 1) return false;
  throw new Error(`kubectl ${args.join(' ')} gave no answer (${result.code}): ${result.stdout}${result.stderr}`);
}

/** How a question reads in a test title: `update leases.coordination.k8s.io/oauthapp-operator in oauthapp-system`. */
export function describeQuestion({ verb, resource, namespace, subresource }: AccessQuestion): string {
  return `${verb} ${resource}${subresource ? `/${subresource}` : ''} ${namespace ? `in ${namespace}` : 'in all namespaces'}`;
}
