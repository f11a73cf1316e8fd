// Where the apiserver is and how to prove who we are: a kubeconfig file, or the pod's service
// account. Read: server, CA, client certificate, bearer token or token file, basic auth,
// insecure-skip-tls-verify, tls-server-name, and exec credential plugins that hand out a token
// (how GKE, EKS and AKS kubeconfigs authenticate, for running the operator from a laptop). A
// kubeconfig that needs more (auth providers, impersonation, a proxy, an exec plugin's client
// certificate) is refused with a message that says so, never half-applied. This replaces @kubernetes/client-node, whose
// package index loads its whole generated API client (about 85 MiB of a process's memory) for a
// few hundred lines of YAML handling.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, YAMLError } from 'yaml';
import { z } from 'zod';

export interface KubeTLS {
  /** PEM; undefined: the system's CAs. */
  ca?: string;
  cert?: string;
  key?: string;
  /** false only with insecure-skip-tls-verify. */
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface KubeConfig {
  /** The apiserver's base URL, without a trailing slash. */
  readonly server: string;
  readonly tls: KubeTLS;
  /** The context's namespace, when it names one. */
  readonly namespace?: string;
  /**
   * The request headers that authenticate us. A token file is read again on every call (projected
   * service-account tokens are rotated by the kubelet); KubeHTTP calls it every 30 s at most.
   */
  credentials(): Promise<Record<string, string>>;
}

/** The service account's mount in a pod. */
export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

const text = z.string().min(1);
const cluster = z.object({
  server: text,
  'certificate-authority': text.optional(),
  'certificate-authority-data': text.optional(),
  'insecure-skip-tls-verify': z.boolean().optional(),
  'tls-server-name': text.optional(),
  'proxy-url': text.optional(),
});
const user = z.object({
  'client-certificate': text.optional(),
  'client-certificate-data': text.optional(),
  'client-key': text.optional(),
  'client-key-data': text.optional(),
  token: text.optional(),
  tokenFile: text.optional(),
  username: text.optional(),
  password: z.string().optional(),
  exec: z
    .object({
      apiVersion: z.enum(['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1']),
      command: text,
      args: z.array(z.string()).nullish(),
      env: z.array(z.object({ name: text, value: z.string() })).nullish(),
    })
    .optional(),
  'auth-provider': z.unknown().optional(),
  as: z.unknown().optional(),
  'as-uid': z.unknown().optional(),
  'as-groups': z.unknown().optional(),
  'as-user-extra': z.unknown().optional(),
});
const contextEntry = z.object({ cluster: text, user: text.optional(), namespace: text.optional() });
const kubeconfigFile = z.object({
  clusters: z.array(z.object({ name: text, cluster })).nullish(),
  users: z.array(z.object({ name: text, user })).nullish(),
  contexts: z.array(z.object({ name: text, context: contextEntry })).nullish(),
  'current-context': z.string().optional(),
});

/** Fields that would change who we are or which way requests go: refused rather than ignored. */
const unsupportedUserFields = ['auth-provider', 'as', 'as-uid', 'as-groups', 'as-user-extra'] as const;

export class KubeConfigError extends Error {
  readonly code = 'KUBECONFIG_INVALID';
}

/** A kubeconfig file's current context. Relative file paths in it are relative to the file, as for kubectl. */
export function loadKubeConfigFile(path: string, options: { context?: string } = {}): KubeConfig {
  const source = `kubeconfig ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new KubeConfigError(`${source}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  let document: unknown;
  try {
    // Not yaml's pretty errors: they quote the offending line, which may hold a token or key.
    document = parse(text, { prettyErrors: false });
  } catch (error) {
    const where = error instanceof YAMLError && error.linePos ? ` at line ${error.linePos[0].line}` : '';
    throw new KubeConfigError(`${source}: not valid YAML${where}${error instanceof YAMLError ? ` (${error.code})` : ''}`);
  }
  const parsed = kubeconfigFile.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KubeConfigError(`${source}: ${issue ? `${issue.path.join('.') || 'document'}: ${issue.message}` : 'not a kubeconfig'}`);
  }
  const config = parsed.data;
  const contextName = options.context ?? config['current-context'];
  if (!contextName) throw new KubeConfigError(`${source}: no current-context`);
  const current = config.contexts?.find((entry) => entry.name === contextName)?.context;
  if (!current) throw new KubeConfigError(`${source}: context ${JSON.stringify(contextName)} is not defined`);
  const clusterEntry = config.clusters?.find((entry) => entry.name === current.cluster)?.cluster;
  if (!clusterEntry) throw new KubeConfigError(`${source}: cluster ${JSON.stringify(current.cluster)} is not defined`);
  const userEntry: z.output<typeof user> | undefined = current.user === undefined ? {} : config.users?.find((entry) => entry.name === current.user)?.user;
  if (!userEntry) throw new KubeConfigError(`${source}: user ${JSON.stringify(current.user)} is not defined`);
  for (const field of unsupportedUserFields) {
    if (userEntry[field] !== undefined) throw new KubeConfigError(`${source}: user ${JSON.stringify(current.user)} uses ${field}, which the operator does not support (use a token, token file or client certificate)`);
  }
  if (clusterEntry['proxy-url'] !== undefined) throw new KubeConfigError(`${source}: cluster ${JSON.stringify(current.cluster)} uses proxy-url, which the operator does not support`);

  const base = dirname(resolve(path));
  const file = (name: string) => (isAbsolute(name) ? name : join(base, name));
  const material = (what: string, data: string | undefined, path: string | undefined): string | undefined => {
    if (data !== undefined) return Buffer.from(data, 'base64').toString('utf8');
    if (path === undefined) return undefined;
    try {
      return readFileSync(file(path), 'utf8');
    } catch (error) {
      throw new KubeConfigError(`${source}: cannot read ${what} ${file(path)}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  };
  const tls: KubeTLS = {};
  const ca = material('certificate-authority', clusterEntry['certificate-authority-data'], clusterEntry['certificate-authority']);
  const cert = material('client-certificate', userEntry['client-certificate-data'], userEntry['client-certificate']);
  const key = material('client-key', userEntry['client-key-data'], userEntry['client-key']);
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined) tls.cert = cert;
  if (key !== undefined) tls.key = key;
  if ((cert === undefined) !== (key === undefined)) throw new KubeConfigError(`${source}: user ${JSON.stringify(current.user)} has a client certificate without a key, or a key without a certificate`);
  if (clusterEntry['insecure-skip-tls-verify'] === true) tls.rejectUnauthorized = false;
  if (clusterEntry['tls-server-name'] !== undefined) tls.servername = clusterEntry['tls-server-name'];

  const { token, tokenFile, username, password, exec } = userEntry;
  const execToken = exec ? execCredentialPlugin(exec, `${source}: user ${JSON.stringify(current.user)}: exec plugin ${exec.command}`) : undefined;
  const credentials = async (): Promise<Record<string, string>> => {
    if (token !== undefined) return { Authorization: `Bearer ${token}` };
    if (execToken !== undefined) return { Authorization: `Bearer ${await execToken()}` };
    if (tokenFile !== undefined) return { Authorization: `Bearer ${await readToken(file(tokenFile))}` };
    if (username !== undefined) return { Authorization: `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}` };
    return {};
  };
  return { server: trimServer(clusterEntry.server), tls, ...(current.namespace ? { namespace: current.namespace } : {}), credentials };
}

/**
 * The pod's service account: the apiserver from KUBERNETES_SERVICE_HOST/PORT, its CA and the
 * projected token (read again on every call: the kubelet rotates it) from `directory`.
 */
export function loadInClusterConfig(env: Readonly<Record<string, string | undefined>> = process.env, directory = serviceAccountDir): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new KubeConfigError('not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set): pass --kubeconfig');
  let ca: string;
  try {
    ca = readFileSync(join(directory, 'ca.crt'), 'utf8');
  } catch (error) {
    throw new KubeConfigError(`cannot read the service account's CA ${join(directory, 'ca.crt')}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(directory, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    namespace = undefined;
  }
  const tokenPath = join(directory, 'token');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tls: { ca },
    ...(namespace ? { namespace } : {}),
    credentials: async () => ({ Authorization: `Bearer ${await readToken(tokenPath)}` }),
  };
}

/** --kubeconfig when given, the service account otherwise. */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  return path ? loadKubeConfigFile(path) : loadInClusterConfig();
}

const execCredential = z.object({
  status: z.object({
    token: text.optional(),
    expirationTimestamp: z.string().optional(),
    clientCertificateData: z.string().optional(),
  }),
});

/** Tokens of a plugin run with this long left are not reused: a request may take that long. */
const execTokenMarginMs = 60_000;

/**
 * client-go's exec credential protocol, token output only: the plugin's token is reused until
 * shortly before its expirationTimestamp (without one, KubeHTTP's 30-second credential cache is
 * the reuse). Its output is never part of an error message: it is a credential.
 */
function execCredentialPlugin(exec: NonNullable<z.output<typeof user>['exec']>, source: string): () => Promise<string> {
  let cached: { token: string; until: number } | undefined;
  return async () => {
    if (cached && Date.now() < cached.until) return cached.token;
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)(exec.command, exec.args ?? [], {
        env: {
          ...process.env,
          ...Object.fromEntries((exec.env ?? []).map(({ name, value }) => [name, value])),
          KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion: exec.apiVersion, kind: 'ExecCredential', spec: { interactive: false } }),
        },
        timeout: 60_000,
        maxBuffer: 1 << 20,
      }));
    } catch (error) {
      const code = typeof error === 'object' && error !== null && 'code' in error ? ` (${String(error.code)})` : '';
      // No `cause`: execFile's error carries the plugin's stdout, which may hold a token.
      throw new KubeConfigError(`${source} failed${code}`);
    }
    let parsed: z.output<typeof execCredential> | undefined;
    try {
      parsed = execCredential.parse(JSON.parse(stdout));
    } catch {
      throw new KubeConfigError(`${source} printed no ExecCredential with status`);
    }
    const { token, expirationTimestamp, clientCertificateData } = parsed.status;
    if (token === undefined) {
      throw new KubeConfigError(`${source} ${clientCertificateData !== undefined ? 'returned a client certificate, which the operator does not support (only tokens)' : 'returned no status.token'}`);
    }
    const expires = expirationTimestamp === undefined ? Number.NaN : Date.parse(expirationTimestamp);
    cached = Number.isNaN(expires) ? undefined : { token, until: expires - execTokenMarginMs };
    return token;
  };
}

async function readToken(path: string): Promise<string> {
  const token = (await readFile(path, 'utf8')).trim();
  if (!token) throw new KubeConfigError(`the token file ${path} is empty`);
  return token;
}

const trimServer = (server: string) => server.replace(/\/+$/, '');
