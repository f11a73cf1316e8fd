// What a person reads in `kubectl get/describe oapp`: each condition's reason for each situation,
// the status fields, and never a secret value anywhere in them.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { ConditionInput } from '../../../src/api/conditions.ts';
import { deriveStatus, invalidSpecStatus, type ClientSecretLookup, type StatusInput } from '../../../src/oauthapp/status.ts';
import { recordSuccess } from '../../../src/oauthapp/policies.ts';
import { fingerprint, type AppState, type Bookkeeping, type FailureKind, type RefreshFailure } from '../../../src/oauthapp/state.ts';

const now = Date.parse('2030-01-01T12:00:00Z');
const minute = 60_000;
const hour = 60 * minute;
const iso = (ms: number) => new Date(ms).toISOString();

const canaries = {
  refreshToken: 'CANARY-refresh-token',
  accessToken: 'CANARY-access-token',
  clientSecret: 'CANARY-client-secret',
  newClientSecret: 'CANARY-new-client-secret',
};

const source = 'Secret sales/crm-sync-client key client_secret';
const found = (value = canaries.clientSecret): ClientSecretLookup => ({ found: true, value, source });
const missingProblem = `${source} does not exist`;
const missing: ClientSecretLookup = { found: false, source, problem: missingProblem };
const targetSecretName = 'crm-sync-credentials';
const authorizationURL = 'https://oauth.pipedrive.com/oauth/authorize?client_id=b4d083d9216986345b32&redirect_uri=https%3A%2F%2Fops.example.com%2Foauth%2Fcallback&state=signed';

const secretFP = fingerprint(canaries.clientSecret);
const deadMarker = { deadRefreshTokenFingerprint: fingerprint(canaries.refreshToken) };

const failure = (kind: FailureKind, overrides: Partial<RefreshFailure> = {}): RefreshFailure => ({
  kind,
  message: `the provider answered ${kind}`,
  at: iso(now - minute),
  attempts: 1,
  ...overrides,
});

/** A healthy app: refresh token, access token valid for an hour, client secret verified. */
const healthy = (record: Bookkeeping = {}, overrides: Partial<AppState> = {}): AppState => ({
  refreshToken: canaries.refreshToken,
  tokens: { accessToken: canaries.accessToken, tokenType: 'Bearer', expiresAt: iso(now + hour), scope: 'base', apiDomain: 'https://acme.pipedrive.com' },
  record: {
    issuedAt: iso(now - 10 * minute),
    lastRefreshTime: iso(now - 10 * minute),
    refreshAt: iso(now + 30 * minute),
    verifiedClientSecretFingerprint: secretFP,
    rotatesRefreshTokens: true,
    ...record,
  },
  ...overrides,
});

const derive = (state: AppState, input: Partial<StatusInput> = {}) =>
  deriveStatus({ now, state, clientSecret: found(), targetSecretName, authorizationURL, ...input });

const condition = (state: AppState, type: ConditionInput['type'], input: Partial<StatusInput> = {}) => {
  const match = derive(state, input).conditions.find((c) => c.type === type);
  if (!match) throw new Error(`no ${type} condition`);
  return match;
};

describe('the Ready condition', () => {
  it('is True with TokenValid while the access token is valid', () => {
    expect(condition(healthy(), 'Ready')).toMatchObject({ status: 'True', reason: 'TokenValid' });
    expect(condition(healthy(), 'Ready').message).toContain('2030-01-01T13:00:00Z');
  });

  it('is False with TokenExpired once the access token expired', () => {
    const state = healthy({}, { tokens: { accessToken: canaries.accessToken, tokenType: 'Bearer', expiresAt: iso(now) } });
    expect(condition(state, 'Ready')).toMatchObject({ status: 'False', reason: 'TokenExpired' });
  });

  it('is False with Pending while the first access token is on its way', () => {
    const state: AppState = { refreshToken: canaries.refreshToken, record: {} };
    expect(condition(state, 'Ready')).toMatchObject({ status: 'False', reason: 'Pending' });
  });

  it('says why the last refresh failed while pending', () => {
    const state: AppState = { refreshToken: canaries.refreshToken, record: { failure: failure('server_error', { retryAt: iso(now + minute) }) } };
    expect(condition(state, 'Ready').message).toContain('server_error');
  });

  const invalidGrant = { ...deadMarker, failure: failure('invalid_grant') };
  const refusedSecret = { failure: failure('invalid_client', { clientSecretFingerprint: secretFP }) };
  const personMustAct: Array<[string, Bookkeeping, Partial<StatusInput>, string]> = [
    ['a refused refresh token', invalidGrant, {}, 'NotAuthorized'],
    ['an interrupted refresh', { ...deadMarker, failure: failure('interrupted') }, {}, 'NotAuthorized'],
    ['a missing client secret', {}, { clientSecret: missing }, 'ClientSecretInvalid'],
    ['a refused client secret', refusedSecret, {}, 'ClientSecretInvalid'],
  ];

  it.each<[string, AppState, Partial<StatusInput>, string]>([
    ['no refresh token', { record: {} }, {}, 'NotAuthorized'],
    ...personMustAct.map(([what, record, input, reason]): [string, AppState, Partial<StatusInput>, string] => [what, { refreshToken: canaries.refreshToken, record }, input, reason]),
  ])('is False, naming the condition a person must fix, before the first access token: %s', (_what, state, input, reason) => {
    expect(condition(state, 'Ready', input)).toMatchObject({ status: 'False', reason });
  });

  it.each(personMustAct)('is False, naming the condition a person must fix, while the access token still works: %s', (_what, record, input, reason) => {
    const ready = condition(healthy(record), 'Ready', input);
    expect(ready).toMatchObject({ status: 'False', reason });
    expect(ready.message).toContain('the access token is valid until 2030-01-01T13:00:00Z');
  });

  it('says in its message what the person must do', () => {
    expect(condition(healthy(invalidGrant), 'Ready').message).toContain('re-authorize');
    expect(condition(healthy(refusedSecret), 'Ready').message).toContain("put the secret shown in the provider's developer portal into that Secret");
  });

  it('names the client secret first when both need a person: authorizing needs a working client secret', () => {
    expect(condition({ record: {} }, 'Ready', { clientSecret: missing })).toMatchObject({ status: 'False', reason: 'ClientSecretInvalid' });
  });

  it('is False with TokenExpired once the access token expired, even while a person must act', () => {
    const state = healthy(invalidGrant, { tokens: { accessToken: canaries.accessToken, tokenType: 'Bearer', expiresAt: iso(now) } });
    const ready = condition(state, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'TokenExpired' });
    expect(ready.message).toContain('re-authorize');
  });

  it('is False with TargetConflict when the target Secret belongs to something else, whatever else holds', () => {
    const targetConflict = 'Secret sales/crm-sync-credentials already exists and is not owned by this OAuthApp';
    expect(condition(healthy(), 'Ready', { targetConflict })).toEqual({ type: 'Ready', status: 'False', reason: 'TargetConflict', message: targetConflict });
    expect(condition({ record: {} }, 'Ready', { targetConflict, clientSecret: missing })).toMatchObject({ reason: 'TargetConflict' });
  });

  it('is False with ProviderNotAllowed when the admin does not allow the provider, even with a valid token', () => {
    const providerNotAllowed = 'the host "evil.example" of spec.tokenURL is not one this operator may send credentials to (--provider-hosts); ask its admin';
    expect(condition(healthy(), 'Ready', { providerNotAllowed })).toEqual({ type: 'Ready', status: 'False', reason: 'ProviderNotAllowed', message: providerNotAllowed });
    expect(condition({ record: {} }, 'Ready', { providerNotAllowed, authorizationURL: undefined })).toMatchObject({ status: 'False', reason: 'ProviderNotAllowed' });
  });
});

describe('the Authorized condition', () => {
  it('is True with RefreshTokenPresent while a usable refresh token is held', () => {
    expect(condition(healthy(), 'Authorized')).toMatchObject({ status: 'True', reason: 'RefreshTokenPresent' });
  });

  it('is False with AuthorizationRequired without a refresh token, pointing at the authorization URL', () => {
    const authorized = condition({ record: {} }, 'Authorized');
    expect(authorized).toMatchObject({ status: 'False', reason: 'AuthorizationRequired' });
    expect(authorized.message).toContain('status.authorizationURL');
  });

  it('is False with InvalidGrant when the provider refused the refresh token', () => {
    expect(condition(healthy({ ...deadMarker, failure: failure('invalid_grant') }), 'Authorized')).toMatchObject({ status: 'False', reason: 'InvalidGrant' });
  });

  it('is False with RefreshInterrupted when a refresh with a rotating provider may have consumed the token', () => {
    const authorized = condition(healthy({ ...deadMarker, failure: failure('interrupted', { message: 'a refresh was interrupted; re-authorize the app' }) }), 'Authorized');
    expect(authorized).toMatchObject({ status: 'False', reason: 'RefreshInterrupted' });
    expect(authorized.message).toContain('re-authorize');
  });

  it('is True again once a new refresh token replaces the dead one', () => {
    const state = healthy({ ...deadMarker, failure: failure('invalid_grant') }, { refreshToken: 'CANARY-seed' });
    expect(condition(state, 'Authorized')).toMatchObject({ status: 'True', reason: 'RefreshTokenPresent' });
  });
});

describe('the ClientSecretValid condition', () => {
  it('is True with Verified when the provider accepted this client secret', () => {
    expect(condition(healthy(), 'ClientSecretValid')).toMatchObject({ status: 'True', reason: 'Verified' });
  });

  it('is Unknown with NotVerified for a client secret not used with the provider yet', () => {
    expect(condition(healthy(), 'ClientSecretValid', { clientSecret: found(canaries.newClientSecret) })).toMatchObject({ status: 'Unknown', reason: 'NotVerified' });
  });

  it('is False with SecretNotFound, with the lookup problem as its message, when the Secret cannot be read', () => {
    expect(condition(healthy(), 'ClientSecretValid', { clientSecret: missing })).toEqual({
      type: 'ClientSecretValid',
      status: 'False',
      reason: 'SecretNotFound',
      message: missingProblem,
    });
  });

  it('is False with InvalidClient while the refused client secret is still in place', () => {
    const state = healthy({ failure: failure('invalid_client', { clientSecretFingerprint: secretFP }) });
    const valid = condition(state, 'ClientSecretValid');
    expect(valid).toMatchObject({ status: 'False', reason: 'InvalidClient' });
    expect(valid.message).toContain(source);
  });

  it('is False with InvalidClient, quoting the provider, when the operator’s check of this secret was refused', () => {
    const state = healthy({ rejectedClientSecret: { fingerprint: fingerprint(canaries.newClientSecret), at: iso(now), description: 'Invalid client' } });
    const valid = condition(state, 'ClientSecretValid', { clientSecret: found(canaries.newClientSecret) });
    expect(valid).toMatchObject({ status: 'False', reason: 'InvalidClient' });
    expect(valid.message).toContain('when the operator checked it (invalid_client) (the provider said: "Invalid client")');
    expect(condition(state, 'Ready', { clientSecret: found(canaries.newClientSecret) })).toMatchObject({ status: 'False', reason: 'ClientSecretInvalid' });
  });

  it('leaves InvalidClient as soon as the Secret holds a different client secret', () => {
    const state = healthy({ failure: failure('invalid_client', { clientSecretFingerprint: secretFP }) });
    expect(condition(state, 'ClientSecretValid', { clientSecret: found(canaries.newClientSecret) })).toMatchObject({ status: 'Unknown', reason: 'NotVerified' });
  });
});

describe('the status fields', () => {
  it('name the target Secret, the access token expiry and the last and next refresh in RFC 3339 UTC', () => {
    expect(derive(healthy()).fields).toEqual({
      targetSecretName,
      accessTokenExpiresAt: '2030-01-01T13:00:00Z',
      lastRefreshTime: '2030-01-01T11:50:00Z',
      nextRefreshTime: '2030-01-01T12:30:00Z',
    });
  });

  it('show a backoff as the next refresh time', () => {
    const state = healthy({ failure: failure('server_error', { retryAt: iso(now + 2 * minute) }) });
    expect(derive(state).fields.nextRefreshTime).toBe('2030-01-01T12:02:00Z');
  });

  it.each<[string, AppState, Partial<StatusInput>]>([
    ['authorization is required', { record: { refreshAt: iso(now + minute) } }, {}],
    ['the refresh token was refused', healthy({ ...deadMarker, failure: failure('invalid_grant') }), {}],
    ['the client secret was refused', healthy({ failure: failure('invalid_client', { clientSecretFingerprint: secretFP }) }), {}],
    ['the client secret cannot be read', healthy(), { clientSecret: missing }],
  ])('omit nextRefreshTime while a person must act: %s', (_what, state, input) => {
    expect(derive(state, input).fields).not.toHaveProperty('nextRefreshTime');
  });

  it('carry the authorization URL while Authorized is False', () => {
    expect(derive({ record: {} }).fields.authorizationURL).toBe(authorizationURL);
    expect(derive(healthy({ ...deadMarker, failure: failure('invalid_grant') })).fields.authorizationURL).toBe(authorizationURL);
  });

  it('say why there is no authorization URL when the provider is not allowed, and no next refresh', () => {
    const derived = derive({ record: {} }, { providerNotAllowed: 'not allowed here', authorizationURL: undefined });
    expect(derived.conditions.find((c) => c.type === 'Authorized')).toMatchObject({ status: 'False', reason: 'ProviderNotAllowed' });
    expect(derived.fields).not.toHaveProperty('authorizationURL');
    expect(derive(healthy(), { providerNotAllowed: 'not allowed here' }).fields).not.toHaveProperty('nextRefreshTime');
  });

  it('carry no authorization URL while Authorized is True', () => {
    expect(derive(healthy()).fields).not.toHaveProperty('authorizationURL');
    expect(derive(healthy(), { clientSecret: missing }).fields).not.toHaveProperty('authorizationURL');
  });

  it('echo the last rotate request acted on', () => {
    expect(derive(healthy(), { lastRotateRequest: '1893499200' }).fields.lastRotateRequest).toBe('1893499200');
  });
});

describe('status.lastFailure', () => {
  it('names the last failed token request: its reason, when it ended, and how many in a row failed so', () => {
    const state = healthy({ failure: failure('server_error', { attempts: 3, at: '2030-01-01T11:59:00.250Z', retryAt: iso(now + minute) }) });
    expect(derive(state).fields.lastFailure).toEqual({ reason: 'ServerError', time: '2030-01-01T11:59:00Z', attempts: 3 });
  });

  it.each<[FailureKind, string]>([
    ['invalid_grant', 'InvalidGrant'],
    ['invalid_client', 'InvalidClient'],
    ['rate_limited', 'RateLimited'],
    ['server_error', 'ServerError'],
    ['timeout', 'Timeout'],
    ['network', 'NetworkError'],
    ['malformed_response', 'MalformedResponse'],
    ['rejected', 'Rejected'],
    ['interrupted', 'RefreshInterrupted'],
  ])('gives %s the reason %s', (kind, reason) => {
    expect(derive(healthy({ failure: failure(kind) })).fields.lastFailure?.reason).toBe(reason);
  });

  it('is cleared by the next successful token request, as cert-manager clears lastFailureTime', () => {
    const failed = healthy({ failure: failure('timeout', { attempts: 2, retryAt: iso(now) }) });
    const succeeded = recordSuccess({
      now,
      state: failed,
      sentRefreshToken: canaries.refreshToken,
      response: { accessToken: canaries.accessToken, tokenType: 'Bearer', expiresInSeconds: 3600 },
      renewBeforeMs: undefined,
      clientSecretFingerprint: secretFP,
      random: () => 0.5,
    });
    expect(derive(failed).fields).toHaveProperty('lastFailure');
    expect(derive(succeeded).fields).not.toHaveProperty('lastFailure');
  });
});

describe("the provider's description of a failure", () => {
  const said = 'the provider said: "refresh token revoked by the user"';
  const description = 'refresh token revoked by the user';

  it('is quoted in Authorized\'s message after invalid_grant', () => {
    expect(condition(healthy({ ...deadMarker, failure: failure('invalid_grant', { description }) }), 'Authorized').message).toContain(said);
  });

  it("is quoted in ClientSecretValid's message after invalid_client", () => {
    const state = healthy({ failure: failure('invalid_client', { clientSecretFingerprint: secretFP, description }) });
    expect(condition(state, 'ClientSecretValid').message).toContain(said);
  });

  it("is quoted in Ready's message after any other failure", () => {
    expect(condition(healthy({ failure: failure('rejected', { description, retryAt: iso(now + minute) }) }), 'Ready').message).toContain(said);
  });
});

describe('invalidSpecStatus', () => {
  it('reports InvalidSpec: Ready False, the others Unknown, with no fields', () => {
    const message = 'spec.tokenURL: must be an https:// URL';
    const status = invalidSpecStatus(message);
    expect(status.conditions).toEqual([
      { type: 'Ready', status: 'False', reason: 'InvalidSpec', message },
      { type: 'Authorized', status: 'Unknown', reason: 'InvalidSpec', message },
      { type: 'ClientSecretValid', status: 'Unknown', reason: 'InvalidSpec', message },
    ]);
    expect(status.fields).toEqual({});
  });
});

// Every combination of the situations above, for what must hold in all of them.
const failureKinds: FailureKind[] = ['invalid_grant', 'invalid_client', 'rate_limited', 'server_error', 'timeout', 'network', 'malformed_response', 'rejected', 'interrupted'];

const scenario = fc.record({
  refreshToken: fc.constantFrom('none', 'usable', 'dead'),
  tokens: fc.constantFrom('none', 'valid', 'expired'),
  failure: fc.option(
    fc.record({
      kind: fc.constantFrom(...failureKinds),
      retryAt: fc.option(fc.integer({ min: -hour, max: hour }), { nil: undefined }),
      refusedSecret: fc.constantFrom(canaries.clientSecret, canaries.newClientSecret),
    }),
    { nil: undefined },
  ),
  verified: fc.constantFrom(undefined, canaries.clientSecret, canaries.newClientSecret),
  clientSecret: fc.constantFrom<ClientSecretLookup>(found(), found(canaries.newClientSecret), missing),
  refreshAt: fc.option(fc.integer({ min: -hour, max: hour }), { nil: undefined }),
  targetConflict: fc.constantFrom(undefined, 'Secret sales/crm-sync-credentials already exists and is not owned by this OAuthApp'),
  authorizationURL: fc.constantFrom(undefined, authorizationURL),
  lastRotateRequest: fc.constantFrom(undefined, '1893499200'),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function input(s: Scenario): StatusInput {
  const record: Bookkeeping = {
    ...(s.refreshToken === 'dead' ? deadMarker : {}),
    ...(s.verified ? { verifiedClientSecretFingerprint: fingerprint(s.verified) } : {}),
    ...(s.refreshAt !== undefined ? { refreshAt: iso(now + s.refreshAt), lastRefreshTime: iso(now - hour) } : {}),
    ...(s.failure
      ? {
          failure: failure(s.failure.kind, {
            clientSecretFingerprint: fingerprint(s.failure.refusedSecret),
            ...(s.failure.retryAt !== undefined ? { retryAt: iso(now + s.failure.retryAt) } : {}),
          }),
        }
      : {}),
  };
  const state: AppState = {
    ...(s.refreshToken !== 'none' ? { refreshToken: canaries.refreshToken } : {}),
    ...(s.tokens !== 'none'
      ? { tokens: { accessToken: canaries.accessToken, tokenType: 'Bearer', expiresAt: iso(s.tokens === 'valid' ? now + hour : now - minute), scope: 'base' } }
      : {}),
    record,
  };
  return {
    now,
    state,
    clientSecret: s.clientSecret,
    targetSecretName,
    ...(s.targetConflict ? { targetConflict: s.targetConflict } : {}),
    ...(s.authorizationURL ? { authorizationURL: s.authorizationURL } : {}),
    ...(s.lastRotateRequest ? { lastRotateRequest: s.lastRotateRequest } : {}),
  };
}

describe('in every situation', () => {
  it('no condition message or status field contains a secret value', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const derived = JSON.stringify(deriveStatus(input(s)));
        for (const canary of Object.values(canaries)) expect(derived).not.toContain(canary);
        expect(derived).not.toContain('CANARY');
      }),
      { numRuns: 500 },
    );
  });

  it('nextRefreshTime is omitted exactly when Authorized or ClientSecretValid is False', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { conditions, fields } = deriveStatus(input(s));
        const personMustAct = conditions.some((c) => (c.type === 'Authorized' || c.type === 'ClientSecretValid') && c.status === 'False');
        if (personMustAct) expect(fields).not.toHaveProperty('nextRefreshTime');
        else if (s.refreshAt !== undefined || s.failure?.retryAt !== undefined) expect(fields).toHaveProperty('nextRefreshTime');
      }),
      { numRuns: 500 },
    );
  });

  it('Ready is False whenever Authorized or ClientSecretValid is False', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { conditions } = deriveStatus(input(s));
        const personMustAct = conditions.some((c) => (c.type === 'Authorized' || c.type === 'ClientSecretValid') && c.status === 'False');
        if (personMustAct) expect(conditions.find((c) => c.type === 'Ready')?.status).toBe('False');
      }),
      { numRuns: 500 },
    );
  });

  it('authorizationURL is present exactly when Authorized is False and a URL is known', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { conditions, fields } = deriveStatus(input(s));
        const notAuthorized = conditions.find((c) => c.type === 'Authorized')?.status === 'False';
        expect(fields.authorizationURL).toBe(notAuthorized && s.authorizationURL ? s.authorizationURL : undefined);
      }),
      { numRuns: 500 },
    );
  });

  it('yields the three conditions, each with a reason and a message', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { conditions } = deriveStatus(input(s));
        expect(conditions.map((c) => c.type)).toEqual(['Ready', 'Authorized', 'ClientSecretValid']);
        for (const c of conditions) {
          expect(c.reason).toMatch(/^[A-Z][A-Za-z]+$/);
          expect(c.message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('writes every time field in RFC 3339 UTC to the second', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { fields } = deriveStatus(input(s));
        for (const value of [fields.accessTokenExpiresAt, fields.lastRefreshTime, fields.nextRefreshTime, fields.lastFailure?.time]) {
          if (value !== undefined) expect(value).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
        }
      }),
      { numRuns: 500 },
    );
  });
});
