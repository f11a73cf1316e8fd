// The refresh path's ordering guarantees, with an in-memory apiserver stand-in for the state
// Secret (the real apiserver's answers are covered by the integration tests): claim before send,
// store before anything else, a store that fails is kept and written before the next step, and a
// kept answer is written only where it still belongs; and a refresh waits for its provider slot
// without holding its caller (a worker), holding the slot from before the claim until the answer
// is stored.
import { describe, expect, it } from '@jest/globals';
import { KubeAPIError } from '../../../src/kube/errors.ts';
import type { ObjectCache } from '../../../src/kube/informer.ts';
import { decodeData, type Secret } from '../../../src/kube/objects.ts';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import { createKeyedLimiter, type KeyedLimiter } from '../../../src/controller/limiter.ts';
import type { TokenSet } from '../../../src/oauth/token-response.ts';
import { decideRefresh } from '../../../src/oauthapp/policies.ts';
import { Refresher, type RefreshOutcome, type TokenRequester } from '../../../src/oauthapp/refresher.ts';
import type { AppIdentity } from '../../../src/oauthapp/state.ts';
import { settle } from '../controller/fake-clock.ts';
import { StateStore, type StateSecrets } from '../../../src/oauthapp/state-store.ts';
import { fingerprint, stateSecretName } from '../../../src/oauthapp/state.ts';

const app = { namespace: 'sales', name: 'crm-sync', uid: 'uid-1' };
const provider = { name: 'pipedrive' as const, tokenURL: 'https://oauth.example.com/token', authorizeURL: 'https://oauth.example.com/authorize', clientAuthentication: 'client_secret_basic' as const };
const now = Date.parse('2026-11-27T08:00:00Z');

/** Secrets with resourceVersions and conflicts, plus a log of every call and a switch to fail writes. */
class SecretsStandIn implements StateSecrets {
  readonly log: string[] = [];
  readonly stored = new Map<string, Secret>();
  failWrites = false;
  /** The write commits, but its answer never reaches the caller (a reset stream, a timeout). */
  loseAnswers = false;
  private version = 1;

  async getSecret(_namespace: string, name: string) {
    return this.stored.get(name);
  }

  async createSecret(_namespace: string, secret: Secret) {
    return this.write('create', secret, undefined);
  }

  async replaceSecret(_namespace: string, secret: Secret) {
    return this.write('replace', secret, secret.metadata.resourceVersion);
  }

  async deleteSecret(_namespace: string, name: string) {
    this.stored.delete(name);
  }

  private write(verb: string, secret: Secret, expectedVersion: string | undefined): Secret {
    const record = decodeData(secret.data)['record.json'] ?? '';
    this.log.push(`${verb}:${record.includes('"claim"') ? 'claim' : 'result'}`);
    if (this.failWrites) throw new KubeAPIError('PUT', '/secrets', 0, 'NetworkError', 'connection refused');
    const current = this.stored.get(secret.metadata.name);
    if (current?.metadata.resourceVersion !== expectedVersion) throw new KubeAPIError('PUT', '/secrets', 409, 'Conflict', 'the object has been modified');
    const written = { ...secret, metadata: { ...secret.metadata, resourceVersion: String(++this.version) } };
    this.stored.set(secret.metadata.name, written);
    if (this.loseAnswers) throw new KubeAPIError('PUT', '/secrets', 0, 'NetworkError', 'stream reset after the write');
    return written;
  }
}

const noCache: ObjectCache<Secret> = {
  get: () => undefined,
  list: () => [],
  on: () => undefined,
  observeWrite: () => undefined,
  observeDelete: () => undefined,
  hasSynced: () => true,
  synced: Promise.resolve(),
  start: () => undefined,
  stop: async () => undefined,
};

function setUp(answer: () => Promise<TokenSet>, clock = { now }, limiter: KeyedLimiter = createKeyedLimiter(8)) {
  const secrets = new SecretsStandIn();
  const store = new StateStore(secrets, noCache, 'oauthapp-system', { now: () => clock.now });
  const sent: string[] = [];
  const tokens: TokenRequester = {
    async requestToken(request) {
      secrets.log.push('send');
      sent.push(request.grant.refreshToken);
      return answer();
    },
  };
  const settled: AppIdentity[] = [];
  const refresher = new Refresher({
    store,
    tokens,
    slots: limiter,
    onSettled: (settledApp) => settled.push(settledApp),
    now: () => clock.now,
    random: () => 0.5,
    backoffMs: () => 10_000,
    holder: 'replica-a',
    requestTimeoutMs: 10_000,
  });
  return { secrets, store, refresher, sent, settled };
}

const rotated: TokenSet = { accessToken: 'access-2', tokenType: 'Bearer', refreshToken: 'refresh-2', expiresInSeconds: 3600 };

async function seeded(store: StateStore) {
  return store.save(app, { refreshToken: 'refresh-1', record: {} }, undefined);
}

const request = (stored: Awaited<ReturnType<typeof seeded>>) => ({ app, stored, provider, clientId: 'client', clientSecret: 'secret', renewBeforeMs: undefined, reason: 'initial' as const, waiter: 'sales/crm-sync' });

/** Starts a refresh (a slot must be free) and waits for its answer to be stored. */
async function refresh(refresher: Refresher, stored: Awaited<ReturnType<typeof seeded>>): Promise<RefreshOutcome> {
  const start = await refresher.start(request(stored));
  if (!start.started) throw new Error('no provider slot');
  return start.answered;
}

/** A token answer the test lets through when it wants. */
function heldAnswer() {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return { answer: async () => (await gate, rotated), open };
}

describe('Refresher', () => {
  it('writes the claim before it sends, and the answer right after', async () => {
    const { secrets, store, refresher } = setUp(async () => rotated);

    await refresh(refresher, await seeded(store));

    expect(secrets.log).toEqual(['create:result', 'replace:claim', 'send', 'replace:result']);
    expect(decodeData(secrets.stored.get(stateSecretName(app.uid))?.data)).toMatchObject({ refresh_token: 'refresh-2', access_token: 'access-2' });
  });

  it('writes no claim and sends nothing once this replica has stopped leading', async () => {
    const { secrets, store, refresher, sent } = setUp(async () => rotated);
    const stored = await seeded(store);
    const leadership = new AbortController();
    leadership.abort();

    await expect(refresher.start({ ...request(stored), reason: 'due', leadership: leadership.signal })).rejects.toMatchObject({ code: 'NOT_LEADING' });

    expect(secrets.log).toEqual(['create:result']);
    expect(sent).toEqual([]);
  });

  it('does not send when another writer changed the state since it was read (the claim conflicts)', async () => {
    const { store, refresher, sent } = setUp(async () => rotated);
    const stale = await seeded(store);
    await store.save(app, { refreshToken: 'refresh-1', record: { lastRefreshTime: new Date(now).toISOString() } }, stale.resourceVersion);

    await expect(refresh(refresher, stale)).rejects.toMatchObject({ reason: 'Conflict' });

    expect(sent).toEqual([]);
  });

  it('keeps an answer it could not store and writes it before anything else, never sending the old token again', async () => {
    const { secrets, store, refresher, sent } = setUp(async () => rotated);
    const stored = await seeded(store);
    failWritesAfter(secrets, 1);

    await expect(refresh(refresher, stored)).rejects.toMatchObject({ reason: 'NetworkError' });
    expect(store.holds(app)).toBe(true);

    secrets.failWrites = false;
    await store.flushUnsaved(app);
    expect(liveState(secrets)).toMatchObject({ refresh_token: 'refresh-2' });
    expect(store.holds(app)).toBe(false);
    expect(sent).toEqual(['refresh-1']);
  });

  it('releases its own claim whose write committed but whose answer was lost, instead of taking it for a sent request', async () => {
    const { secrets, store, refresher, sent } = setUp(async () => rotated);
    const stored = await seeded(store);
    secrets.loseAnswers = true;

    await expect(refresh(refresher, stored)).rejects.toMatchObject({ reason: 'NetworkError' });

    secrets.loseAnswers = false;
    const live = await store.loadLive(app);
    const claim = live.state.record.claim;
    expect(claim?.holder).toBe('replica-a');
    expect(sent).toEqual([]);
    const decision = decideRefresh({
      now: now + 3_600_000,
      state: live.state,
      clientSecretFingerprint: fingerprint('secret'),
      rotateRequested: false,
      claimNeverSent: (seen) => refresher.claimNeverSent(app, seen),
    });
    expect(decision).toEqual({ action: 'release-claim' });
  });

  /** A refresh whose claim committed with its answer lost: the claim is ours, and nothing was sent. */
  async function leftUnsentClaim() {
    const stage = setUp(async () => rotated);
    const stored = await seeded(stage.store);
    stage.secrets.loseAnswers = true;
    await expect(refresh(stage.refresher, stored)).rejects.toMatchObject({ reason: 'NetworkError' });
    stage.secrets.loseAnswers = false;
    return { ...stage, stored };
  }

  it('takes its own unsent claim out of the live state when it stops leading, so the next leader finds no claim to resolve', async () => {
    const { store, refresher, sent, stored } = await leftUnsentClaim();
    expect((await store.loadLive(app)).state.record.claim?.holder).toBe('replica-a');

    await expect(refresher.releaseUnsentClaims(Date.now() + 5_000, 1)).resolves.toBe(1);

    const live = await store.loadLive(app);
    expect(live.state.record.claim).toBeUndefined();
    expect(live.state.refreshToken).toBe(stored.state.refreshToken);
    expect(sent).toEqual([]);
  });

  it('keeps trying to take its unsent claim out while the apiserver fails, until it gets through (seed 700068)', async () => {
    const { secrets, store, refresher } = await leftUnsentClaim();
    secrets.failWrites = true;
    setTimeout(() => (secrets.failWrites = false), 50);

    await expect(refresher.releaseUnsentClaims(Date.now() + 5_000, 10)).resolves.toBe(1);

    expect((await store.loadLive(app)).state.record.claim).toBeUndefined();
  });

  it('gives up on an unsent claim it cannot release by its deadline, leaving it to expire', async () => {
    const { secrets, store, refresher } = await leftUnsentClaim();
    secrets.failWrites = true;

    await expect(refresher.releaseUnsentClaims(Date.now() + 100, 10)).resolves.toBe(0);

    expect((await store.loadLive(app)).state.record.claim?.holder).toBe('replica-a');
  });

  it('leaves a claim alone at stop once its request has started (it may have reached the provider)', async () => {
    const { store, refresher } = setUp(async () => {
      throw new TokenRequestError('timed out waiting for the answer', { code: 'timeout', delivery: 'unknown' });
    });
    await refresh(refresher, await seeded(store));
    const before = await store.loadLive(app);

    await expect(refresher.releaseUnsentClaims(Date.now() + 5_000, 1)).resolves.toBe(0);

    expect((await store.loadLive(app)).resourceVersion).toBe(before.resourceVersion);
  });

  it('does not take a claim for unsent once its request has started', async () => {
    let claimSeenDuringRequest: boolean | undefined;
    const { store, refresher } = setUp(async () => {
      const claim = (await store.loadLive(app)).state.record.claim;
      claimSeenDuringRequest = claim && refresher.claimNeverSent(app, claim);
      throw new TokenRequestError('timed out waiting for the answer', { code: 'timeout', delivery: 'unknown' });
    });

    await refresh(refresher, await seeded(store));

    expect(claimSeenDuringRequest).toBe(false);
  });

  it('drops a kept answer once another replica has moved the state on, instead of writing an old refresh token back', async () => {
    const { secrets, store, refresher } = setUp(async () => rotated);
    failWritesAfter(secrets, 1);
    await expect(refresh(refresher, await seeded(store))).rejects.toMatchObject({ reason: 'NetworkError' });
    secrets.failWrites = false;
    // Another replica resolved the claim and refreshed refresh-2 into refresh-3 meanwhile.
    const live = await store.loadLive(app);
    await store.save(app, { refreshToken: 'refresh-3', record: {} }, live.resourceVersion);

    await store.flushUnsaved(app);

    expect(liveState(secrets)).toMatchObject({ refresh_token: 'refresh-3' });
    expect(store.holds(app)).toBe(false);
  });

  it('gives a kept answer the expiry of the moment it arrived, not of the moment it is finally stored', async () => {
    const clock = { now };
    const { secrets, store, refresher } = setUp(async () => rotated, clock);
    failWritesAfter(secrets, 1);
    await expect(refresh(refresher, await seeded(store))).rejects.toMatchObject({ reason: 'NetworkError' });

    clock.now = now + 2 * 3_600_000;
    secrets.failWrites = false;
    await store.flushUnsaved(app);

    expect(liveState(secrets).expires_at).toBe(new Date(now + 3_600_000).toISOString());
  });

  it('never re-creates a state Secret that was deleted (with its app) while an answer was kept', async () => {
    const { secrets, store, refresher } = setUp(async () => rotated);
    failWritesAfter(secrets, 1);
    await expect(refresh(refresher, await seeded(store))).rejects.toMatchObject({ reason: 'NetworkError' });
    secrets.failWrites = false;
    await secrets.deleteSecret('oauthapp-system', stateSecretName(app.uid));

    await store.flushUnsaved(app);

    expect(secrets.stored.has(stateSecretName(app.uid))).toBe(false);
    expect(store.holds(app)).toBe(false);
  });

  it('keeps an answer across an unrelated write of the same state (a plain save does not clear it)', async () => {
    const { secrets, store, refresher } = setUp(async () => rotated);
    failWritesAfter(secrets, 1);
    await expect(refresh(refresher, await seeded(store))).rejects.toMatchObject({ reason: 'NetworkError' });
    secrets.failWrites = false;
    const live = await store.loadLive(app);
    await store.save(app, { ...live.state, record: { ...live.state.record, rolledOutClientSecretFingerprint: 'x' } }, live.resourceVersion);

    expect(store.holds(app)).toBe(true);
    await store.flushUnsaved(app);
    expect(liveState(secrets)).toMatchObject({ refresh_token: 'refresh-2' });
  });

  it('gives up a kept answer after it expires', async () => {
    const clock = { now };
    const { secrets, store, refresher } = setUp(async () => rotated, clock);
    failWritesAfter(secrets, 1);
    await expect(refresh(refresher, await seeded(store))).rejects.toMatchObject({ reason: 'NetworkError' });

    clock.now = now + 25 * 3_600_000;
    await store.flushUnsaved(app);

    expect(store.holds(app)).toBe(false);
    expect(liveState(secrets).refresh_token).toBe('refresh-1');
  });

  it('stores the refresh token of a 2xx it could not otherwise use, and keeps the sent one from being sent again', async () => {
    const { secrets, store, refresher } = setUp(async () => {
      throw new TokenRequestError('token endpoint answered HTTP 200 without a usable token response: invalid token_type', {
        code: 'malformed_response',
        delivery: 'answered',
        status: 200,
        refreshToken: 'refresh-2',
      });
    });

    const outcome = await refresh(refresher, await seeded(store));

    expect(outcome.ok).toBe(false);
    expect(liveState(secrets).refresh_token).toBe('refresh-2');
    expect(outcome.stored.state.record.deadRefreshTokenFingerprint).toBeUndefined();
    expect(outcome.stored.state.record.failure?.kind).toBe('malformed_response');
  });

  it.each([500, 502, 504, 520])('gives up a token after a %i from a provider that rotates refresh tokens (it may have processed the refresh)', async (status) => {
    const { store, refresher } = setUp(async () => {
      throw new TokenRequestError(`token endpoint failed (HTTP ${status})`, { code: 'server_error', delivery: 'answered', status });
    });

    const outcome = await refresh(refresher, await seeded(store));

    expect(outcome.stored.state.record.failure?.kind).toBe('interrupted');
    expect(outcome.stored.state.record.deadRefreshTokenFingerprint).toBe(fingerprint('refresh-1'));
  });

  it('waits out a 503 Retry-After from a provider that keeps its refresh tokens, even for a rotate request', async () => {
    const { store, refresher } = setUp(async () => {
      throw new TokenRequestError('token endpoint failed (HTTP 503)', { code: 'server_error', delivery: 'answered', status: 503, retryAfterMs: 120_000 });
    });
    const stored = await store.save(app, { refreshToken: 'refresh-1', record: { rotatesRefreshTokens: false } }, undefined);

    const outcome = await refresh(refresher, stored);

    const state = outcome.stored.state;
    expect(state.record.deadRefreshTokenFingerprint).toBeUndefined();
    expect(decideRefresh({ now: now + 60_000, state, clientSecretFingerprint: fingerprint('secret'), rotateRequested: true })).toEqual({
      action: 'wait',
      until: now + 120_000,
      reason: 'retry-after',
    });
  });

  it('records a refused refresh token as dead after a live re-read shows nobody replaced it', async () => {
    const { store, refresher } = setUp(async () => {
      throw new TokenRequestError('the provider answered invalid_grant', { code: 'invalid_grant', delivery: 'answered', status: 400 });
    });

    const outcome = await refresh(refresher, await seeded(store));

    expect(outcome.ok).toBe(false);
    expect(outcome.stored.state.record.deadRefreshTokenFingerprint).toBe(fingerprint('refresh-1'));
    expect(outcome.stored.state.refreshToken).toBe('refresh-1');
  });

  it('gives up a token whose request may have reached a rotating provider, instead of replaying it', async () => {
    const { store, refresher } = setUp(async () => {
      throw new TokenRequestError('timed out waiting for the answer', { code: 'timeout', delivery: 'unknown' });
    });

    const outcome = await refresh(refresher, await seeded(store));

    expect(outcome.stored.state.record.failure?.kind).toBe('interrupted');
    expect(decideRefresh({ now: now + 3_600_000, state: outcome.stored.state, clientSecretFingerprint: fingerprint('secret'), rotateRequested: true })).toEqual({
      action: 'blocked',
      reason: 'refresh-token-dead',
    });
  });

  describe('waiting for a provider slot without holding the caller', () => {
    it('writes and sends nothing when no slot of the provider is free, and parks the app to be woken', async () => {
      const limiter = createKeyedLimiter(1);
      const busy = limiter.tryAcquire('oauth.example.com', 'sales/other');
      const { secrets, store, refresher, sent } = setUp(async () => rotated, { now }, limiter);
      const stored = await seeded(store);

      const start = await refresher.start(request(stored));

      expect(start).toEqual({ started: false });
      expect(secrets.log).toEqual(['create:result']);
      expect(sent).toEqual([]);
      expect(refresher.inFlight(app)).toBe(false);
      expect(limiter.parked('oauth.example.com')).toBe(1);
      busy?.release();
    });

    it('returns once the claim is written, and holds the slot off the caller until the answer is stored', async () => {
      const limiter = createKeyedLimiter(1);
      const held = heldAnswer();
      const { secrets, store, refresher, settled } = setUp(held.answer, { now }, limiter);

      const start = await refresher.start(request(await seeded(store)));
      await settle();

      expect(start.started).toBe(true);
      expect(secrets.log).toEqual(['create:result', 'replace:claim', 'send']);
      expect(refresher.inFlight(app)).toBe(true);
      expect(limiter.active('oauth.example.com')).toBe(1);
      expect(settled).toEqual([]);

      held.open();
      await (start.started ? start.answered : undefined);
      await settle();

      expect(secrets.log).toEqual(['create:result', 'replace:claim', 'send', 'replace:result']);
      expect(refresher.inFlight(app)).toBe(false);
      expect(limiter.active('oauth.example.com')).toBe(0);
      expect(settled).toEqual([app]);
    });

    it('is in flight from before its claim is written, so no reconcile decides about that claim meanwhile', async () => {
      const { secrets, store, refresher } = setUp(async () => rotated);
      const stored = await seeded(store);
      let inFlightDuringClaim: boolean | undefined;
      const original = secrets.replaceSecret.bind(secrets);
      secrets.replaceSecret = async (namespace, secret) => {
        inFlightDuringClaim ??= refresher.inFlight(app);
        return original(namespace, secret);
      };

      await refresh(refresher, stored);

      expect(inFlightDuringClaim).toBe(true);
    });

    it('frees the slot and is no longer in flight when the claim fails (the caller sees the error)', async () => {
      const limiter = createKeyedLimiter(1);
      const { store, refresher, sent } = setUp(async () => rotated, { now }, limiter);
      const stale = await seeded(store);
      await store.save(app, { refreshToken: 'refresh-1', record: { lastRefreshTime: new Date(now).toISOString() } }, stale.resourceVersion);

      await expect(refresher.start(request(stale))).rejects.toMatchObject({ reason: 'Conflict' });

      expect(sent).toEqual([]);
      expect(refresher.inFlight(app)).toBe(false);
      expect(limiter.active('oauth.example.com')).toBe(0);
    });

    it('wakes the next app parked on the provider once the answer is stored and the slot freed', async () => {
      const woken: string[] = [];
      const limiter = createKeyedLimiter(1, { wake: (waiter) => woken.push(waiter) });
      const held = heldAnswer();
      const { store, refresher } = setUp(held.answer, { now }, limiter);
      const start = await refresher.start(request(await seeded(store)));
      expect(limiter.tryAcquire('oauth.example.com', 'sales/next')).toBeUndefined();

      held.open();
      await (start.started ? start.answered : undefined);
      await settle();

      expect(woken).toEqual(['sales/next']);
    });

    it('idle() resolves only once every request out has its answer stored', async () => {
      const held = heldAnswer();
      const { secrets, store, refresher } = setUp(held.answer);
      await refresher.start(request(await seeded(store)));
      let idle = false;
      void refresher.idle().then(() => (idle = true));
      await settle();
      expect(idle).toBe(false);

      held.open();
      await settle();
      await settle();

      expect(idle).toBe(true);
      expect(secrets.log.at(-1)).toBe('replace:result');
    });

    it('keeps an answer it could not store for the next reconcile, and says so through answered', async () => {
      const { secrets, store, refresher } = setUp(async () => rotated);
      const stored = await seeded(store);
      failWritesAfter(secrets, 1);

      const start = await refresher.start(request(stored));

      await expect(start.started ? start.answered : undefined).rejects.toMatchObject({ reason: 'NetworkError' });
      await refresher.idle();
      expect(store.holds(app)).toBe(true);
      expect(refresher.inFlight(app)).toBe(false);
    });
  });
});

/** Lets `allowed` more writes through, then fails every write (the apiserver goes away). */
function failWritesAfter(secrets: SecretsStandIn, allowed: number) {
  const original = secrets.replaceSecret.bind(secrets);
  let writes = 0;
  secrets.replaceSecret = async (namespace, secret) => {
    writes += 1;
    if (writes === allowed + 1) secrets.failWrites = true;
    return original(namespace, secret);
  };
}

function liveState(secrets: SecretsStandIn): Record<string, string> {
  return decodeData(secrets.stored.get(stateSecretName(app.uid))?.data);
}
