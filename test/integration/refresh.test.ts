// An OAuthApp's tokens kept fresh in its target Secret, end to end: real apiserver, real HTTP to
// the sandbox provider, the operator running in-process.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { apply, condition, getApp, oauthAppManifest, opaqueSecret, secretData } from '../support/resources.ts';
import { startTestProvider, type TestProvider } from '../support/sandbox.ts';

let namespace: string;
let operatorNamespace: string;
let provider: TestProvider;
let operator: TestOperator;

beforeAll(async () => {
  [namespace, operatorNamespace] = await Promise.all([createTestNamespace('refresh'), createTestNamespace('refresh-operator')]);
  provider = await startTestProvider({ expiresIn: 3600 });
  operator = await startTestOperator({ namespaces: [namespace], operatorNamespace });
});

afterAll(async () => {
  await operator?.stop();
  await provider?.close();
  await Promise.all([deleteTestNamespace(namespace), deleteTestNamespace(operatorNamespace)]);
});

async function applyBootstrappedApp(name: string, spec: Record<string, unknown> = {}) {
  const refreshToken = provider.sandbox.issueRefreshToken(provider.clientId);
  await apply(namespace, opaqueSecret(`${name}-client`, { client_secret: provider.clientSecret }));
  await apply(namespace, opaqueSecret(`${name}-bootstrap`, { refresh_token: refreshToken }));
  await apply(
    namespace,
    oauthAppManifest({
      name,
      clientId: provider.clientId,
      tokenURL: provider.tokenURL,
      redirectURI: provider.redirectURI,
      refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' },
      spec,
    }),
  );
  return refreshToken;
}

describe('an OAuthApp seeded with a refresh token', () => {
  it('gets a target Secret whose access token the provider accepts, and shows Ready', async () => {
    await applyBootstrappedApp('crm-sync');

    const data = await eventually('the target Secret with an access token', async () => {
      const found = await secretData(namespace, 'crm-sync-credentials');
      return found?.access_token ? found : undefined;
    });

    expect(data).toMatchObject({ client_id: provider.clientId, client_secret: provider.clientSecret, token_type: 'Bearer', scope: 'base,deals:full' });
    expect(data.api_domain).toBe(provider.baseURL);
    expect(Date.parse(data.expires_at ?? '')).toBeGreaterThan(Date.now());
    expect(data.refresh_token).toBeUndefined();
    expect(await provider.whoAmI(data.access_token ?? '')).toBe(200);
    const app = await eventually('Ready=True', async () => {
      const current = await getApp(namespace, 'crm-sync');
      return condition(current, 'Ready')?.status === 'True' ? current : undefined;
    });
    expect(condition(app, 'Authorized')).toMatchObject({ status: 'True' });
    expect(condition(app, 'ClientSecretValid')).toMatchObject({ status: 'True' });
    const table = await kubectlOK(['get', 'oapp', 'crm-sync', '-n', namespace, '--no-headers']);
    expect(table.split(/\s+/).slice(0, 3)).toEqual(['crm-sync', 'True', 'True']);
  });
});
