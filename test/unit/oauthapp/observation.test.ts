// What a reconcile tells the metrics: the written conditions and the token's schedule, in
// milliseconds, with the renew window the current token was scheduled by.
import { describe, expect, it } from '@jest/globals';
import { observation } from '../../../src/oauthapp/observation.ts';
import type { AppState } from '../../../src/oauthapp/state.ts';
import type { DerivedStatus } from '../../../src/oauthapp/status.ts';

const minute = 60_000;
const issuedAt = Date.parse('2030-01-01T12:00:00Z');
const expiresAt = issuedAt + 60 * minute;

const state: AppState = {
  refreshToken: 'CANARY-refresh-token',
  tokens: { accessToken: 'CANARY-access-token', tokenType: 'Bearer', expiresAt: new Date(expiresAt).toISOString() },
  record: { issuedAt: new Date(issuedAt).toISOString(), refreshAt: new Date(expiresAt - 21 * minute).toISOString() },
};
const status: DerivedStatus = {
  conditions: [
    { type: 'Ready', status: 'True', reason: 'TokenValid', message: 'the access token is valid' },
    { type: 'Authorized', status: 'True', reason: 'RefreshTokenPresent', message: 'a refresh token is stored' },
  ],
  fields: { accessTokenExpiresAt: new Date(expiresAt).toISOString(), nextRefreshTime: '2030-01-01T12:39:00Z' },
};

describe('observation', () => {
  it('passes the conditions and the expiry and next refresh times as milliseconds', () => {
    expect(observation(status, state, undefined)).toMatchObject({
      conditions: status.conditions,
      accessTokenExpiresAt: expiresAt,
      nextRefreshAt: Date.parse('2030-01-01T12:39:00Z'),
    });
  });

  it('takes spec.renewBefore as the renew window when it is shorter than the token\'s lifetime', () => {
    expect(observation(status, state, '15m').renewBeforeMs).toBe(15 * minute);
  });

  it('takes a third of the token\'s lifetime as the renew window without spec.renewBefore', () => {
    expect(observation(status, state, undefined).renewBeforeMs).toBe(20 * minute);
  });

  it('has no times while the app holds no tokens, or no refresh while a person must act', () => {
    const facts = observation({ conditions: status.conditions, fields: {} }, { record: {} }, '15m');
    expect(facts).toEqual({ conditions: status.conditions, accessTokenExpiresAt: undefined, nextRefreshAt: undefined, renewBeforeMs: undefined });
  });
});
