import { describe, expect, it } from '@jest/globals';
import type { ClientCheck, ClientCheckRequest } from '../../../src/oauth/client-check.ts';
import { ClientSecretChecks, verdictTTLMs } from '../../../src/oauthapp/client-secret-checks.ts';

const request = (clientSecret = 'secret-1'): ClientCheckRequest => ({ tokenURL: 'https://provider.example/token', clientAuthentication: 'client_secret_basic', clientId: 'client-1', clientSecret });

function setup() {
  let now = 1_000_000;
  const pending: Array<{ request: ClientCheckRequest; answer: (check: ClientCheck) => void }> = [];
  const woken: string[] = [];
  const checks = new ClientSecretChecks({
    check: (sent) => new Promise((resolve) => pending.push({ request: sent, answer: resolve })),
    wake: (appKey) => woken.push(appKey),
    now: () => now,
    random: () => 0,
  });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { checks, pending, woken, settle, advance: (ms: number) => (now += ms) };
}

describe('ClientSecretChecks', () => {
  it('starts one check for a secret and answers pending until it is in', () => {
    const { checks, pending } = setup();
    expect(checks.look(request(), 'ns/a')).toEqual({ verdict: 'pending' });
    expect(pending).toHaveLength(1);
  });

  it('checks a secret shared by many apps once, wakes each, and hands each the verdict', async () => {
    const { checks, pending, woken, settle } = setup();
    checks.look(request(), 'ns/a');
    checks.look(request(), 'ns/b');
    checks.look(request(), 'other/c');

    pending[0]?.answer({ verdict: 'accepted' });
    await settle();

    expect(pending).toHaveLength(1);
    expect(woken.sort()).toEqual(['ns/a', 'ns/b', 'other/c']);
    expect(checks.look(request(), 'ns/b')).toEqual({ verdict: 'accepted' });
  });

  it('checks different secrets separately', () => {
    const { checks, pending } = setup();
    checks.look(request('one'), 'ns/a');
    checks.look(request('two'), 'ns/b');
    expect(pending.map((each) => each.request.clientSecret)).toEqual(['one', 'two']);
  });

  it('keeps a rejection with what the provider said', async () => {
    const { checks, pending, settle } = setup();
    checks.look(request(), 'ns/a');
    pending[0]?.answer({ verdict: 'rejected', description: 'Invalid client' });
    await settle();
    expect(checks.look(request(), 'ns/a')).toEqual({ verdict: 'rejected', description: 'Invalid client' });
  });

  it('asks again after a backoff when the answer said neither, and says when to look again meanwhile', async () => {
    const { checks, pending, woken, settle, advance } = setup();
    checks.look(request(), 'ns/a');
    pending[0]?.answer({ verdict: 'unknown', reason: 'server_error: HTTP 502' });
    await settle();
    expect(woken).toEqual(['ns/a']);

    expect(checks.look(request(), 'ns/a')).toEqual({ verdict: 'pending', lookAgainMs: 5_000 });
    expect(pending).toHaveLength(1);
    advance(5_000);
    checks.look(request(), 'ns/a');
    expect(pending).toHaveLength(2);
  });

  it('waits at least as long as the provider asked (Retry-After)', async () => {
    const { checks, pending, settle } = setup();
    checks.look(request(), 'ns/a');
    pending[0]?.answer({ verdict: 'unknown', reason: 'rate_limited', retryAfterMs: 60_000 });
    await settle();
    expect(checks.look(request(), 'ns/a')).toEqual({ verdict: 'pending', lookAgainMs: 60_000 });
  });

  it('treats a check that threw as an answer that said neither', async () => {
    const failing = new ClientSecretChecks({ check: () => Promise.reject(new Error('boom')), wake: () => undefined, now: () => 0, random: () => 0 });
    failing.look(request(), 'ns/a');
    await new Promise((resolve) => setImmediate(resolve));
    expect(failing.look(request(), 'ns/a')).toEqual({ verdict: 'pending', lookAgainMs: 5_000 });
  });

  it('forgets verdicts nobody looks at any more, so its memory does not grow with every rotation', async () => {
    const { checks, pending, settle, advance } = setup();
    for (const secret of ['one', 'two', 'three']) checks.look(request(secret), 'ns/a');
    for (const each of pending) each.answer({ verdict: 'accepted' });
    await settle();
    advance(verdictTTLMs);
    checks.look(request('four'), 'ns/a');

    expect(checks.size).toBe(1);
  });

  it('checks again once a verdict is older than its time to live', async () => {
    const { checks, pending, settle, advance } = setup();
    checks.look(request(), 'ns/a');
    pending[0]?.answer({ verdict: 'rejected' });
    await settle();

    advance(verdictTTLMs);

    expect(checks.look(request(), 'ns/a')).toEqual({ verdict: 'pending' });
    expect(pending).toHaveLength(2);
  });
});
