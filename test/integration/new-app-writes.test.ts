// What a new seeded OAuthApp costs in state-Secret writes: the seed is planted in the same create
// that claims its first refresh (one guarded write instead of a create and a claim), then the
// provider's answer is stored. Watched on the real apiserver, every event of the app's state Secret.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Informer } from '../../src/kube/informer.ts';
import type { Secret } from '../../src/kube/objects.ts';
import { createLogger } from '../../src/log.ts';
import { decodeState, roleLabel, stateSecretName } from '../../src/oauthapp/state.ts';
import { eventually } from '../support/eventually.ts';
import { adminClient, type AdminClient } from '../support/kube.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('new-app-writes');
let provider: TestProvider;
let states: Informer<Secret>;
// Its own connection pool: the testbed's admin client is closed in a hook that may run before
// ours, and closing a pool waits for its open watch.
let watcher: AdminClient;
const seen: Array<{ event: string; secret: Secret }> = [];

beforeAll(async () => {
  provider = await testbed.newProvider();
  watcher = await adminClient();
  states = new Informer<Secret>({
    name: 'test-states',
    http: watcher.http,
    path: `/api/v1/namespaces/${testbed.operatorNamespace}/secrets`,
    labelSelector: `${roleLabel}=state`,
    logger: createLogger({ level: 'silent' }),
  });
  states.on((event, secret) => seen.push({ event, secret }));
  states.start();
  await states.synced;
});

afterAll(async () => {
  await states?.stop();
  await watcher?.close();
});

describe('a new OAuthApp with a seed', () => {
  it('creates its state Secret with the seed and the claim in one write, then stores the answer: two writes', async () => {
    const app = await testbed.readyApp('seeded', provider);
    const name = stateSecretName(app.metadata.uid);
    const ofApp = () => seen.filter(({ secret }) => secret.metadata.name === name);
    await eventually('the answer stored', () => (ofApp().some(({ secret }) => decodeState(secret).tokens !== undefined) ? true : undefined));

    const [created, ...rest] = ofApp();
    expect(created?.event).toBe('added');
    const planted = decodeState(created!.secret);
    expect(planted.record.seedFingerprint).toBeDefined();
    expect(planted.record.claim).toBeDefined();
    expect(planted.tokens).toBeUndefined();
    expect(rest.map(({ event }) => event)).toEqual(['updated']);
    const stored = decodeState(rest[0]!.secret);
    expect(stored.tokens).toBeDefined();
    expect(stored.record.claim).toBeUndefined();
    testbed.canaries.push(stored.tokens?.accessToken ?? '', stored.refreshToken ?? '');
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
