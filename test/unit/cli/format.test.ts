// What `status` prints: durations, timestamps with their distance, the leader, the whole screen.
import { describe, expect, it } from '@jest/globals';
import type { AppView } from '../../../src/cli/cluster.ts';
import { formatLeader, formatStatus, leaderOf, shortDuration, table, timeWithDistance } from '../../../src/cli/format.ts';

const now = Date.parse('2026-12-01T17:00:00Z');

describe('shortDuration', () => {
  it.each([
    [0, '0s'],
    [999, '0s'],
    [45_000, '45s'],
    [60_000, '1m'],
    [61_000, '1m1s'],
    [59 * 60_000 + 59_000, '59m59s'],
    [3_600_000, '1h'],
    [3_900_000, '1h5m'],
    [3_600_000 + 5_000, '1h'],
    [2 * 86_400_000 + 3 * 3_600_000, '2d3h'],
    [-90_000, '1m30s'],
  ])('%d ms is %s', (ms, text) => {
    expect(shortDuration(ms)).toBe(text);
  });
});

describe('timeWithDistance', () => {
  it('says how far ahead or behind a timestamp is', () => {
    expect(timeWithDistance('2026-12-01T17:59:00Z', now)).toBe('2026-12-01T17:59:00Z (in 59m)');
    expect(timeWithDistance('2026-12-01T16:57:00Z', now)).toBe('2026-12-01T16:57:00Z (3m ago)');
    expect(timeWithDistance(undefined, now)).toBe('-');
    expect(timeWithDistance('not a time', now)).toBe('not a time');
  });
});

describe('the leader', () => {
  const lease = (spec: Record<string, unknown>) => ({ spec });

  it('is the Lease holder while its Lease is renewed', () => {
    const leader = leaderOf(lease({ holderIdentity: 'pod-a-1234', renewTime: '2026-12-01T16:59:55.000000Z', leaseDurationSeconds: 15 }), now);
    expect(leader).toEqual({ kind: 'held', holder: 'pod-a-1234' });
    expect(formatLeader(leader)).toBe('pod-a-1234');
  });

  it('is shown as expired once renewTime + leaseDurationSeconds has passed', () => {
    const leader = leaderOf(lease({ holderIdentity: 'pod-a-1234', renewTime: '2026-12-01T16:58:00.000000Z', leaseDurationSeconds: 15 }), now);
    expect(leader).toEqual({ kind: 'held', holder: 'pod-a-1234', expiredForMs: 105_000 });
    expect(formatLeader(leader)).toBe('pod-a-1234 (its Lease expired 1m45s ago: no replica is renewing it)');
  });

  it('is none for a released Lease, and unknown with the reason when it could not be read', () => {
    expect(leaderOf(lease({ holderIdentity: '' }), now)).toEqual({ kind: 'none' });
    expect(leaderOf({}, now)).toEqual({ kind: 'none' });
    expect(formatLeader({ kind: 'none' })).toBe('none (no replica holds the Lease)');
    expect(formatLeader({ kind: 'unknown', why: 'forbidden' })).toBe('unknown (forbidden)');
  });
});

describe('table', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(table(['A', 'BB', 'C'], [['xxx', 'y', 'long last cell'], ['x', '', '']])).toEqual(['A    BB  C', 'xxx  y   long last cell', 'x']);
  });
});

describe('formatStatus', () => {
  const ready: AppView = {
    metadata: { name: 'crm-sync', namespace: 'sales' },
    status: {
      targetSecretName: 'crm-sync-credentials',
      accessTokenExpiresAt: '2026-12-01T17:59:00Z',
      lastRefreshTime: '2026-12-01T16:59:00Z',
      nextRefreshTime: '2026-12-01T17:39:00Z',
      lastRotateRequest: '2026-12-01T16:58:59.123Z',
      conditions: [
        { type: 'Ready', status: 'True', reason: 'TokenValid', message: 'the access token is valid until 2026-12-01T17:59:00Z', lastTransitionTime: '2026-12-01T16:00:00Z' },
        { type: 'Authorized', status: 'True', reason: 'RefreshTokenValid', message: 'the provider accepted the refresh token', lastTransitionTime: '2026-12-01T16:00:00Z' },
        { type: 'ClientSecretValid', status: 'True', reason: 'Verified', message: 'the provider accepted\nthe client secret', lastTransitionTime: '2026-12-01T16:00:00Z' },
      ],
    },
  };

  it('prints a Ready app on one screen', () => {
    expect(formatStatus({ app: ready, leader: { kind: 'held', holder: 'pod-a' }, leaseLocation: 'oauthapp-system/oauthapp-operator', now })).toBe(
      [
        'Name:           crm-sync',
        'Namespace:      sales',
        'Ready:          True (TokenValid)',
        'Target Secret:  crm-sync-credentials',
        'Token expires:  2026-12-01T17:59:00Z (in 59m)',
        'Last refresh:   2026-12-01T16:59:00Z (1m ago)',
        'Next refresh:   2026-12-01T17:39:00Z (in 39m)',
        'Last failure:   none',
        'Rotate request: 2026-12-01T16:58:59.123Z',
        'Leader:         pod-a  [Lease oauthapp-system/oauthapp-operator]',
        'Conditions:',
        '  TYPE               STATUS  REASON             MESSAGE',
        '  Ready              True    TokenValid         the access token is valid until 2026-12-01T17:59:00Z',
        '  Authorized         True    RefreshTokenValid  the provider accepted the refresh token',
        '  ClientSecretValid  True    Verified           the provider accepted the client secret',
        '',
      ].join('\n'),
    );
  });

  it('points an app that needs a person at the authorize command, without printing the URL itself', () => {
    const url = 'https://oauth.example/authorize?client_id=x&state=capability';
    const waiting: AppView = {
      metadata: { name: 'new', namespace: 'sales' },
      status: {
        targetSecretName: 'new-credentials',
        authorizationURL: url,
        lastFailure: { reason: 'InvalidGrant', time: '2026-12-01T16:50:00Z', attempts: 1 },
        conditions: [
          { type: 'Ready', status: 'False', reason: 'NotAuthorized', message: 'open status.authorizationURL', lastTransitionTime: '2026-12-01T16:00:00Z' },
          { type: 'Authorized', status: 'False', reason: 'AuthorizationRequired', message: 'open status.authorizationURL', lastTransitionTime: '2026-12-01T16:00:00Z' },
        ],
      },
    };
    const text = formatStatus({ app: waiting, leader: { kind: 'unknown', why: 'forbidden' }, leaseLocation: 'ops/oauthapp-operator', now });
    expect(text).toContain('Next refresh:   none scheduled (a person must act: see the conditions)\n');
    expect(text).toContain('Last failure:   InvalidGrant at 2026-12-01T16:50:00Z (10m ago), 1 attempt in a row\n');
    expect(text).toContain('Authorization:  needed: run kubectl oauthapp authorize new -n sales\n');
    expect(text).toContain('Leader:         unknown (forbidden)  [Lease ops/oauthapp-operator]\n');
    expect(text).not.toContain(url);
  });

  it('says so when the operator has not written any status yet', () => {
    const text = formatStatus({ app: { metadata: { name: 'fresh', namespace: 'sales' } }, leader: { kind: 'none' }, leaseLocation: 'ops/oauthapp-operator', now });
    expect(text).toContain('Ready:          unknown (no status yet: is the operator running and watching this namespace?)\n');
    expect(text).toContain('Token expires:  -\n');
    expect(text).toMatch(/Conditions: +none yet\n$/);
  });
});
