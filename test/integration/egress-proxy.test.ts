// Token requests through an egress proxy: the operator process runs with HTTPS_PROXY, NO_PROXY
// and NODE_EXTRA_CA_CERTS as a pod would. The provider is the sandbox behind TLS whose certificate
// only NODE_EXTRA_CA_CERTS makes trusted; the proxy is a loopback CONNECT proxy that alone can
// resolve the provider's name, and counts its tunnels.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startConnectProxy, type ConnectProxy } from '../support/connect-proxy.ts';
import { requiredEnvironment } from '../support/environment.ts';
import { eventually } from '../support/eventually.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { apply, condition, getApp, oauthAppManifest, opaqueSecret } from '../support/resources.ts';
import { startTestProvider, type TestProvider } from '../support/sandbox.ts';
import { startTLSFront, type TLSFront } from '../support/tls-front.ts';

/** A name only the proxy resolves: a request that reached the provider by it went through the proxy. */
const proxiedName = 'provider.oauthapp.test';
// The proxy URL's credentials must never be logged either.
const proxyPassword = 'proxy-password-canary';

describe('an operator with HTTPS_PROXY and NO_PROXY', () => {
  let namespace = '';
  let operatorNamespace = '';
  let provider: TestProvider | undefined;
  let front: TLSFront | undefined;
  let proxy: ConnectProxy | undefined;
  let operator: OperatorProcess | undefined;
  const canaries: string[] = [proxyPassword];

  beforeAll(async () => {
    [namespace, operatorNamespace] = await Promise.all([createTestNamespace('proxy'), createTestNamespace('proxy-operator')]);
    provider = await startTestProvider({ apiDomain: 'https://api.oauthapp.test' });
    canaries.push(provider.clientSecret);
    front = await startTLSFront(Number(new URL(provider.baseURL).port), [proxiedName, 'localhost']);
    proxy = await startConnectProxy({ [proxiedName]: '127.0.0.1' });
    operator = startOperatorProcess(
      [
        `--kubeconfig=${requiredEnvironment('kubeconfig')}`,
        `--namespaces=${namespace}`,
        `--operator-namespace=${operatorNamespace}`,
        '--no-leader-elect',
        '--components=controller',
        '--metrics-addr=127.0.0.1:0',
      ],
      {
        HTTPS_PROXY: proxy.url.replace('//', `//proxy-user:${proxyPassword}@`),
        NO_PROXY: 'localhost',
        NODE_EXTRA_CA_CERTS: front.certificatePath,
      },
    );
    await apply(namespace, opaqueSecret('proxy-client', { client_secret: provider.clientSecret }));
  });

  afterAll(async () => {
    await operator?.kill('SIGTERM');
    await Promise.all([proxy?.close(), front?.close(), provider?.close()]);
    await Promise.all([deleteTestNamespace(namespace), deleteTestNamespace(operatorNamespace)]);
  });

  /** An app whose token endpoint is the sandbox at https://HOST:PORT; resolves once it is Ready. */
  const readyAppAt = async (name: string, host: string) => {
    const sandbox = provider as TestProvider;
    const seed = sandbox.sandbox.issueRefreshToken(sandbox.clientId);
    canaries.push(seed);
    await apply(namespace, opaqueSecret(`${name}-bootstrap`, { refresh_token: seed }));
    await apply(
      namespace,
      oauthAppManifest({
        name,
        clientId: sandbox.clientId,
        tokenURL: `https://${host}:${(front as TLSFront).port}/oauth/token`,
        redirectURI: sandbox.redirectURI,
        clientSecretRef: { name: 'proxy-client', key: 'client_secret' },
        refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' },
      }),
    );
    return eventually(`${name}: Ready=True`, async () => {
      const app = await getApp(namespace, name);
      return condition(app, 'Ready')?.status === 'True' ? app : undefined;
    });
  };

  it("sends token requests through the proxy's CONNECT tunnel, trusting the provider through NODE_EXTRA_CA_CERTS", async () => {
    await readyAppAt('proxied', proxiedName);
    expect((proxy as ConnectProxy).connects(`${proxiedName}:${(front as TLSFront).port}`)).toBeGreaterThanOrEqual(1);
    await expectNoSecretValuesLeaked(canaries, { namespace, logs: (operator as OperatorProcess).output() });
  });

  it('connects directly to a host NO_PROXY names', async () => {
    await readyAppAt('direct', 'localhost');
    expect((proxy as ConnectProxy).connects(`localhost:${(front as TLSFront).port}`)).toBe(0);
    await expectNoSecretValuesLeaked(canaries, { namespace, logs: (operator as OperatorProcess).output() });
  });
});
