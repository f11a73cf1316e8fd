// The state Secret in the operator's namespace: what goes in comes back out, what cannot be read
// is reported rather than guessed, and the bookkeeping never holds a secret value.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodeData, encodeData, type Secret } from '../../../src/kube/objects.ts';
import { managedByLabel, managedByValue } from '../../../src/oauthapp/labels.ts';
import { claimRefresh, recordFailure, recordStaleClaim, recordSuccess, seedRefreshToken } from '../../../src/oauthapp/policies.ts';
import {
  appAnnotation,
  appUIDLabel,
  CorruptStateError,
  decodeState,
  emptyState,
  encodeStateData,
  fingerprint,
  roleLabel,
  stateSecret,
  type AppState,
  type Bookkeeping,
} from '../../../src/oauthapp/state.ts';

const app = { namespace: 'sales', name: 'crm-sync', uid: '6f1c2a4e-0d7b-4d7e-9a51-2b8f0c3d9e10' };
const operatorNamespace = 'oauthapp-system';
const now = Date.parse('2030-01-01T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const secretValue = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 });
const time = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2999-12-31T23:59:59Z'), noInvalidDate: true }).map((date) => date.toISOString());
const hex16 = fc.stringMatching(/^[0-9a-f]{16}$/);

const failureKinds = ['invalid_grant', 'invalid_client', 'rate_limited', 'server_error', 'timeout', 'network', 'malformed_response', 'rejected', 'interrupted'] as const;

const bookkeepingArb: fc.Arbitrary<Bookkeeping> = fc.record(
  {
    issuedAt: time,
    refreshAt: time,
    lastRefreshTime: time,
    claim: fc.record({ holder: text, refreshTokenFingerprint: hex16, claimedAt: time, expiresAt: time }),
    failure: fc.record(
      {
        kind: fc.constantFrom(...failureKinds),
        message: text,
        at: time,
        attempts: fc.integer({ min: 1, max: 1_000 }),
        retryAt: time,
        clientSecretFingerprint: hex16,
      },
      { requiredKeys: ['kind', 'message', 'at', 'attempts'] },
    ),
    deadRefreshTokenFingerprint: hex16,
    seedFingerprint: hex16,
    rotatesRefreshTokens: fc.boolean(),
    verifiedClientSecretFingerprint: hex16,
    rolledOutClientSecretFingerprint: hex16,
    rolledOutRestartedAt: time,
    pendingRollout: fc.record({ clientSecretFingerprint: hex16, restartedAt: time }),
  },
  { requiredKeys: [] },
);

const stateArb: fc.Arbitrary<AppState> = fc.record(
  {
    refreshToken: secretValue,
    tokens: fc.record(
      { accessToken: secretValue, tokenType: text, expiresAt: time, scope: text, apiDomain: text },
      { requiredKeys: ['accessToken', 'tokenType', 'expiresAt'] },
    ),
    record: bookkeepingArb,
  },
  { requiredKeys: ['record'] },
);

/** A state Secret as the apiserver would hand it back, with the given data (plain text). */
const storedSecret = (data: Record<string, string>): Secret => ({
  metadata: { name: `oauthapp-state-${app.uid}`, namespace: operatorNamespace, resourceVersion: '42' },
  type: 'Opaque',
  data: encodeData(data),
});

describe('the state Secret', () => {
  it('decodes to the state it was encoded from', () => {
    fc.assert(fc.property(stateArb, (state) => {
      expect(decodeState(stateSecret(app, operatorNamespace, state))).toEqual(state);
    }));
  });

  it('decodes a Secret without bookkeeping as no bookkeeping', () => {
    expect(decodeState(storedSecret({ refresh_token: 'refresh-one' }))).toEqual({ refreshToken: 'refresh-one', record: {} });
  });

  it('decodes an empty Secret as the empty state', () => {
    expect(decodeState(storedSecret({}))).toEqual(emptyState());
  });

  it.each([
    ['text that is not JSON', '{"refreshAt": '],
    ['JSON that is not an object', '"hello"'],
    ['an unknown failure kind', JSON.stringify({ failure: { kind: 'gremlins', message: '', at: iso(now), attempts: 1 } })],
    ['zero attempts', JSON.stringify({ failure: { kind: 'timeout', message: '', at: iso(now), attempts: 0 } })],
    ['a time that is not RFC 3339', JSON.stringify({ refreshAt: 'tomorrow' })],
    ['a claim without a holder', JSON.stringify({ claim: { refreshTokenFingerprint: 'ab', claimedAt: iso(now), expiresAt: iso(now) } })],
  ])('throws CorruptStateError for bookkeeping with %s', (_what, recordJSON) => {
    const secret = storedSecret({ 'record.json': recordJSON, refresh_token: 'canary-refresh-token' });
    expect(() => decodeState(secret)).toThrow(CorruptStateError);
  });

  it('names the Secret and the key, not its contents, when the bookkeeping is corrupt', () => {
    const secret = storedSecret({ 'record.json': '{canary-refresh-token', refresh_token: 'canary-refresh-token' });
    let caught: unknown;
    try {
      decodeState(secret);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CorruptStateError);
    expect(caught).toMatchObject({ code: 'CORRUPT_STATE' });
    expect((caught as Error).message).toContain(`oauthapp-state-${app.uid}`);
    expect((caught as Error).message).toContain('record.json');
    expect((caught as Error).message).not.toContain('canary');
  });

  it('is named after the app UID and lives in the operator namespace', () => {
    const secret = stateSecret(app, operatorNamespace, emptyState());
    expect(secret.metadata).toMatchObject({ name: `oauthapp-state-${app.uid}`, namespace: operatorNamespace });
    expect(secret.type).toBe('Opaque');
  });

  it('carries the managed-by, role and app UID labels and names its app in an annotation', () => {
    const { labels, annotations } = stateSecret(app, operatorNamespace, emptyState()).metadata;
    expect(labels).toEqual({ [managedByLabel]: managedByValue, [roleLabel]: 'state', [appUIDLabel]: app.uid });
    expect(annotations).toEqual({ [appAnnotation]: 'sales/crm-sync' });
  });

  it('carries the resourceVersion it is written against, and none when created', () => {
    expect(stateSecret(app, operatorNamespace, emptyState(), '42').metadata.resourceVersion).toBe('42');
    expect(stateSecret(app, operatorNamespace, emptyState()).metadata).not.toHaveProperty('resourceVersion');
  });
});

describe('fingerprint', () => {
  it('is sixteen hex digits that differ from the value', () => {
    fc.assert(fc.property(secretValue, (value) => {
      expect(fingerprint(value)).toMatch(/^[0-9a-f]{16}$/);
      expect(fingerprint(value)).not.toBe(value);
    }));
  });

  it('tells different values apart and recognises the same value', () => {
    expect(fingerprint('client-secret-one')).toBe(fingerprint('client-secret-one'));
    expect(fingerprint('client-secret-one')).not.toBe(fingerprint('client-secret-two'));
  });
});

describe('the bookkeeping', () => {
  const canaries = {
    seed: 'CANARY-seed-refresh-token',
    refresh: 'CANARY-rotated-refresh-token',
    access: 'CANARY-access-token',
    clientSecret: 'CANARY-client-secret',
    newClientSecret: 'CANARY-new-client-secret',
  };

  /** The state after a lifetime of seeding, claims, failures and successes, all with canary values. */
  function lifetime(): AppState[] {
    const states: AppState[] = [];
    const backoffMs = () => 10_000;
    let state = seedRefreshToken(emptyState(), canaries.seed);
    states.push(state);
    state = claimRefresh(state, 'replica-a', now, 10_000);
    states.push(state);
    state = recordFailure({ now, state, sentRefreshToken: canaries.seed, kind: 'invalid_client', outcomeUnknown: false, message: 'Invalid client', clientSecretFingerprint: fingerprint(canaries.clientSecret), backoffMs });
    states.push(state);
    state = claimRefresh(state, 'replica-a', now + 1_000, 10_000);
    state = recordSuccess({
      now: now + 2_000,
      state,
      sentRefreshToken: canaries.seed,
      response: { accessToken: canaries.access, tokenType: 'Bearer', refreshToken: canaries.refresh, expiresInSeconds: 3600, scope: 'base', apiDomain: 'https://acme.pipedrive.com' },
      renewBeforeMs: undefined,
      clientSecretFingerprint: fingerprint(canaries.newClientSecret),
      random: () => 0.5,
    });
    states.push(state);
    state = claimRefresh(state, 'replica-b', now + 3_000, 10_000);
    states.push(state);
    state = recordStaleClaim(state, now + 120_000);
    states.push(state);
    state = recordFailure({ now, state, sentRefreshToken: canaries.refresh, kind: 'invalid_grant', outcomeUnknown: false, message: 'refresh_token is invalid', clientSecretFingerprint: fingerprint(canaries.newClientSecret), backoffMs });
    states.push(state);
    return states;
  }

  it('holds fingerprints of the secret values it compares, never the values', () => {
    for (const state of lifetime()) {
      const recordJSON = decodeData(encodeStateData(state))['record.json'] ?? '';
      for (const canary of Object.values(canaries)) expect(recordJSON).not.toContain(canary);
      expect(recordJSON).not.toContain('CANARY');
    }
    const last = lifetime().at(-1);
    expect(last?.record).toMatchObject({
      seedFingerprint: fingerprint(canaries.seed),
      deadRefreshTokenFingerprint: fingerprint(canaries.refresh),
      verifiedClientSecretFingerprint: fingerprint(canaries.newClientSecret),
    });
  });

  it('keeps the secret values only in their own keys of the state Secret', () => {
    const data = decodeData(stateSecret(app, operatorNamespace, lifetime().at(-1) ?? emptyState()).data);
    expect(data.refresh_token).toBe(canaries.refresh);
    expect(data.access_token).toBe(canaries.access);
    const elsewhere = Object.entries(data).filter(([key]) => key !== 'refresh_token' && key !== 'access_token');
    for (const [, value] of elsewhere) expect(value).not.toContain('CANARY');
  });

  it('never puts a secret value into the labels or annotations of the state Secret', () => {
    const { metadata } = stateSecret(app, operatorNamespace, lifetime().at(-1) ?? emptyState());
    expect(JSON.stringify(metadata)).not.toContain('CANARY');
  });
});
