import { describe, expect, it } from '@jest/globals';
import { KubeAPIError } from '../../../src/kube/errors.ts';
import { requeueOnConflict } from '../../../src/oauthapp/conflicts.ts';

const conflict = () => new KubeAPIError('PUT', '/api/v1/namespaces/x/secrets/y', 409, 'Conflict', 'the object has been modified');

describe('requeueOnConflict', () => {
  it('turns a 409 Conflict into a short requeue with a reason, not a failure that grows the backoff', async () => {
    const reconcile = requeueOnConflict(async () => Promise.reject(conflict()), () => 0.5);
    await expect(reconcile()).resolves.toEqual({ requeueAfterMs: 500, reason: 'a write conflicted (PUT /api/v1/namespaces/x/secrets/y): the cache was behind' });
  });

  it('keeps every other error an error', async () => {
    const unavailable = new KubeAPIError('PUT', '/x', 503, 'Unknown', 'unavailable');
    await expect(requeueOnConflict(async () => Promise.reject(unavailable))()).rejects.toBe(unavailable);
  });

  it('passes results through', async () => {
    await expect(requeueOnConflict(async (delay: number) => ({ requeueAfterMs: delay }))(7)).resolves.toEqual({ requeueAfterMs: 7 });
  });
});
