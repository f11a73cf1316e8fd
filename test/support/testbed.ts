// The usual stage of an integration test file: an app namespace and an operator namespace of its
// own, the operator running in-process, sandbox providers on loopback, and the helpers that apply
// and watch OAuthApps as a user would. Call useTestbed() at the top of a test file.
import { afterAll, beforeAll } from '@jest/globals';
import type { ClientRegistration, SandboxOptions } from '../../src/sandbox/server.ts';
import { eventually } from './eventually.ts';
import { adminClient, type AdminClient } from './kube.ts';
import { createTestNamespace, deleteTestNamespace } from './namespaces.ts';
import { startTestOperator, type TestOperator } from './operator.ts';
import { apply, condition, getApp, oauthAppManifest, opaqueSecret, type AppView } from './resources.ts';
import { startTestProvider, type TestProvider } from './sandbox.ts';

export interface AppOptions {
  /** Default: the provider's own client secret. */
  clientSecret?: string;
  /** A refresh token to seed with (default: one the provider issues); null: none, authorize instead. */
  refreshToken?: string | null;
  spec?: Record<string, unknown>;
}

export interface Testbed {
  readonly namespace: string;
  readonly operatorNamespace: string;
  readonly operator: TestOperator;
  readonly admin: AdminClient;
  /** Client secrets and tokens in play, for the leak check. */
  readonly canaries: string[];
  /** Every log line of every operator this testbed ran. */
  logs(): string;
  newProvider(options?: SandboxOptions, redirectURI?: string, client?: Omit<ClientRegistration, 'redirectUri'>): Promise<TestProvider>;
  /** Applies `<name>-client` (and `<name>-bootstrap`) Secrets and the OAuthApp; returns the seed. */
  applyApp(name: string, provider: TestProvider, options?: AppOptions): Promise<string | undefined>;
  appWith(name: string, predicate: (app: AppView) => boolean, what: string, timeoutMs?: number): Promise<AppView>;
  readyApp(name: string, provider: TestProvider, options?: AppOptions): Promise<AppView>;
  restartOperator(): Promise<void>;
}

export interface TestbedOptions {
  /** Extra operator flags, e.g. `--provider-concurrency=2`; restarts keep them. */
  operatorArgv?: string[];
}

export function useTestbed(prefix: string, { operatorArgv = [] }: TestbedOptions = {}): Testbed {
  const providers: TestProvider[] = [];
  const earlierLogs: string[] = [];
  let namespace = '';
  let operatorNamespace = '';
  let operator: TestOperator | undefined;
  let admin: AdminClient | undefined;
  const start = () => startTestOperator({ namespaces: [namespace], operatorNamespace, argv: operatorArgv });

  beforeAll(async () => {
    [namespace, operatorNamespace] = await Promise.all([createTestNamespace(prefix), createTestNamespace(`${prefix}-operator`)]);
    operator = await start();
    admin = await adminClient();
  });

  afterAll(async () => {
    await operator?.stop();
    await Promise.all(providers.map((provider) => provider.close()));
    await admin?.close();
    await Promise.all([deleteTestNamespace(namespace), deleteTestNamespace(operatorNamespace)]);
  });

  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the testbed is used before its beforeAll ran');
    return value;
  };

  const testbed: Testbed = {
    get namespace() {
      return namespace;
    },
    get operatorNamespace() {
      return operatorNamespace;
    },
    get operator() {
      return started(operator);
    },
    get admin() {
      return started(admin);
    },
    canaries: [],
    logs: () => [...earlierLogs, operator?.logs() ?? ''].join(''),
    async newProvider(options = {}, redirectURI, client) {
      const provider = await startTestProvider(options, redirectURI, client);
      providers.push(provider);
      testbed.canaries.push(provider.clientSecret);
      return provider;
    },
    async applyApp(name, provider, { clientSecret = provider.clientSecret, refreshToken, spec = {} } = {}) {
      const seed = refreshToken === undefined ? provider.sandbox.issueRefreshToken(provider.clientId) : refreshToken ?? undefined;
      testbed.canaries.push(clientSecret, ...(seed ? [seed] : []));
      await apply(namespace, opaqueSecret(`${name}-client`, { client_secret: clientSecret }));
      if (seed) await apply(namespace, opaqueSecret(`${name}-bootstrap`, { refresh_token: seed }));
      await apply(
        namespace,
        oauthAppManifest({
          name,
          clientId: provider.clientId,
          tokenURL: provider.tokenURL,
          authorizeURL: provider.authorizeURL,
          redirectURI: provider.redirectURI,
          ...(seed ? { refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' } } : {}),
          spec,
        }),
      );
      return seed;
    },
    appWith(name, predicate, what, timeoutMs) {
      return eventually(
        `${name}: ${what}`,
        async () => {
          const app = await getApp(namespace, name);
          return predicate(app) ? app : undefined;
        },
        timeoutMs,
      );
    },
    async readyApp(name, provider, options) {
      await testbed.applyApp(name, provider, options);
      return testbed.appWith(name, (app) => condition(app, 'Ready')?.status === 'True', 'Ready=True');
    },
    async restartOperator() {
      earlierLogs.push(started(operator).logs());
      await started(operator).stop();
      operator = await start();
    },
  };
  return testbed;
}
