// The pure decisions about token requests: whether to refresh now, and what a failure or a
// success means for the stored state. Time is a number passed in; nothing here reads a clock.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  claimRefresh,
  clientSecretUnchecked,
  decideRefresh,
  mayResendAfterUnknownOutcome,
  recordClientCheck,
  recordFailure,
  recordInstall,
  recordStaleClaim,
  recordSuccess,
  recordUninstall,
  rememberClientSecret,
  seedRefreshToken,
  type FailureInput,
  type SuccessInput,
  type TokenResponse,
} from '../../../src/oauthapp/policies.ts';
import { fingerprint, type AppState, type Bookkeeping, type FailureKind, type RefreshClaim, type Tokens } from '../../../src/oauthapp/state.ts';

const now = Date.parse('2030-01-01T12:00:00Z');
const second = 1_000;
const minute = 60 * second;
const hour = 60 * minute;
const iso = (ms: number) => new Date(ms).toISOString();

const clientSecret = 'client-secret-one';
const newClientSecret = 'client-secret-two';
const secretFP = fingerprint(clientSecret);
const newSecretFP = fingerprint(newClientSecret);

const tokens = (expiresAt = now + hour): Tokens => ({
  accessToken: 'access-one',
  tokenType: 'Bearer',
  expiresAt: iso(expiresAt),
  scope: 'base,deals:full',
  apiDomain: 'https://acme.pipedrive.com',
});

/** An app that holds a refresh token and a valid access token, with the given bookkeeping. */
const held = (record: Bookkeeping = {}, overrides: Partial<AppState> = {}): AppState => ({
  refreshToken: 'refresh-one',
  tokens: tokens(),
  record: { refreshAt: iso(now + 30 * minute), ...record },
  ...overrides,
});

const decide = (state: AppState, options: { rotateRequested?: boolean; clientSecretFingerprint?: string | undefined } = {}) =>
  decideRefresh({
    now,
    state,
    clientSecretFingerprint: 'clientSecretFingerprint' in options ? options.clientSecretFingerprint : secretFP,
    rotateRequested: options.rotateRequested ?? false,
  });

const claim = (expiresAt: number, holder = 'replica-b'): RefreshClaim => ({
  holder,
  refreshTokenFingerprint: fingerprint('refresh-one'),
  claimedAt: iso(expiresAt - minute),
  expiresAt: iso(expiresAt),
});

describe('decideRefresh', () => {
  it('is blocked while the client secret cannot be read', () => {
    expect(decide(held(), { clientSecretFingerprint: undefined })).toEqual({ action: 'blocked', reason: 'client-secret-missing' });
  });

  it('is blocked without a refresh token', () => {
    expect(decide({ record: {} })).toEqual({ action: 'blocked', reason: 'no-refresh-token' });
  });

  it('is blocked when the refresh token is known to be dead', () => {
    expect(decide(held({ deadRefreshTokenFingerprint: fingerprint('refresh-one') }), { rotateRequested: true })).toEqual({
      action: 'blocked',
      reason: 'refresh-token-dead',
    });
  });

  it.each(['replica-a', 'replica-b'])('waits for a live claim held by %s until it expires', (holder) => {
    const until = now + 10 * second;
    expect(decide(held({ claim: claim(until, holder) }), { rotateRequested: true })).toEqual({ action: 'wait', until, reason: 'claimed-elsewhere' });
  });

  it('asks for the stale claim to be resolved once the claim has expired', () => {
    const stale = claim(now);
    expect(decide(held({ claim: stale }))).toEqual({ action: 'resolve-stale-claim', claim: stale });
  });

  it('honours a 429 Retry-After even when a rotation is requested and the secret changed', () => {
    const retryAt = now + 2 * minute;
    const state = held({ failure: { kind: 'rate_limited', message: '429', at: iso(now), attempts: 1, retryAt: iso(retryAt), clientSecretFingerprint: secretFP } });
    expect(decide(state, { rotateRequested: true, clientSecretFingerprint: newSecretFP })).toEqual({ action: 'wait', until: retryAt, reason: 'retry-after' });
  });

  it('lets a rotation request cut a 5xx backoff short', () => {
    const state = held({ failure: { kind: 'server_error', message: '503', at: iso(now), attempts: 3, retryAt: iso(now + 5 * minute), clientSecretFingerprint: secretFP } });
    expect(decide(state, { rotateRequested: true })).toEqual({ action: 'refresh', reason: 'rotate-request' });
  });

  it('refreshes on a rotation request even when the token is not due', () => {
    expect(decide(held(), { rotateRequested: true })).toEqual({ action: 'refresh', reason: 'rotate-request' });
  });

  it('backs off after invalid_client while the client secret is unchanged', () => {
    const retryAt = now + minute;
    const state = held({ failure: { kind: 'invalid_client', message: 'Invalid client', at: iso(now), attempts: 1, retryAt: iso(retryAt), clientSecretFingerprint: secretFP } });
    expect(decide(state)).toEqual({ action: 'wait', until: retryAt, reason: 'backoff' });
  });

  it('refreshes after invalid_client as soon as the client secret changes', () => {
    const state = held({ failure: { kind: 'invalid_client', message: 'Invalid client', at: iso(now), attempts: 1, retryAt: iso(now + minute), clientSecretFingerprint: secretFP } });
    expect(decide(state, { clientSecretFingerprint: newSecretFP })).toEqual({ action: 'refresh', reason: 'client-secret-changed' });
  });

  it('retries invalid_client with the same secret once the backoff has passed, in case the portal caught up', () => {
    const state = held({ failure: { kind: 'invalid_client', message: 'Invalid client', at: iso(now - minute), attempts: 1, retryAt: iso(now - 1), clientSecretFingerprint: secretFP } });
    expect(decide(state)).toEqual({ action: 'refresh', reason: 'retry' });
  });

  it('lets a changed client secret cut a backoff short', () => {
    const state = held({ failure: { kind: 'server_error', message: '502', at: iso(now), attempts: 2, retryAt: iso(now + minute), clientSecretFingerprint: secretFP } });
    expect(decide(state, { clientSecretFingerprint: newSecretFP })).toEqual({ action: 'refresh', reason: 'client-secret-changed' });
  });

  it('waits out a backoff while nothing changed', () => {
    const retryAt = now + minute;
    const state = held({ failure: { kind: 'timeout', message: 'timed out', at: iso(now), attempts: 2, retryAt: iso(retryAt), clientSecretFingerprint: secretFP } });
    expect(decide(state)).toEqual({ action: 'wait', until: retryAt, reason: 'backoff' });
  });

  it('retries once a backoff has passed', () => {
    const state = held({ failure: { kind: 'timeout', message: 'timed out', at: iso(now - minute), attempts: 2, retryAt: iso(now - 1), clientSecretFingerprint: secretFP } });
    expect(decide(state)).toEqual({ action: 'refresh', reason: 'retry' });
  });

  it('makes the initial refresh when it holds a refresh token but no access token', () => {
    expect(decide({ refreshToken: 'refresh-one', record: {} })).toEqual({ action: 'refresh', reason: 'initial' });
  });

  it.each([
    ['in the past', now - 1],
    ['now', now],
  ])('refreshes when refreshAt is %s', (_when, refreshAt) => {
    expect(decide(held({ refreshAt: iso(refreshAt) }))).toEqual({ action: 'refresh', reason: 'due' });
  });

  it('waits until refreshAt when it is in the future', () => {
    const refreshAt = now + 20 * minute;
    expect(decide(held({ refreshAt: iso(refreshAt) }))).toEqual({ action: 'wait', until: refreshAt, reason: 'scheduled' });
  });
});

const failure = (overrides: Partial<FailureInput> = {}): FailureInput => ({
  now,
  state: held(),
  sentRefreshToken: 'refresh-one',
  kind: 'server_error',
  outcomeUnknown: false,
  message: 'the provider answered 503',
  clientSecretFingerprint: secretFP,
  backoffMs: (attempt) => 10 * second * 2 ** (attempt - 1),
  ...overrides,
});

describe('recordFailure', () => {
  it('marks the sent refresh token dead on invalid_grant and keeps the tokens', () => {
    const before = held();
    const after = recordFailure(failure({ state: before, kind: 'invalid_grant', message: 'refresh_token is invalid' }));
    expect(after.record.deadRefreshTokenFingerprint).toBe(fingerprint('refresh-one'));
    expect(after.record.failure).toMatchObject({ kind: 'invalid_grant', message: 'refresh_token is invalid' });
    expect(after.refreshToken).toBe(before.refreshToken);
    expect(after.tokens).toEqual(before.tokens);
  });

  it('does not block a newer refresh token when an older one is refused', () => {
    const state = held({}, { refreshToken: 'refresh-two' });
    const after = recordFailure(failure({ state, sentRefreshToken: 'refresh-one', kind: 'invalid_grant' }));
    expect(decideRefresh({ now, state: after, clientSecretFingerprint: secretFP, rotateRequested: true })).toEqual({ action: 'refresh', reason: 'rotate-request' });
  });

  it.each([
    ['rotates refresh tokens', true],
    ['may rotate refresh tokens (not known yet)', undefined],
  ])('gives up the sent token after an unknown outcome with a provider that %s', (_what, rotatesRefreshTokens) => {
    const state = held(rotatesRefreshTokens === undefined ? {} : { rotatesRefreshTokens });
    const after = recordFailure(failure({ state, kind: 'timeout', outcomeUnknown: true, message: 'no answer within 10s' }));
    expect(after.record.failure).toMatchObject({ kind: 'interrupted', attempts: 1 });
    expect(after.record.deadRefreshTokenFingerprint).toBe(fingerprint('refresh-one'));
    expect(decideRefresh({ now, state: after, clientSecretFingerprint: secretFP, rotateRequested: true })).toEqual({ action: 'blocked', reason: 'refresh-token-dead' });
  });

  it('backs off and retries after an unknown outcome when the provider keeps refresh tokens', () => {
    const state = held({ rotatesRefreshTokens: false });
    const after = recordFailure(failure({ state, kind: 'timeout', outcomeUnknown: true }));
    expect(after.record.deadRefreshTokenFingerprint).toBeUndefined();
    expect(after.record.failure).toMatchObject({ kind: 'timeout', attempts: 1, retryAt: iso(now + 10 * second) });
  });

  it('waits as long as a 429 Retry-After asks', () => {
    const after = recordFailure(failure({ kind: 'rate_limited', retryAfterMs: 90 * second }));
    expect(after.record.failure).toMatchObject({ kind: 'rate_limited', retryAt: iso(now + 90 * second) });
  });

  it('waits a minute after a 429 without Retry-After', () => {
    const after = recordFailure(failure({ kind: 'rate_limited' }));
    expect(after.record.failure?.retryAt).toBe(iso(now + minute));
  });

  it('backs off a 5xx as the backoff says while the access token outlives it', () => {
    const after = recordFailure(failure({ state: held({ failure: { kind: 'server_error', message: '503', at: iso(now), attempts: 2 } }) }));
    expect(after.record.failure).toMatchObject({ attempts: 3, retryAt: iso(now + 40 * second) });
  });

  it('never backs off a 5xx past the access token expiry', () => {
    const expiresAt = now + 30 * second;
    const after = recordFailure(failure({ state: held({}, { tokens: tokens(expiresAt) }), backoffMs: () => 5 * minute }));
    expect(after.record.failure?.retryAt).toBe(iso(expiresAt));
  });

  it('counts consecutive failures of the same kind', () => {
    const attempts: number[] = [];
    let state = held();
    for (let i = 0; i < 3; i++) {
      state = recordFailure(failure({ state, backoffMs: (attempt) => (attempts.push(attempt), second) }));
    }
    expect(attempts).toEqual([1, 2, 3]);
    expect(state.record.failure?.attempts).toBe(3);
  });

  it('starts counting again when the kind of failure changes', () => {
    const state = held({ failure: { kind: 'server_error', message: '503', at: iso(now), attempts: 4 } });
    expect(recordFailure(failure({ state, kind: 'network' })).record.failure?.attempts).toBe(1);
  });

  it('remembers the client secret that invalid_client refused, and backs off', () => {
    const after = recordFailure(failure({ kind: 'invalid_client', message: 'Invalid client' }));
    expect(after.record.failure).toMatchObject({ kind: 'invalid_client', clientSecretFingerprint: secretFP, retryAt: iso(now + 10 * second) });
    expect(after.record.deadRefreshTokenFingerprint).toBeUndefined();
  });

  it('never removes the tokens or the refresh token', () => {
    const kinds: Exclude<FailureKind, 'interrupted'>[] = ['invalid_grant', 'invalid_client', 'rate_limited', 'server_error', 'timeout', 'network', 'malformed_response', 'rejected'];
    fc.assert(
      fc.property(fc.constantFrom(...kinds), fc.boolean(), fc.constantFrom(true, false, undefined), (kind, outcomeUnknown, rotates) => {
        const before = held(rotates === undefined ? {} : { rotatesRefreshTokens: rotates });
        const after = recordFailure(failure({ state: before, kind, outcomeUnknown }));
        expect(after.refreshToken).toBe(before.refreshToken);
        expect(after.tokens).toEqual(before.tokens);
      }),
    );
  });

  it.each<Exclude<FailureKind, 'interrupted'>>(['invalid_grant', 'invalid_client', 'server_error'])("keeps the provider's description of a %s failure", (kind) => {
    expect(recordFailure(failure({ kind, description: 'the app was uninstalled' })).record.failure?.description).toBe('the app was uninstalled');
  });

  it('clears the claim', () => {
    const after = recordFailure(failure({ state: held({ claim: claim(now + minute, 'me') }) }));
    expect(after.record.claim).toBeUndefined();
  });
});

const response = (overrides: Partial<TokenResponse> = {}): TokenResponse => ({
  accessToken: 'access-two',
  tokenType: 'Bearer',
  refreshToken: 'refresh-two',
  expiresInSeconds: 3600,
  scope: 'base,deals:full',
  apiDomain: 'https://acme.pipedrive.com',
  ...overrides,
});

const success = (overrides: Partial<SuccessInput> = {}): SuccessInput => ({
  now,
  state: held(),
  sentRefreshToken: 'refresh-one',
  response: response(),
  renewBeforeMs: undefined,
  clientSecretFingerprint: secretFP,
  random: () => 0.5,
  ...overrides,
});

describe('recordSuccess', () => {
  it('stores a rotated refresh token', () => {
    expect(recordSuccess(success()).refreshToken).toBe('refresh-two');
  });

  it('keeps the sent refresh token when the response has none', () => {
    const { refreshToken: _none, ...withoutRefreshToken } = response();
    expect(recordSuccess(success({ response: withoutRefreshToken })).refreshToken).toBe('refresh-one');
  });

  it('stores the new access token with its expiry from expires_in', () => {
    expect(recordSuccess(success({ response: response({ expiresInSeconds: 1800 }) })).tokens).toEqual({
      accessToken: 'access-two',
      tokenType: 'Bearer',
      expiresAt: iso(now + 30 * minute),
      scope: 'base,deals:full',
      apiDomain: 'https://acme.pipedrive.com',
    });
  });

  it.each([
    ['a new refresh token', 'refresh-two', true],
    ['the same refresh token', 'refresh-one', false],
    ['no refresh token', undefined, false],
  ])('learns from %s whether the provider rotates refresh tokens', (_what, returned, rotates) => {
    const { refreshToken: _sent, ...bare } = response();
    const answer = returned === undefined ? bare : { ...bare, refreshToken: returned };
    expect(recordSuccess(success({ response: answer })).record.rotatesRefreshTokens).toBe(rotates);
  });

  it('learns nothing about rotation from an authorization-code exchange', () => {
    const after = recordSuccess(success({ state: { record: { rotatesRefreshTokens: false } }, sentRefreshToken: undefined }));
    expect(after.record.rotatesRefreshTokens).toBe(false);
    expect(recordSuccess(success({ state: { record: {} }, sentRefreshToken: undefined })).record.rotatesRefreshTokens).toBeUndefined();
  });

  it('keeps a usable stored refresh token after an authorization-code exchange without one', () => {
    const { refreshToken: _none, ...bare } = response();
    expect(recordSuccess(success({ sentRefreshToken: undefined, response: bare })).refreshToken).toBe('refresh-one');
  });

  it.each(['invalid_grant', 'interrupted'] as const)('does not revive a refresh token that died (%s) when a code exchange brings none', (kind) => {
    const deadState = held({ deadRefreshTokenFingerprint: fingerprint('refresh-one'), failure: { kind, message: 'dead', at: iso(now - hour), attempts: 1 } });
    const { refreshToken: _none, ...bare } = response();
    const after = recordSuccess(success({ state: deadState, sentRefreshToken: undefined, response: bare }));
    expect(after.tokens?.accessToken).toBe('access-two');
    // The dead value is never sent again: with no usable refresh token, a person must authorize.
    expect(decideRefresh({ now: now + 2 * hour, state: after, clientSecretFingerprint: secretFP, rotateRequested: true })).toMatchObject({ action: 'blocked' });
  });

  it('keeps the previous scope and api_domain when the response lacks them', () => {
    const { scope: _scope, apiDomain: _apiDomain, ...bare } = response();
    const after = recordSuccess(success({ response: bare }));
    expect(after.tokens).toMatchObject({ scope: 'base,deals:full', apiDomain: 'https://acme.pipedrive.com' });
  });

  it('takes the newest api_domain', () => {
    const after = recordSuccess(success({ response: response({ apiDomain: 'https://acme-eu.pipedrive.com' }) }));
    expect(after.tokens?.apiDomain).toBe('https://acme-eu.pipedrive.com');
  });

  it('clears the failure, the claim and the dead-token marker', () => {
    const state = held({
      claim: claim(now + minute, 'me'),
      failure: { kind: 'server_error', message: '503', at: iso(now - minute), attempts: 2, retryAt: iso(now - 1) },
      deadRefreshTokenFingerprint: fingerprint('refresh-zero'),
    });
    const { record } = recordSuccess(success({ state }));
    expect(record.claim).toBeUndefined();
    expect(record.failure).toBeUndefined();
    expect(record.deadRefreshTokenFingerprint).toBeUndefined();
  });

  it('records the refresh and the client secret it succeeded with', () => {
    const { record } = recordSuccess(success({ clientSecretFingerprint: newSecretFP }));
    expect(record).toMatchObject({ issuedAt: iso(now), lastRefreshTime: iso(now), verifiedClientSecretFingerprint: newSecretFP });
  });

  it('schedules the next refresh from the token lifetime, before the renewal point', () => {
    fc.assert(
      fc.property(fc.integer({ min: 60, max: 86_400 }), fc.option(fc.integer({ min: 1, max: 3 * hour }), { nil: undefined }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (expiresIn, renewBeforeMs, random) => {
        const after = recordSuccess(success({ response: response({ expiresInSeconds: expiresIn }), renewBeforeMs, random: () => random }));
        const refreshAt = Date.parse(after.record.refreshAt ?? '');
        const expiresAt = now + expiresIn * second;
        const margin = renewBeforeMs !== undefined && renewBeforeMs < expiresIn * second ? renewBeforeMs : (expiresIn * second) / 3;
        expect(refreshAt).toBeGreaterThanOrEqual(now);
        expect(refreshAt).toBeLessThanOrEqual(expiresAt - margin + 1); // +1: toISOString rounds to the millisecond
      }),
    );
  });
});

describe('recordClientCheck', () => {
  const checked = fingerprint('new-client-secret');
  const base: AppState = { refreshToken: 'rt', record: { verifiedClientSecretFingerprint: fingerprint('old-client-secret'), refreshAt: '2030-01-01T12:30:00.000Z' } };

  it('marks an accepted secret verified and touches nothing else', () => {
    const after = recordClientCheck(base, checked, { verdict: 'accepted' }, 0);
    expect(after).toEqual({ ...base, record: { ...base.record, verifiedClientSecretFingerprint: checked } });
  });

  it('records a rejected secret with what the provider said, and keeps the grant and the schedule', () => {
    const after = recordClientCheck(base, checked, { verdict: 'rejected', description: 'Invalid client' }, Date.parse('2030-01-01T12:00:00Z'));
    expect(after.record.rejectedClientSecret).toEqual({ fingerprint: checked, at: '2030-01-01T12:00:00.000Z', description: 'Invalid client' });
    expect(after.refreshToken).toBe('rt');
    expect(after.record.refreshAt).toBe(base.record.refreshAt);
    expect(clientSecretUnchecked(after, checked)).toBe(false);
  });

  it('forgets a rejection once a later check accepts, and a successful refresh forgets it too', () => {
    const rejected = recordClientCheck(base, checked, { verdict: 'rejected' }, 0);
    expect(recordClientCheck(rejected, checked, { verdict: 'accepted' }, 0).record.rejectedClientSecret).toBeUndefined();
    const refreshed = recordSuccess(success({ state: recordClientCheck(held(), checked, { verdict: 'rejected' }, 0), clientSecretFingerprint: checked }));
    expect(refreshed.record.rejectedClientSecret).toBeUndefined();
    expect(refreshed.record.verifiedClientSecretFingerprint).toBe(checked);
  });

  it('asks for a check only for a secret with no verdict from a check or a refresh', () => {
    expect(clientSecretUnchecked(base, fingerprint('old-client-secret'))).toBe(false);
    expect(clientSecretUnchecked(base, checked)).toBe(true);
    const refused: AppState = { ...base, record: { ...base.record, failure: { kind: 'invalid_client', message: 'refused', at: '2030-01-01T12:00:00.000Z', attempts: 1, clientSecretFingerprint: checked } } };
    expect(clientSecretUnchecked(refused, checked)).toBe(false);
  });
});

describe('recordStaleClaim', () => {
  it('only drops the claim when the provider keeps refresh tokens, so the token may be sent again', () => {
    const state = held({ rotatesRefreshTokens: false, claim: claim(now - 1) });
    const after = recordStaleClaim(state, now);
    expect(after.record.claim).toBeUndefined();
    expect(after.record.deadRefreshTokenFingerprint).toBeUndefined();
    expect(after.record.failure).toBeUndefined();
    expect(decideRefresh({ now, state: after, clientSecretFingerprint: secretFP, rotateRequested: true })).toEqual({ action: 'refresh', reason: 'rotate-request' });
  });

  it.each([true, undefined])('gives up the claimed token as interrupted when rotatesRefreshTokens is %s', (rotatesRefreshTokens) => {
    const state = held({ ...(rotatesRefreshTokens === undefined ? {} : { rotatesRefreshTokens }), claim: claim(now - 1) });
    const after = recordStaleClaim(state, now);
    expect(after.record.claim).toBeUndefined();
    expect(after.record.deadRefreshTokenFingerprint).toBe(fingerprint('refresh-one'));
    expect(after.record.failure).toMatchObject({ kind: 'interrupted', at: iso(now) });
    expect(after.refreshToken).toBe('refresh-one');
    expect(after.tokens).toEqual(state.tokens);
  });

  it('leaves a state without a claim as it is', () => {
    const state = held();
    expect(recordStaleClaim(state, now)).toBe(state);
  });
});

describe('mayResendAfterUnknownOutcome', () => {
  it.each([
    [false, true],
    [true, false],
    [undefined, false],
  ])('with rotatesRefreshTokens %s is %s', (rotatesRefreshTokens, may) => {
    expect(mayResendAfterUnknownOutcome(rotatesRefreshTokens === undefined ? {} : { rotatesRefreshTokens })).toBe(may);
  });
});

describe('claimRefresh', () => {
  it('claims the current refresh token for its holder', () => {
    const after = claimRefresh(held(), 'replica-a', now, 10 * second);
    expect(after.record.claim).toMatchObject({ holder: 'replica-a', refreshTokenFingerprint: fingerprint('refresh-one'), claimedAt: iso(now) });
  });

  it('keeps the claim live for longer than a request can take', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), (timeoutSeconds) => {
        const after = claimRefresh(held(), 'replica-a', now, timeoutSeconds * second);
        expect(Date.parse(after.record.claim?.expiresAt ?? '')).toBeGreaterThan(now + timeoutSeconds * second);
      }),
    );
  });

  it('makes every other decision wait while the claim is live', () => {
    const after = claimRefresh(held(), 'replica-a', now, 10 * second);
    expect(decideRefresh({ now: now + second, state: after, clientSecretFingerprint: secretFP, rotateRequested: true })).toMatchObject({ action: 'wait', reason: 'claimed-elsewhere' });
  });

  it('claims nothing without a refresh token', () => {
    const state: AppState = { record: {} };
    expect(claimRefresh(state, 'replica-a', now, 10 * second)).toBe(state);
  });
});

describe('seedRefreshToken', () => {
  it('plants the seed when the state has no refresh token', () => {
    const after = seedRefreshToken({ record: {} }, 'seed-one');
    expect(after.refreshToken).toBe('seed-one');
    expect(after.record.seedFingerprint).toBe(fingerprint('seed-one'));
  });

  it('does not plant the same seed again once it died', () => {
    const planted = seedRefreshToken({ record: {} }, 'seed-one');
    const dead = recordFailure(failure({ state: planted, sentRefreshToken: 'seed-one', kind: 'invalid_grant' }));
    expect(seedRefreshToken(dead, 'seed-one')).toBe(dead);
  });

  it('replaces a dead refresh token with a new seed and forgets the failure', () => {
    const dead = recordFailure(failure({ state: held(), kind: 'invalid_grant' }));
    const after = seedRefreshToken(dead, 'seed-two');
    expect(after.refreshToken).toBe('seed-two');
    expect(after.record.seedFingerprint).toBe(fingerprint('seed-two'));
    expect(after.record.failure).toBeUndefined();
    expect(after.tokens).toEqual(dead.tokens);
    // No longer blocked: the schedule of the access token still held resumes.
    expect(decideRefresh({ now, state: after, clientSecretFingerprint: secretFP, rotateRequested: false })).toEqual({
      action: 'wait',
      until: now + 30 * minute,
      reason: 'scheduled',
    });
  });

  it('never replaces a usable refresh token', () => {
    const state = held();
    expect(seedRefreshToken(state, 'seed-one')).toBe(state);
  });

  it.each([undefined, ''])('ignores a missing seed (%j)', (seed) => {
    const state: AppState = { record: {} };
    expect(seedRefreshToken(state, seed)).toBe(state);
  });
});

// Random sequences of what can happen to one app's state between reconciles.
type Operation =
  | { op: 'claim' }
  | { op: 'stale-claim' }
  | { op: 'failure'; kind: Exclude<FailureKind, 'interrupted'>; outcomeUnknown: boolean }
  | { op: 'success'; rotated: boolean; codeExchange: boolean; codeBringsRefreshToken: boolean };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.constant({ op: 'claim' as const }),
  fc.constant({ op: 'stale-claim' as const }),
  fc.record({
    op: fc.constant('failure' as const),
    kind: fc.constantFrom('invalid_grant' as const, 'invalid_client' as const, 'rate_limited' as const, 'server_error' as const, 'timeout' as const, 'network' as const, 'malformed_response' as const, 'rejected' as const),
    outcomeUnknown: fc.boolean(),
  }),
  fc.record({ op: fc.constant('success' as const), rotated: fc.boolean(), codeExchange: fc.boolean(), codeBringsRefreshToken: fc.boolean() }),
);

describe('the refresh token across any sequence of outcomes', () => {
  it('is never lost while usable, and is always the newest one received', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(operation, { maxLength: 40 }), (startWithToken, operations) => {
        let state: AppState = startWithToken ? held() : { record: {} };
        let t = now;
        let issued = 0;
        let expected = state.refreshToken;
        for (const step of operations) {
          t += minute;
          const usableBefore = state.refreshToken !== undefined && state.record.deadRefreshTokenFingerprint !== fingerprint(state.refreshToken);
          if (step.op === 'claim') state = claimRefresh(state, 'replica-a', t, 10 * second);
          else if (step.op === 'stale-claim') state = recordStaleClaim(state, t);
          else if (step.op === 'failure') {
            if (!state.refreshToken) continue;
            state = recordFailure(failure({ now: t, state, sentRefreshToken: state.refreshToken, kind: step.kind, outcomeUnknown: step.outcomeUnknown }));
          } else {
            const sent = step.codeExchange ? undefined : state.refreshToken;
            if (!step.codeExchange && sent === undefined) continue;
            const { refreshToken: _r, ...bare } = response();
            const brings = step.codeExchange ? step.codeBringsRefreshToken : step.rotated;
            const answer: TokenResponse = brings ? { ...bare, refreshToken: `refresh-${++issued}` } : bare;
            state = recordSuccess(success({ now: t, state, sentRefreshToken: sent, response: answer }));
            if (answer.refreshToken) expected = answer.refreshToken;
            // Only a code exchange may leave none behind, and only in place of a dead one.
            else if (step.codeExchange && !usableBefore) expected = undefined;
          }
          if (usableBefore) expect(state.refreshToken).toBeDefined();
          expect(state.refreshToken).toBe(expected);
        }
      }),
    );
  });

  it('is never sent again once refused or possibly consumed by a rotating provider', () => {
    fc.assert(
      fc.property(fc.constantFrom(true, false, undefined), fc.array(operation, { maxLength: 40 }), (rotates, operations) => {
        let state: AppState = held(rotates === undefined ? {} : { rotatesRefreshTokens: rotates, refreshAt: iso(now) });
        let t = now;
        let issued = 0;
        const given = new Set<string>();
        for (const step of operations) {
          t += minute;
          if (step.op === 'claim') state = claimRefresh(state, 'replica-a', t, 10 * second);
          else if (step.op === 'stale-claim') {
            const claimed = state.record.claim;
            state = recordStaleClaim(state, t);
            if (claimed && state.record.deadRefreshTokenFingerprint === claimed.refreshTokenFingerprint && state.refreshToken) given.add(state.refreshToken);
          } else {
            // A token request goes out only when the policy says so.
            const decision = decideRefresh({ now: t, state, clientSecretFingerprint: secretFP, rotateRequested: true });
            const sent = state.refreshToken;
            if (step.op === 'success' && step.codeExchange) {
              const { refreshToken: _r, ...bare } = response();
              const answer: TokenResponse = step.codeBringsRefreshToken ? { ...bare, refreshToken: `refresh-${++issued}` } : bare;
              state = recordSuccess(success({ now: t, state, sentRefreshToken: undefined, response: answer }));
            } else if (decision.action === 'refresh' && sent !== undefined) {
              expect(given.has(sent)).toBe(false);
              if (step.op === 'failure') {
                state = recordFailure(failure({ now: t, state, sentRefreshToken: sent, kind: step.kind, outcomeUnknown: step.outcomeUnknown }));
                if (state.record.deadRefreshTokenFingerprint === fingerprint(sent)) given.add(sent);
              } else {
                const { refreshToken: _r, ...bare } = response();
                const answer: TokenResponse = step.rotated ? { ...bare, refreshToken: `refresh-${++issued}` } : bare;
                state = recordSuccess(success({ now: t, state, sentRefreshToken: sent, response: answer }));
              }
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('recordInstall', () => {
  const installedBefore = held({ installation: { installedAt: iso(now - hour), userID: 'user-1', uninstalledAt: iso(now - 30 * minute) } });

  it('records when the company installed and who installed it', () => {
    expect(recordInstall(held(), { at: now, userID: 'user-2' }).record.installation).toEqual({ installedAt: iso(now), userID: 'user-2' });
  });

  it('replaces an earlier install: its uninstalledAt and its installer are forgotten', () => {
    expect(recordInstall(installedBefore, { at: now }).record.installation).toEqual({ installedAt: iso(now) });
  });

  it('keeps the grant and the rest of the bookkeeping it is given', () => {
    const granted = held({ verifiedClientSecretFingerprint: secretFP });
    const installed = recordInstall(granted, { at: now, userID: 'user-2' });
    expect(installed.refreshToken).toBe(granted.refreshToken);
    expect(installed.tokens).toEqual(granted.tokens);
    expect(installed.record).toMatchObject(granted.record);
  });
});

describe('recordUninstall', () => {
  const installedAt = now - hour;
  const installedState = (record: Bookkeeping = {}) =>
    held({
      installation: { installedAt: iso(installedAt), userID: 'user-1' },
      claim: claim(now + minute),
      failure: { kind: 'server_error', at: iso(now - minute), attempts: 1, message: 'HTTP 500' },
      deadRefreshTokenFingerprint: fingerprint('refresh-zero'),
      verifiedClientSecretFingerprint: secretFP,
      ...record,
    });

  it('drops the refresh token and the tokens', () => {
    const uninstalled = recordUninstall(installedState(), now);
    expect(uninstalled?.refreshToken).toBeUndefined();
    expect(uninstalled?.tokens).toBeUndefined();
  });

  it('drops the claim, the failure, the dead-token marker and the refresh schedule', () => {
    const record = recordUninstall(installedState(), now)?.record;
    expect(record?.claim).toBeUndefined();
    expect(record?.failure).toBeUndefined();
    expect(record?.deadRefreshTokenFingerprint).toBeUndefined();
    expect(record?.refreshAt).toBeUndefined();
  });

  it("records uninstalledAt at the provider's time and keeps the install's facts and other bookkeeping", () => {
    const record = recordUninstall(installedState(), now - minute)?.record;
    expect(record?.installation).toEqual({ installedAt: iso(installedAt), userID: 'user-1', uninstalledAt: iso(now - minute) });
    expect(record?.verifiedClientSecretFingerprint).toBe(secretFP);
  });

  it('applies to an uninstall at the very instant of the install', () => {
    expect(recordUninstall(installedState(), installedAt)?.record.installation?.uninstalledAt).toBe(iso(installedAt));
  });

  it('is undefined for an uninstall older than the install (a later install replaced the grant)', () => {
    expect(recordUninstall(installedState(), installedAt - 1)).toBeUndefined();
  });

  it('is undefined for an uninstall already recorded, or older than the one recorded (a replay)', () => {
    const uninstalled = recordUninstall(installedState(), now - minute);
    if (!uninstalled) throw new Error('not uninstalled');
    expect(recordUninstall(uninstalled, now - minute)).toBeUndefined();
    expect(recordUninstall(uninstalled, now - 2 * minute)).toBeUndefined();
  });

  it('moves uninstalledAt on for a later uninstall', () => {
    const uninstalled = recordUninstall(installedState(), now - minute);
    if (!uninstalled) throw new Error('not uninstalled');
    expect(recordUninstall(uninstalled, now)?.record.installation?.uninstalledAt).toBe(iso(now));
  });

  it('takes the uninstall time as installedAt for a state that never recorded an install', () => {
    expect(recordUninstall(held(), now)?.record.installation).toEqual({ installedAt: iso(now), uninstalledAt: iso(now) });
  });
});

describe('rememberClientSecret', () => {
  it('starts a history with the first secret and no previous one', () => {
    expect(rememberClientSecret(undefined, secretFP, now)).toEqual({ current: secretFP });
  });

  it('returns the very same history while the secret is unchanged (nothing to write)', () => {
    const history = { current: secretFP };
    expect(rememberClientSecret(history, secretFP, now)).toBe(history);
  });

  it('returns the very same history while the secret cannot be read', () => {
    const history = { current: secretFP, previous: 'older', replacedAt: iso(now - hour) };
    expect(rememberClientSecret(history, undefined, now)).toBe(history);
    expect(rememberClientSecret(undefined, undefined, now)).toBeUndefined();
  });

  it('makes the replaced secret the previous one, replaced now', () => {
    expect(rememberClientSecret({ current: secretFP }, newSecretFP, now)).toEqual({ current: newSecretFP, previous: secretFP, replacedAt: iso(now) });
  });

  it('remembers only the secret just replaced after a second rotation', () => {
    const once = rememberClientSecret({ current: secretFP }, newSecretFP, now - hour);
    expect(rememberClientSecret(once, 'third', now)).toEqual({ current: 'third', previous: newSecretFP, replacedAt: iso(now) });
  });
});
