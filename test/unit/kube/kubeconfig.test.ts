// The kubeconfig and in-cluster loader: what it takes from a kubeconfig (and from where), what it
// refuses, and a request through KubeHTTP that proves the TLS material and credentials are used.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { stringify } from 'yaml';
import { KubeHTTP } from '../../../src/kube/http.ts';
import { KubeConfigError, loadInClusterConfig, loadKubeConfigFile } from '../../../src/kube/kubeconfig.ts';
import { generateCertificates, type Certificates } from '../../../src/localcluster/certificates.ts';

let dir: string;
let certificates: Certificates;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeconfig-test-'));
  certificates = await generateCertificates(join(dir, 'pki'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base64 = (text: string) => Buffer.from(text).toString('base64');

let counter = 0;
/** Writes a kubeconfig with one context `c` (cluster `k`, user `u`) and returns its path. */
async function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown> | undefined, extra: { namespace?: string; subdir?: string; json?: boolean } = {}): Promise<string> {
  const directory = join(dir, extra.subdir ?? `config-${(counter += 1)}`);
  await mkdir(directory, { recursive: true });
  const document = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'other', cluster: { server: 'https://other.example:6443' } }, { name: 'k', cluster }],
    users: user ? [{ name: 'u', user }] : [],
    contexts: [
      { name: 'other', context: { cluster: 'other', user: 'u' } },
      { name: 'c', context: { cluster: 'k', ...(user ? { user: 'u' } : {}), ...(extra.namespace ? { namespace: extra.namespace } : {}) } },
    ],
    'current-context': 'c',
  };
  const path = join(directory, extra.json ? 'config.json' : 'config');
  await writeFile(path, extra.json ? JSON.stringify(document) : stringify(document));
  return path;
}

describe('loadKubeConfigFile', () => {
  it('reads the current context: server (trailing slash dropped), CA data, bearer token, namespace', async () => {
    const config = loadKubeConfigFile(await kubeconfig({ server: 'https://10.0.0.1:6443/', 'certificate-authority-data': base64(certificates.caCert) }, { token: 'abc.def' }, { namespace: 'team-a' }));
    expect(config.server).toBe('https://10.0.0.1:6443');
    expect(config.tls.ca).toBe(certificates.caCert);
    expect(config.tls.rejectUnauthorized).toBeUndefined();
    expect(config.namespace).toBe('team-a');
    await expect(config.credentials()).resolves.toEqual({ Authorization: 'Bearer abc.def' });
  });

  it('reads JSON kubeconfigs too, and another context when asked', async () => {
    const path = await kubeconfig({ server: 'https://k.example' }, { token: 't' }, { json: true });
    expect(loadKubeConfigFile(path).server).toBe('https://k.example');
    expect(loadKubeConfigFile(path, { context: 'other' }).server).toBe('https://other.example:6443');
  });

  it('reads client certificate and key from data fields', async () => {
    const config = loadKubeConfigFile(await kubeconfig({ server: 'https://k' }, { 'client-certificate-data': base64(certificates.adminCert), 'client-key-data': base64(certificates.adminKey) }));
    expect(config.tls.cert).toBe(certificates.adminCert);
    expect(config.tls.key).toBe(certificates.adminKey);
    await expect(config.credentials()).resolves.toEqual({});
  });

  it('reads CA, certificate and key files relative to the kubeconfig, as kubectl does', async () => {
    const directory = join(dir, 'relative');
    await mkdir(join(directory, 'pki'), { recursive: true });
    await writeFile(join(directory, 'pki', 'ca.crt'), certificates.caCert);
    await writeFile(join(directory, 'pki', 'admin.crt'), certificates.adminCert);
    await writeFile(join(directory, 'admin.key'), certificates.adminKey);
    const config = loadKubeConfigFile(await kubeconfig({ server: 'https://k', 'certificate-authority': 'pki/ca.crt' }, { 'client-certificate': 'pki/admin.crt', 'client-key': join(directory, 'admin.key') }, { subdir: 'relative' }));
    expect(config.tls).toEqual({ ca: certificates.caCert, cert: certificates.adminCert, key: certificates.adminKey });
  });

  it('reads a tokenFile again on every call (rotated tokens)', async () => {
    const directory = join(dir, 'token-file');
    await mkdir(directory, { recursive: true });
    await writeFile(join(directory, 'token'), 'first\n');
    const config = loadKubeConfigFile(await kubeconfig({ server: 'https://k' }, { tokenFile: 'token' }, { subdir: 'token-file' }));
    await expect(config.credentials()).resolves.toEqual({ Authorization: 'Bearer first' });
    await writeFile(join(directory, 'token'), 'second');
    await expect(config.credentials()).resolves.toEqual({ Authorization: 'Bearer second' });
  });

  it('takes insecure-skip-tls-verify, tls-server-name and basic auth', async () => {
    const config = loadKubeConfigFile(await kubeconfig({ server: 'https://k', 'insecure-skip-tls-verify': true, 'tls-server-name': 'kubernetes.default.svc' }, { username: 'admin', password: 'pw' }));
    expect(config.tls).toEqual({ rejectUnauthorized: false, servername: 'kubernetes.default.svc' });
    await expect(config.credentials()).resolves.toEqual({ Authorization: `Basic ${base64('admin:pw')}` });
  });

  it('works without a user (an unauthenticated proxy)', async () => {
    const config = loadKubeConfigFile(await kubeconfig({ server: 'http://127.0.0.1:8001' }, undefined));
    await expect(config.credentials()).resolves.toEqual({});
  });

  it.each([
    ['auth-provider', { 'auth-provider': { name: 'oidc' } }, {}],
    ['as', { token: 't', as: 'someone-else' }, {}],
    ['proxy-url', { token: 't' }, { 'proxy-url': 'http://proxy:3128' }],
  ])('refuses a kubeconfig that uses %s, naming it', async (field, user, cluster) => {
    const path = await kubeconfig({ server: 'https://k', ...cluster }, user);
    expect(() => loadKubeConfigFile(path)).toThrow(KubeConfigError);
    expect(() => loadKubeConfigFile(path)).toThrow(new RegExp(`uses ${field}, which the operator does not support`));
  });

  describe('an exec credential plugin (GKE, EKS, AKS kubeconfigs)', () => {
    /** A plugin script that prints `credential` (after checking what client-go passes it) and counts its runs in `runs`. */
    async function plugin(credential: unknown, exitCode = 0): Promise<{ exec: Record<string, unknown>; runs: () => Promise<number> }> {
      const directory = join(dir, `plugin-${(counter += 1)}`);
      await mkdir(directory, { recursive: true });
      const script = join(directory, 'plugin.sh');
      const runs = join(directory, 'runs');
      await writeFile(
        script,
        ['#!/bin/sh', `echo run >> ${runs}`, '[ "$1" = get-token ] && [ "$CLUSTER" = prod ] || exit 3', `echo "$KUBERNETES_EXEC_INFO" | grep -q '"interactive":false' || exit 4`, `cat <<'EOF'`, JSON.stringify(credential), 'EOF', `exit ${exitCode}`, ''].join('\n'),
        { mode: 0o755 },
      );
      return {
        exec: { apiVersion: 'client.authentication.k8s.io/v1', command: script, args: ['get-token'], env: [{ name: 'CLUSTER', value: 'prod' }] },
        runs: async () => (await readFile(runs, 'utf8').catch(() => '')).split('\n').filter(Boolean).length,
      };
    }
    const credential = (status: Record<string, unknown>) => ({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status });

    it('sends the token the plugin prints, run with its args, env and KUBERNETES_EXEC_INFO', async () => {
      const { exec } = await plugin(credential({ token: 'from-plugin' }));
      const config = loadKubeConfigFile(await kubeconfig({ server: 'https://k' }, { exec }));
      await expect(config.credentials()).resolves.toEqual({ Authorization: 'Bearer from-plugin' });
    });

    it('reuses a token until shortly before its expirationTimestamp, then runs the plugin again', async () => {
      const long = await plugin(credential({ token: 't', expirationTimestamp: new Date(Date.now() + 3_600_000).toISOString() }));
      const longLived = loadKubeConfigFile(await kubeconfig({ server: 'https://k' }, { exec: long.exec }));
      await longLived.credentials();
      await longLived.credentials();
      expect(await long.runs()).toBe(1);
      const short = await plugin(credential({ token: 't', expirationTimestamp: new Date(Date.now() + 30_000).toISOString() }));
      const shortLived = loadKubeConfigFile(await kubeconfig({ server: 'https://k' }, { exec: short.exec }));
      await shortLived.credentials();
      await shortLived.credentials();
      expect(await short.runs()).toBe(2);
    });

    it('names the plugin when it fails or prints no token, never what it printed', async () => {
      const failing = await plugin(credential({ token: 'printed-before-failing' }), 1);
      const failed = loadKubeConfigFile(await kubeconfig({ server: 'https://k' }, { exec: failing.exec })).credentials();
      await expect(failed).rejects.toThrow(KubeConfigError);
      await expect(failed).rejects.toThrow(/user "u": exec plugin .*plugin\.sh failed \(1\)/);
      await expect(failed).rejects.not.toThrow(/printed-before-failing/);
      const certificate = await plugin(credential({ clientCertificateData: 'cert', clientKeyData: 'key' }));
      await expect(loadKubeConfigFile(await kubeconfig({ server: 'https://k' }, { exec: certificate.exec })).credentials()).rejects.toThrow(/returned a client certificate, which the operator does not support/);
      const garbage = await plugin('not json');
      await expect(loadKubeConfigFile(await kubeconfig({ server: 'https://k' }, { exec: garbage.exec })).credentials()).rejects.toThrow(/printed no ExecCredential/);
    });

    it('refuses an exec plugin of an unknown apiVersion, naming the field', async () => {
      const path = await kubeconfig({ server: 'https://k' }, { exec: { apiVersion: 'client.authentication.k8s.io/v1alpha1', command: 'x' } });
      expect(() => loadKubeConfigFile(path)).toThrow(/users\.0\.user\.exec\.apiVersion/);
    });
  });

  it('names what is missing or wrong', async () => {
    const noContext = join(dir, 'no-context.yaml');
    await writeFile(noContext, stringify({ clusters: [{ name: 'k', cluster: { server: 'https://k' } }] }));
    expect(() => loadKubeConfigFile(noContext)).toThrow(/no current-context/);
    expect(() => loadKubeConfigFile(join(dir, 'missing.yaml'))).toThrow(/kubeconfig .*missing\.yaml/);
    const path = await kubeconfig({ server: 'https://k' }, { token: 't' });
    expect(() => loadKubeConfigFile(path, { context: 'nope' })).toThrow(/context "nope" is not defined/);
    const noServer = await kubeconfig({ 'certificate-authority-data': 'x' }, { token: 't' });
    expect(() => loadKubeConfigFile(noServer)).toThrow(/clusters\.1\.cluster\.server/);
    const halfCert = await kubeconfig({ server: 'https://k' }, { 'client-certificate-data': base64(certificates.adminCert) });
    expect(() => loadKubeConfigFile(halfCert)).toThrow(/client certificate without a key/);
    const missingCA = await kubeconfig({ server: 'https://k', 'certificate-authority': 'nowhere/ca.crt' }, { token: 't' });
    expect(() => loadKubeConfigFile(missingCA)).toThrow(/cannot read certificate-authority .*nowhere\/ca\.crt/);
  });
});

describe('loadInClusterConfig', () => {
  it('uses KUBERNETES_SERVICE_HOST/PORT, the mounted CA and namespace, and reads the token again on every call', async () => {
    const mount = join(dir, 'serviceaccount');
    await mkdir(mount, { recursive: true });
    await writeFile(join(mount, 'ca.crt'), certificates.caCert);
    await writeFile(join(mount, 'namespace'), 'oauthapp-system');
    await writeFile(join(mount, 'token'), 'projected-1');
    const config = loadInClusterConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, mount);
    expect(config.server).toBe('https://10.96.0.1:443');
    expect(config.tls).toEqual({ ca: certificates.caCert });
    expect(config.namespace).toBe('oauthapp-system');
    await expect(config.credentials()).resolves.toEqual({ Authorization: 'Bearer projected-1' });
    await writeFile(join(mount, 'token'), 'projected-2\n');
    await expect(config.credentials()).resolves.toEqual({ Authorization: 'Bearer projected-2' });
    expect(loadInClusterConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, mount).server).toBe('https://[fd00::1]:443');
  });

  it('says so outside a pod, and when the mount is missing', () => {
    expect(() => loadInClusterConfig({}, join(dir, 'nowhere'))).toThrow(/not running in a Kubernetes pod .*--kubeconfig/);
    expect(() => loadInClusterConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, join(dir, 'nowhere'))).toThrow(/service account's CA/);
  });
});

describe('KubeHTTP with a loaded kubeconfig', () => {
  let server: Server;
  let url: string;
  const seen: Array<{ authorization: string | undefined; clientCertificate: string | undefined }> = [];

  beforeAll(async () => {
    const [cert, key] = await Promise.all([readFile(certificates.files.servingCert, 'utf8'), readFile(join(dir, 'pki', 'apiserver.key'), 'utf8')]);
    server = createServer({ cert, key, ca: certificates.caCert, requestCert: true, rejectUnauthorized: false }, (request, response) => {
      const peer = (request.socket as TLSSocket).getPeerCertificate();
      seen.push({ authorization: request.headers.authorization, clientCertificate: peer && 'subject' in peer ? String(peer.subject?.CN) : undefined });
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ kind: 'Status', path: request.url }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('verifies the server with the kubeconfig CA and presents the client certificate and token', async () => {
    const path = await kubeconfig(
      { server: `${url}/`, 'certificate-authority-data': base64(certificates.caCert) },
      { 'client-certificate-data': base64(certificates.adminCert), 'client-key-data': base64(certificates.adminKey), token: 'bearer-1' },
    );
    const http = await KubeHTTP.fromKubeConfig(loadKubeConfigFile(path));
    try {
      await expect(http.json({ method: 'GET', path: '/api' })).resolves.toEqual({ kind: 'Status', path: '/api' });
    } finally {
      await http.close();
    }
    expect(seen.at(-1)).toEqual({ authorization: 'Bearer bearer-1', clientCertificate: 'oauthapp-local-admin' });
  });

  it('refuses a server its CA did not sign (no CA given: the system CAs)', async () => {
    const http = await KubeHTTP.fromKubeConfig(loadKubeConfigFile(await kubeconfig({ server: url }, { token: 't' })));
    try {
      await expect(http.json({ method: 'GET', path: '/api' })).rejects.toThrow();
    } finally {
      await http.close();
    }
  });
});
