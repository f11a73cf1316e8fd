// An OAuthApp's tokens kept fresh in its target Secret, end to end: real apiserver, real HTTP to
// the sandbox provider, the operator running in-process.
import { describe, expect, it } from '@jest/globals';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { condition, secretData } from '../support/resources.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('refresh');

describe('an OAuthApp seeded with a refresh token', () => {
  it('gets a target Secret whose access token the provider accepts, and shows Ready', async () => {
    const provider = await testbed.newProvider({ expiresIn: 3600 });
    await testbed.applyApp('crm-sync', provider);

    const data = await eventually('the target Secret with an access token', async () => {
      const found = await secretData(testbed.namespace, 'crm-sync-credentials');
      return found?.access_token ? found : undefined;
    });

    testbed.canaries.push(data.access_token ?? '');
    expect(data).toMatchObject({ client_id: provider.clientId, client_secret: provider.clientSecret, token_type: 'Bearer', scope: 'base,deals:full' });
    expect(data.api_domain).toBe(provider.baseURL);
    expect(Date.parse(data.expires_at ?? '')).toBeGreaterThan(Date.now());
    expect(data.refresh_token).toBeUndefined();
    expect(await provider.whoAmI(data.access_token ?? '')).toBe(200);
    const app = await testbed.appWith('crm-sync', (current) => condition(current, 'Ready')?.status === 'True', 'Ready=True');
    const state = await testbed.admin.secretData(testbed.operatorNamespace, stateSecretName(app.metadata.uid));
    testbed.canaries.push(state?.refresh_token ?? '', state?.access_token ?? '');
    expect(condition(app, 'Authorized')).toMatchObject({ status: 'True' });
    expect(condition(app, 'ClientSecretValid')).toMatchObject({ status: 'True' });
    const table = await kubectlOK(['get', 'oapp', 'crm-sync', '-n', testbed.namespace, '--no-headers']);
    expect(table.split(/\s+/).slice(0, 3)).toEqual(['crm-sync', 'True', 'True']);
  }, 90_000);
});

describe('all of the above', () => {
  it('leaked no client secret or token into logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
