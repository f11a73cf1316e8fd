// Where token requests may go (issue 12), on the real apiserver: the admin's --provider-hosts and
// --allow-preset-overrides refuse a provider before any request; loopback addresses are refused on
// the resolved address unless --allow-loopback-providers; a failure's status and Events are coarse
// (no certificate names); a provider's http:// api_domain is dropped.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '../../src/localcluster/ports.ts';
import { requiredEnvironment } from '../support/environment.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { apply, condition, getApp, oauthAppManifest, opaqueSecret, secretData, type AppView } from '../support/resources.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';
import { startTLSProvider, type TLSProvider } from '../support/tls-provider.ts';

/** The same sandbox, called by its other loopback name. */
const viaLocalhost = (url: string) => url.replace('//127.0.0.1:', '//localhost:');

/** A custom provider pointed at the sandbox through `host` (its URLs as given, or via localhost). */
const customSpec = (provider: TestProvider, name: 'localhost' | '127.0.0.1') => {
  const at = name === 'localhost' ? viaLocalhost : (url: string) => url;
  return { provider: 'custom', tokenURL: at(provider.tokenURL), authorizeURL: at(provider.authorizeURL) };
};

/** Every Event about the namespace's objects, as JSON text. */
const eventsIn = (namespace: string) => kubectlOK(['get', 'events.events.k8s.io', '-n', namespace, '-o', 'json']);

/** The conditions' messages and the status, as JSON text. */
const statusText = (app: AppView) => JSON.stringify(app.status ?? {});

describe('an operator that allows only localhost and no preset overrides', () => {
  const testbed = useTestbed('policy', { operatorArgv: ['--provider-hosts=localhost', '--no-allow-preset-overrides'] });

  it('refuses a custom provider whose host is outside --provider-hosts with ProviderNotAllowed, and sends it nothing', async () => {
    const provider = await testbed.newProvider();
    await testbed.applyApp('elsewhere', provider, { spec: customSpec(provider, '127.0.0.1') });
    const app = await testbed.appWith('elsewhere', (view) => condition(view, 'Ready')?.reason === 'ProviderNotAllowed', 'Ready=False ProviderNotAllowed');
    expect(condition(app, 'Ready')).toMatchObject({ status: 'False', message: expect.stringContaining('"127.0.0.1"') });
    expect(provider.sandbox.stats().tokenRequests).toBe(0);
    expect((await secretData(testbed.namespace, 'elsewhere-credentials'))?.access_token).toBeUndefined();
    expect(await eventsIn(testbed.namespace)).toContain('ProviderNotAllowed');

    // The same sandbox by the allowed name works: the refusal was the host, not the provider.
    await testbed.readyApp('allowed', provider, { spec: customSpec(provider, 'localhost') });
    expect(provider.sandbox.stats().tokenRequests).toBeGreaterThanOrEqual(1);
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });

  it('shows no authorization URL pointing at a host outside --provider-hosts', async () => {
    const provider = await testbed.newProvider();
    await testbed.applyApp('unauthorized-elsewhere', provider, { refreshToken: null, spec: { ...customSpec(provider, 'localhost'), authorizeURL: provider.authorizeURL } });
    const app = await testbed.appWith('unauthorized-elsewhere', (view) => condition(view, 'Authorized')?.reason === 'ProviderNotAllowed', 'Authorized=False ProviderNotAllowed');
    expect(condition(app, 'Authorized')?.message).toContain('spec.authorizeURL');
    expect(app.status?.authorizationURL).toBeUndefined();
  });

  it('exchanges no code for an authorization URL shown before the spec moved to a host outside --provider-hosts', async () => {
    const provider = await testbed.newProvider();
    await testbed.applyApp('moved', provider, { refreshToken: null, spec: customSpec(provider, 'localhost') });
    const shown = await testbed.appWith('moved', (view) => view.status?.authorizationURL !== undefined, 'status.authorizationURL');
    const state = new URL(shown.status?.authorizationURL ?? '').searchParams.get('state') ?? '';
    await testbed.applyApp('moved', provider, { refreshToken: null, spec: customSpec(provider, '127.0.0.1') });
    await testbed.appWith('moved', (view) => condition(view, 'Ready')?.reason === 'ProviderNotAllowed', 'Ready=False ProviderNotAllowed');

    // The person still has the old link and comes back with a code.
    const page = await fetch(`${testbed.operator.callbackURL}?${new URLSearchParams({ code: 'moved-code', state })}`);
    expect(page.status).toBe(403);
    // Nothing but the client check made while the spec named an allowed host.
    expect(provider.sandbox.stats().presentedAuthorizationCodes).toHaveLength(0);
    expect(provider.sandbox.stats().tokenRequests).toBe(provider.sandbox.stats().clientChecks.length);
  });

  it('refuses a preset whose URLs are overridden without --allow-preset-overrides, and sends it nothing', async () => {
    const provider = await testbed.newProvider();
    // provider: pipedrive (the default) with tokenURL and authorizeURL pointing at the sandbox.
    await testbed.applyApp('overridden', provider, { spec: { tokenURL: viaLocalhost(provider.tokenURL), authorizeURL: viaLocalhost(provider.authorizeURL) } });
    const app = await testbed.appWith('overridden', (view) => condition(view, 'Ready')?.reason === 'ProviderNotAllowed', 'Ready=False ProviderNotAllowed');
    expect(condition(app, 'Ready')?.message).toContain('--allow-preset-overrides');
    expect(provider.sandbox.stats().tokenRequests).toBe(0);
  });

  it('drops an http:// api_domain from the provider and keeps the https:// one it had', async () => {
    const provider = await testbed.newProvider({ apiDomain: 'https://acme.example.com' });
    await testbed.readyApp('domain', provider, { spec: customSpec(provider, 'localhost') });
    expect((await secretData(testbed.namespace, 'domain-credentials'))?.api_domain).toBe('https://acme.example.com');
    const first = (await secretData(testbed.namespace, 'domain-credentials'))?.access_token;

    provider.sandbox.setApiDomain('http://acme.example.com');
    await kubectlOK(['annotate', 'oauthapp', 'domain', '-n', testbed.namespace, 'oauthapp.dev/rotate=api-domain', '--overwrite']);
    const data = await eventually('domain-credentials with a new access token', async () => {
      const current = await secretData(testbed.namespace, 'domain-credentials');
      return current?.access_token && current.access_token !== first ? current : undefined;
    });
    expect(data.api_domain).toBe('https://acme.example.com');
  });
});

describe('an operator without --allow-loopback-providers', () => {
  const testbed = useTestbed('no-loopback', { operatorArgv: ['--no-allow-loopback-providers'] });

  it('refuses a provider whose name resolves to a loopback address at connect time, and sends it nothing', async () => {
    const provider = await testbed.newProvider();
    await testbed.applyApp('loopback', provider, { spec: customSpec(provider, 'localhost') });
    const app = await testbed.appWith('loopback', (view) => (condition(view, 'Ready')?.message ?? '').includes('the last refresh failed'), 'a failed refresh in Ready');
    expect(condition(app, 'Ready')).toMatchObject({ status: 'False', message: expect.stringContaining("the provider's address is not allowed") });
    expect(statusText(app)).not.toContain('127.0.0.1');
    expect(provider.sandbox.stats().tokenRequests).toBe(0);
    // The refusal was before sending: the seed is still good, not given up as interrupted.
    expect(condition(app, 'Authorized')?.status).toBe('True');
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });

  it('refuses a literal loopback address the same way', async () => {
    const provider = await testbed.newProvider();
    await testbed.applyApp('literal', provider, { spec: customSpec(provider, '127.0.0.1') });
    const app = await testbed.appWith('literal', (view) => (condition(view, 'Ready')?.message ?? '').includes('the last refresh failed'), 'a failed refresh in Ready');
    expect(condition(app, 'Ready')?.message).toContain("the provider's address is not allowed");
    expect(provider.sandbox.stats().tokenRequests).toBe(0);
  });
});

describe('a TLS failure', () => {
  const certificateName = 'cert-name-canary.corp.internal';
  const canaries = ['tls-client-secret-canary', 'tls-refresh-token-canary'];
  let namespace = '';
  let operatorNamespace = '';
  let callbackURL = '';
  let tls: TLSProvider | undefined;
  let operator: OperatorProcess | undefined;

  beforeAll(async () => {
    [namespace, operatorNamespace] = await Promise.all([createTestNamespace('tls'), createTestNamespace('tls-operator')]);
    tls = await startTLSProvider(certificateName);
    const callbackPort = await freePort();
    callbackURL = `http://127.0.0.1:${callbackPort}/oauth/callback`;
    // The operator trusts the certificate, so the only fault is the name: Node's error then quotes
    // the certificate's names, which is what status, Events and the callback page must not repeat.
    operator = startOperatorProcess(
      [
        `--kubeconfig=${requiredEnvironment('kubeconfig')}`,
        `--namespaces=${namespace}`,
        `--operator-namespace=${operatorNamespace}`,
        '--no-leader-elect',
        '--log-level=debug',
        '--metrics-addr=127.0.0.1:0',
        `--callback-addr=127.0.0.1:${callbackPort}`,
      ],
      { NODE_EXTRA_CA_CERTS: tls.certificatePath },
    );
    await apply(namespace, opaqueSecret('tls-client', { client_secret: canaries[0] ?? '' }));
  });

  afterAll(async () => {
    await operator?.kill('SIGTERM');
    await tls?.close();
    await Promise.all([deleteTestNamespace(namespace), deleteTestNamespace(operatorNamespace)]);
  });

  const applyTLSApp = async (name: string, seeded: boolean) => {
    if (seeded) await apply(namespace, opaqueSecret(`${name}-bootstrap`, { refresh_token: canaries[1] ?? '' }));
    await apply(
      namespace,
      oauthAppManifest({
        name,
        clientId: 'tls-client',
        tokenURL: (tls as TLSProvider).tokenURL,
        redirectURI: 'https://ops.example.com/oauth/callback',
        clientSecretRef: { name: 'tls-client', key: 'client_secret' },
        ...(seeded ? { refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' } } : {}),
        spec: { provider: 'custom', authorizeURL: 'https://localhost/oauth/authorize' },
      }),
    );
  };

  it("of a refresh reaches status as 'TLS verification failed', never with the certificate's names", async () => {
    await applyTLSApp('tls-refresh', true);
    const app = await eventually('tls-refresh: a failed refresh in Ready', async () => {
      const view = await getApp(namespace, 'tls-refresh');
      return (condition(view, 'Ready')?.message ?? '').includes('the last refresh failed') ? view : undefined;
    });
    expect(condition(app, 'Ready')?.message).toContain('TLS verification failed');
    expect(statusText(app)).not.toContain('cert-name-canary');
    expect((tls as TLSProvider).requests).toBe(0);
    // The names are in the debug log, so the check above is not vacuous.
    await eventually('the certificate names in the debug log', async () => ((operator as OperatorProcess).output().includes(certificateName) ? true : undefined));
  });

  it("of a code exchange reaches status, its Event and the callback page as 'TLS verification failed', never with the certificate's names", async () => {
    await applyTLSApp('tls-code', false);
    const authorizationURL = await eventually('tls-code: status.authorizationURL', async () => (await getApp(namespace, 'tls-code')).status?.authorizationURL);
    const state = new URL(authorizationURL).searchParams.get('state') ?? '';
    // As if the provider sent the person back with a code: the exchange then fails on TLS.
    const page = await fetch(`${callbackURL}?${new URLSearchParams({ code: 'tls-code-canary', state })}`);
    const body = await page.text();
    expect(page.status).toBe(502);
    expect(body).toContain('TLS verification failed');
    expect(body).not.toContain('cert-name-canary');

    const app = await eventually('tls-code: the failed exchange in Authorized', async () => {
      const view = await getApp(namespace, 'tls-code');
      return (condition(view, 'Authorized')?.message ?? '').includes('the last authorization failed') ? view : undefined;
    });
    expect(condition(app, 'Authorized')?.message).toContain('TLS verification failed');
    expect(statusText(app)).not.toContain('cert-name-canary');
    const events = await eventsIn(namespace);
    expect(events).toContain('TLS verification failed');
    expect(events).not.toContain('cert-name-canary');
    expect((tls as TLSProvider).requests).toBe(0);
    await expectNoSecretValuesLeaked([...canaries, 'tls-code-canary'], { namespace, logs: (operator as OperatorProcess).output() });
  });
});
