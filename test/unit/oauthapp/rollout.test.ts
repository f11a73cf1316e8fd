// planRollout: one rollout restart per actual client-secret change. A restart is a new
// `kubectl.kubernetes.io/restartedAt` value on the pod template, so each change must get a value
// the template does not already carry, while a crash between "pending" and "done" re-applies the
// same value (and so restarts nothing twice).
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { nextRestartedAt, planRollout } from '../../../src/oauthapp/rollout.ts';
import { fingerprint, type Bookkeeping } from '../../../src/oauthapp/state.ts';

const start = Date.parse('2030-01-01T12:00:00.100Z');
const [first, second, third] = ['secret-1', 'secret-2', 'secret-3'].map(fingerprint) as [string, string, string];

/** What Rollouts.reconcile does with the plans, minus the apiserver: record, restart, done. */
function change(record: Bookkeeping, secret: string, now: number): { record: Bookkeeping; restartedAt?: string } {
  let plan = planRollout(record, secret, now);
  if (plan.action === 'record') {
    record = plan.record;
    plan = planRollout(record, secret, now);
  }
  return plan.action === 'restart' ? { record: plan.done, restartedAt: plan.restartedAt } : { record };
}

describe('planRollout', () => {
  it('records the first secret it sees without restarting anything', () => {
    expect(planRollout({}, first, start)).toEqual({ action: 'record', record: { rolledOutClientSecretFingerprint: first } });
    expect(planRollout({ rolledOutClientSecretFingerprint: first }, first, start)).toEqual({ action: 'none' });
  });

  it('uses kubectl\'s format: RFC 3339 in whole seconds', () => {
    const { restartedAt } = change({ rolledOutClientSecretFingerprint: first }, second, start);
    expect(restartedAt).toBe('2030-01-01T12:00:00Z');
  });

  it('gives two changes within one second different restartedAt values, so the second one restarts too', () => {
    const afterFirst = change({ rolledOutClientSecretFingerprint: first }, second, start);
    const afterSecond = change(afterFirst.record, third, start + 400);
    expect(afterFirst.restartedAt).toBe('2030-01-01T12:00:00Z');
    expect(afterSecond.restartedAt).toBe('2030-01-01T12:00:01Z');
    expect(afterSecond.record).toMatchObject({ rolledOutClientSecretFingerprint: third, rolledOutRestartedAt: '2030-01-01T12:00:01Z' });
  });

  it('re-applies the same value after a crash between recording and finishing the restart', () => {
    const pending = planRollout({ rolledOutClientSecretFingerprint: first }, second, start);
    if (pending.action !== 'record') throw new Error('expected a pending rollout to be recorded');
    // The process died after (some of) the restarts; a later reconcile finds the pending rollout.
    const resumed = planRollout(pending.record, second, start + 90_000);
    expect(resumed).toMatchObject({ action: 'restart', restartedAt: pending.record.pendingRollout?.restartedAt });
  });

  it('moves past a half-applied pending rollout when the secret changes again within the same second', () => {
    const pending = planRollout({ rolledOutClientSecretFingerprint: first }, second, start);
    if (pending.action !== 'record') throw new Error('expected a pending rollout to be recorded');
    const superseding = planRollout(pending.record, third, start + 200);
    expect(superseding).toMatchObject({ action: 'record', record: { pendingRollout: { clientSecretFingerprint: third } } });
    if (superseding.action !== 'record') return;
    expect(superseding.record.pendingRollout?.restartedAt).not.toBe(pending.record.pendingRollout?.restartedAt);
  });

  it('restarts for every change of a sequence, however close together (property)', () => {
    const secrets = fc.constantFrom(first, second, third);
    fc.assert(
      fc.property(fc.array(fc.record({ secret: secrets, afterMs: fc.integer({ min: 0, max: 2_500 }) }), { maxLength: 30 }), (steps) => {
        let record: Bookkeeping = { rolledOutClientSecretFingerprint: first };
        let current = first;
        let now = start;
        let applied: string | undefined;
        for (const { secret, afterMs } of steps) {
          now += afterMs;
          const result = change(record, secret, now);
          record = result.record;
          if (secret !== current) {
            // A change: the template gets a value it did not carry, never one before the clock.
            expect(result.restartedAt).toBeDefined();
            expect(result.restartedAt).not.toBe(applied);
            expect(Date.parse(result.restartedAt ?? '')).toBeGreaterThanOrEqual(Math.floor(now / 1000) * 1000);
            applied = result.restartedAt;
            current = secret;
          } else {
            expect(result.restartedAt).toBeUndefined();
          }
        }
      }),
    );
  });
});

describe('nextRestartedAt', () => {
  it('is the current second when nothing was written at or after it', () => {
    expect(nextRestartedAt(start, [undefined, '2030-01-01T11:59:59Z'])).toBe('2030-01-01T12:00:00Z');
  });

  it('is one second past the latest value written', () => {
    expect(nextRestartedAt(start, ['2030-01-01T12:00:00Z', '2030-01-01T12:00:03Z'])).toBe('2030-01-01T12:00:04Z');
  });
});
