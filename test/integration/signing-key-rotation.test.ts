// Rotating the state-signing key (issue 12; docs/runbooks/rotate-state-signing-key.md) with two
// replicas running, as ops do it: `kubectl annotate secret oauthapp-state-signing-key
// oauthapp.dev/rotate=...`. Both replicas re-read the Secret at the same instants, so both see the
// request and race to act on it: exactly one new key results. Apps awaiting their first
// authorization had URLs sealed with the old key: those links still complete the authorization
// end to end through the sandbox's consent (which requires PKCE, so the code exchange must send
// the verifier of the key that sealed the link), on either replica, within the grace; status
// shows new URLs sealed with the new key at once, and they work too.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { codeChallengeS256 } from '../../src/oauth/pkce.ts';
import { createStateSigner } from '../../src/oauth/state-token.ts';
import { rotateAnnotation } from '../../src/oauthapp/labels.ts';
import { lastRotateRequestAnnotation, previousKeyField, rotatedAtAnnotation, signingKeySecretName } from '../../src/oauthapp/signing-key.ts';
import type { Secret } from '../../src/kube/objects.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { consent, visit } from '../support/person.ts';
import { condition, secretData, type AppView } from '../support/resources.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('key-rotation');
let provider: TestProvider;
/** The second replica (a standby: the testbed's operator took the Lease first). */
let second: TestOperator | undefined;

beforeAll(async () => {
  provider = await testbed.newProvider({}, testbed.operator.callbackURL, { requirePkce: true });
  second = await startTestOperator({ namespaces: [testbed.namespace], operatorNamespace: testbed.operatorNamespace });
});

afterAll(async () => {
  await second?.stop();
});

const replicas = (): TestOperator[] => [testbed.operator, ...(second ? [second] : [])];

async function readSecret(): Promise<Secret> {
  const secret = await testbed.admin.kube.getSecret(testbed.operatorNamespace, signingKeySecretName);
  if (!secret) throw new Error('no signing key Secret');
  return secret;
}

const keyOf = (secret: Secret, field: string) => Buffer.from(secret.data?.[field] ?? '', 'base64');
const stateOf = (url: string) => new URL(url).searchParams.get('state') ?? '';
const opensWith = (key: Buffer, url: string) => createStateSigner({ key, now: Date.now }).verify(stateOf(url)).ok;
const verifierFor = (key: Buffer, app: AppView) => createStateSigner({ key, now: Date.now }).codeVerifier({ uid: app.metadata.uid, round: 0 });

/** Log lines (JSON) of one replica whose msg starts with `prefix`. */
const logLines = (operator: TestOperator, prefix: string) =>
  operator
    .logs()
    .split('\n')
    .filter((line) => line.includes(prefix))
    .map((line) => JSON.parse(line) as { msg: string; rotateRequest?: string; previousKeyAcceptedUntil?: string });

async function awaitingApp(name: string): Promise<AppView> {
  await testbed.applyApp(name, provider, { refreshToken: null });
  return testbed.appWith(name, (app) => Boolean(app.status?.authorizationURL), 'an authorization URL');
}

/** Consent at the sandbox, then the callback on `replica`; returns the page and the code the provider issued. */
async function authorize(url: string, replica: TestOperator): Promise<{ status: number; code: string }> {
  const location = new URL(await consent(url, 'allow'));
  const callback = new URL(replica.callbackURL);
  location.protocol = callback.protocol;
  location.host = callback.host;
  const page = await visit(location.toString());
  return { status: page.status, code: location.searchParams.get('code') ?? '' };
}

/** The PKCE verifier the operator sent with this code. */
const verifierSentWith = (code: string) => provider.sandbox.stats().presentedAuthorizationCodes.find((presentation) => presentation.value === code);

describe('rotating the state-signing key with two replicas running', () => {
  it('makes one new key; links sealed with the old key still complete the first authorization; status shows links sealed with the new one', async () => {
    const oldLinkOnFirst = await awaitingApp('old-link-first');
    const oldLinkOnSecond = await awaitingApp('old-link-second');
    const newLink = await awaitingApp('new-link');
    const before = await readSecret();
    const original = keyOf(before, 'key');
    testbed.canaries.push(original.toString('base64'));
    const oldURLs = [oldLinkOnFirst, oldLinkOnSecond, newLink].map((app) => app.status?.authorizationURL ?? '');
    for (const url of oldURLs) expect(opensWith(original, url)).toBe(true);

    const request = `${Date.now()}`;
    await kubectlOK(['-n', testbed.operatorNamespace, 'annotate', 'secret', signingKeySecretName, `${rotateAnnotation}=${request}`, '--overwrite']);

    // Exactly one replica rotated: one new key, the original kept as previous-key, the request recorded.
    const rotated = await eventually('the rotation recorded on the Secret', async () => {
      const secret = await readSecret();
      return secret.metadata.annotations?.[lastRotateRequestAnnotation] === request ? secret : undefined;
    });
    const fresh = keyOf(rotated, 'key');
    testbed.canaries.push(fresh.toString('base64'));
    expect(fresh).toHaveLength(32);
    expect(fresh.equals(original)).toBe(false);
    expect(keyOf(rotated, previousKeyField).equals(original)).toBe(true);
    expect(Date.parse(rotated.metadata.annotations?.[rotatedAtAnnotation] ?? '')).toBeGreaterThan(Date.now() - 60_000);
    // Every replica says it uses the new key; one of them says it rotated, with the request value.
    await eventually('both replicas on the new key', () => (replicas().every((replica) => logLines(replica, 'state signing key').length === 1) ? true : undefined));
    const lines = replicas().flatMap((replica) => logLines(replica, 'state signing key'));
    expect(lines.filter((line) => line.msg.startsWith('state signing key rotated'))).toEqual([expect.objectContaining({ rotateRequest: request })]);
    expect(lines.filter((line) => line.msg.startsWith('state signing key changed'))).toHaveLength(1);
    for (const line of lines) expect(Date.parse(line.previousKeyAcceptedUntil ?? '')).toBeGreaterThan(Date.now() + 5 * 60_000);

    // Status is renewed at once with URLs sealed with the new key, challenging the new key's verifier.
    const renewed = await testbed.appWith('new-link', (app) => opensWith(fresh, app.status?.authorizationURL ?? ''), 'a URL sealed with the new key');
    const renewedURL = renewed.status?.authorizationURL ?? '';
    expect(opensWith(original, renewedURL)).toBe(false);
    expect(new URL(renewedURL).searchParams.get('code_challenge')).toBe(codeChallengeS256(verifierFor(fresh, renewed)));

    // The old links complete the first authorization, on either replica, with the old key's verifier.
    for (const [app, replica] of [
      [oldLinkOnFirst, testbed.operator],
      [oldLinkOnSecond, second ?? testbed.operator],
    ] as const) {
      const oldURL = app.status?.authorizationURL ?? '';
      const { status, code } = await authorize(oldURL, replica);
      expect({ app: app.metadata.name, status }).toEqual({ app: app.metadata.name, status: 200 });
      const sent = verifierSentWith(code);
      expect(sent).toMatchObject({ outcome: 'ok', codeVerifier: verifierFor(original, app) });
      expect(codeChallengeS256(sent?.codeVerifier ?? '')).toBe(new URL(oldURL).searchParams.get('code_challenge'));
      testbed.canaries.push(sent?.codeVerifier ?? '');
    }

    // The renewed link works too (on the standby), with the new key's verifier.
    const { status, code } = await authorize(renewedURL, second ?? testbed.operator);
    expect(status).toBe(200);
    expect(verifierSentWith(code)).toMatchObject({ outcome: 'ok', codeVerifier: verifierFor(fresh, renewed) });
    testbed.canaries.push(verifierSentWith(code)?.codeVerifier ?? '');

    // All three are authorized, with working credentials.
    for (const name of ['old-link-first', 'old-link-second', 'new-link']) {
      await testbed.appWith(name, (app) => condition(app, 'Ready')?.status === 'True', 'Ready');
      const data = await secretData(testbed.namespace, `${name}-credentials`);
      expect(await provider.whoAmI(data?.access_token ?? '')).toBe(200);
      testbed.canaries.push(data?.access_token ?? '');
    }
  }, 120_000);

  it('leaked no key, verifier, client secret or token into logs, Events or status', async () => {
    const codes = provider.sandbox.stats().presentedAuthorizationCodes.map((presentation) => presentation.value);
    await expectNoSecretValuesLeaked([...testbed.canaries, ...codes], { namespace: testbed.namespace, logs: testbed.logs() + (second?.logs() ?? '') });
  });
});
