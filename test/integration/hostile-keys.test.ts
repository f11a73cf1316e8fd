// Secret keys that name members of Object.prototype, in a clientSecretRef or refreshTokenRef, on the
// real apiserver with the real operator: read as what they are (a missing key, or a real value under
// that name), never as JavaScript's own members, and never a crash of the reconcile.
import { describe, expect, it } from '@jest/globals';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { apply, condition, opaqueSecret } from '../support/resources.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('hostile-keys');
const prototypeKeys = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];

describe.each(prototypeKeys)('a clientSecretRef key %j', (key) => {
  const name = `key-${key.replace(/[^a-z]/gi, '').toLowerCase()}`;

  it('that the Secret does not have is reported as a missing key (ClientSecretValid=False), not a crash', async () => {
    const provider = await testbed.newProvider();
    await testbed.applyApp(name, provider, { spec: { clientSecretRef: { name: `${name}-client`, key } } });

    const app = await testbed.appWith(name, (current) => condition(current, 'ClientSecretValid')?.reason === 'SecretNotFound', 'ClientSecretValid=False SecretNotFound');

    expect(condition(app, 'ClientSecretValid')?.message).toContain(`has no value under key ${key}`);
  });

  it('that the Secret does have is used like any other key', async () => {
    const provider = await testbed.newProvider();
    await apply(testbed.namespace, opaqueSecret(`${name}-client`, { [key]: provider.clientSecret }));
    await testbed.applyApp(`${name}-set`, provider, { spec: { clientSecretRef: { name: `${name}-client`, key } } });

    const app = await testbed.appWith(`${name}-set`, (current) => condition(current, 'Ready')?.status === 'True', 'Ready=True');

    expect(condition(app, 'ClientSecretValid')?.status).toBe('True');
    expect((await testbed.admin.secretData(testbed.namespace, `${name}-set-credentials`))?.client_secret).toBe(provider.clientSecret);
  });
});

describe('secrets', () => {
  it('no client secret or token reached logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
