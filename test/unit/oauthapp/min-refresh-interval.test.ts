// --min-refresh-interval: a floor on how often one app sends token requests, whatever asks for
// one (the schedule, a retry, a changed client secret, a person's rotate request); a token that
// lives shorter than the floor is reported, not chased. Pure decisions, time passed in.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decideRefresh, earliestNextRequest, recordFailure, recordSuccess, tokenLifetimeTooShort } from '../../../src/oauthapp/policies.ts';
import { deriveStatus } from '../../../src/oauthapp/status.ts';
import { fingerprint, type AppState, type Bookkeeping } from '../../../src/oauthapp/state.ts';

const now = Date.parse('2030-01-01T12:00:00Z');
const second = 1_000;
const floorMs = 30 * second;
const iso = (ms: number) => new Date(ms).toISOString();
const clientSecret = 'client-secret-one';
const secretFP = fingerprint(clientSecret);

/** An app whose last token request was answered `ago` ms before now, its token living `lifetimeMs`. */
const refreshedAgo = (ago: number, lifetimeMs = 3600 * second, record: Bookkeeping = {}): AppState => ({
  refreshToken: 'refresh-one',
  tokens: { accessToken: 'access-one', tokenType: 'Bearer', expiresAt: iso(now - ago + lifetimeMs) },
  record: { issuedAt: iso(now - ago), lastRefreshTime: iso(now - ago), refreshAt: iso(now - ago + (2 * lifetimeMs) / 3), verifiedClientSecretFingerprint: secretFP, ...record },
});

const decide = (state: AppState, options: { rotateRequested?: boolean; clientSecretFingerprint?: string; minRefreshIntervalMs?: number } = {}) =>
  decideRefresh({
    now,
    state,
    clientSecretFingerprint: options.clientSecretFingerprint ?? secretFP,
    rotateRequested: options.rotateRequested ?? false,
    minRefreshIntervalMs: options.minRefreshIntervalMs ?? floorMs,
  });

describe('decideRefresh with --min-refresh-interval', () => {
  it('defers a due refresh of a token that lives 1 s until the interval since the last request is over', () => {
    expect(decide(refreshedAgo(2 * second, 1 * second))).toEqual({ action: 'wait', until: now - 2 * second + floorMs, reason: 'min-refresh-interval' });
    expect(decide(refreshedAgo(floorMs, 1 * second))).toEqual({ action: 'refresh', reason: 'due' });
  });

  it('defers a rotate request made right after a refresh (a person\'s ask is deferred, not dropped)', () => {
    expect(decide(refreshedAgo(5 * second), { rotateRequested: true })).toEqual({ action: 'wait', until: now + 25 * second, reason: 'min-refresh-interval' });
    expect(decide(refreshedAgo(31 * second), { rotateRequested: true })).toEqual({ action: 'refresh', reason: 'rotate-request' });
  });

  it('defers a retry after a failure, counting from the failed request', () => {
    const state = refreshedAgo(10 * 60 * second, 3600 * second, { failure: { kind: 'server_error', message: '500', at: iso(now - 5 * second), attempts: 1, retryAt: iso(now - second), clientSecretFingerprint: secretFP } });

    expect(decide(state)).toEqual({ action: 'wait', until: now + 25 * second, reason: 'min-refresh-interval' });
  });

  it('defers the retry a changed client secret asks for after invalid_client', () => {
    const state = refreshedAgo(10 * 60 * second, 3600 * second, {
      failure: { kind: 'invalid_client', message: 'rejected', at: iso(now - 3 * second), attempts: 1, retryAt: iso(now + 60 * second), clientSecretFingerprint: secretFP },
    });

    expect(decide(state, { clientSecretFingerprint: fingerprint('client-secret-two') })).toEqual({ action: 'wait', until: now + 27 * second, reason: 'min-refresh-interval' });
    expect(decide(state, { clientSecretFingerprint: fingerprint('client-secret-two'), minRefreshIntervalMs: 1 * second })).toEqual({ action: 'refresh', reason: 'client-secret-changed' });
  });

  it('never lets two token requests of one app come closer than the interval, whatever the state and the asks', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 120 * second }),
        fc.integer({ min: 0, max: 7200 * second }),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 120 * second })),
        (ago, lifetimeMs, rotateRequested, failedAgo) => {
          const failure = failedAgo === null ? {} : { failure: { kind: 'network' as const, message: 'reset', at: iso(now - failedAgo), attempts: 1, retryAt: iso(now - failedAgo + second), clientSecretFingerprint: secretFP } };
          const state = refreshedAgo(ago, lifetimeMs, failure);
          const decision = decide(state, { rotateRequested });
          if (decision.action === 'refresh') expect(now - Math.max(now - ago, failedAgo === null ? -Infinity : now - failedAgo)).toBeGreaterThanOrEqual(floorMs);
        },
      ),
    );
  });

  it('changes nothing without a floor (0 or unset)', () => {
    expect(decide(refreshedAgo(second, second), { minRefreshIntervalMs: 0 })).toEqual({ action: 'refresh', reason: 'due' });
    expect(earliestNextRequest(refreshedAgo(second).record, undefined)).toBe(Number.NEGATIVE_INFINITY);
  });
});

describe('stored times with --min-refresh-interval', () => {
  it('schedules the next refresh of a token that lives 0.5 s no sooner than the interval', () => {
    const state = recordSuccess({
      now,
      state: refreshedAgo(floorMs),
      sentRefreshToken: 'refresh-one',
      response: { accessToken: 'access-two', tokenType: 'Bearer', expiresInSeconds: 0.5 },
      renewBeforeMs: undefined,
      clientSecretFingerprint: secretFP,
      random: () => 0.5,
      minRefreshIntervalMs: floorMs,
    });

    expect(state.record.refreshAt).toBe(iso(now + floorMs));
  });

  it('sets a retry no sooner than the interval, even when the backoff or Retry-After is shorter', () => {
    const failed = (retryAfterMs: number | undefined) =>
      recordFailure({
        now,
        state: refreshedAgo(floorMs),
        sentRefreshToken: 'refresh-one',
        kind: 'server_error',
        outcomeUnknown: false,
        message: '503',
        clientSecretFingerprint: secretFP,
        backoffMs: () => 10 * second,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        minRefreshIntervalMs: floorMs,
      });

    expect(failed(undefined).record.failure?.retryAt).toBe(iso(now + floorMs));
    expect(failed(2 * second).record.failure?.retryAt).toBe(iso(now + floorMs));
    expect(failed(90 * second).record.failure?.retryAt).toBe(iso(now + 90 * second));
  });
});

describe('a token that lives shorter than --min-refresh-interval', () => {
  const ready = (state: AppState, at = now) =>
    deriveStatus({ now: at, state, clientSecret: { found: true, value: clientSecret, source: 'Secret sales/crm-client, key client_secret' }, targetSecretName: 'crm-credentials', minRefreshIntervalMs: 5 * second }).conditions.find(
      (condition) => condition.type === 'Ready',
    );

  it('is Ready=False, reason TokenLifetimeTooShort, whether the token is valid or expired at the moment (no flapping)', () => {
    const state = refreshedAgo(0, 1 * second);

    const whileValid = ready(state, now + 500);
    const whenExpired = ready(state, now + 3 * second);

    expect(whileValid).toMatchObject({ status: 'False', reason: 'TokenLifetimeTooShort' });
    expect(whenExpired).toEqual(whileValid);
    expect(whileValid?.message).toContain('live 1 s, less than --min-refresh-interval (5 s)');
  });

  it('is not reported for a token that lives at least the interval', () => {
    expect(tokenLifetimeTooShort(refreshedAgo(0, 5 * second), 5 * second)).toBeUndefined();
    expect(ready(refreshedAgo(0, 5 * second))).toMatchObject({ status: 'True', reason: 'TokenValid' });
    expect(tokenLifetimeTooShort(refreshedAgo(0, 4 * second), 5 * second)).toEqual({ lifetimeMs: 4 * second });
  });
});
