// The refresh path's ordering guarantees, with an in-memory apiserver stand-in for the state
// Secret (the real apiserver's answers are covered by the integration tests): claim before send,
// store before anything else, and a store that fails is kept and written before the next step.
import { describe, expect, it } from '@jest/globals';
import { KubeAPIError } from '../../../src/kube/errors.ts';
import type { ObjectCache } from '../../../src/kube/informer.ts';
import { decodeData, type Secret } from '../../../src/kube/objects.ts';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import type { TokenSet } from '../../../src/oauth/token-response.ts';
import { decideRefresh } from '../../../src/oauthapp/policies.ts';
import { Refresher, type TokenRequester } from '../../../src/oauthapp/refresher.ts';
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

function setUp(answer: () => Promise<TokenSet>) {
  const secrets = new SecretsStandIn();
  const store = new StateStore(secrets, noCache, 'oauthapp-system');
  const sent: string[] = [];
  const tokens: TokenRequester = {
    async requestToken(request) {
      secrets.log.push('send');
      sent.push(request.grant.refreshToken);
      return answer();
    },
  };
  const refresher = new Refresher({
    store,
    tokens,
    limit: (_key, task) => task(),
    now: () => now,
    random: () => 0.5,
    backoffMs: () => 10_000,
    holder: 'replica-a',
    requestTimeoutMs: 10_000,
  });
  return { secrets, store, refresher, sent };
}

const rotated: TokenSet = { accessToken: 'access-2', tokenType: 'Bearer', refreshToken: 'refresh-2', expiresInSeconds: 3600 };

async function seeded(store: StateStore) {
  return store.save(app, { refreshToken: 'refresh-1', record: {} }, undefined);
}

const refresh = (refresher: Refresher, stored: Awaited<ReturnType<typeof seeded>>) =>
  refresher.refresh({ app, stored, provider, clientId: 'client', clientSecret: 'secret', renewBeforeMs: undefined, reason: 'initial' });

describe('Refresher', () => {
  it('writes the claim before it sends, and the answer right after', async () => {
    const { secrets, store, refresher } = setUp(async () => rotated);

    await refresh(refresher, await seeded(store));

    expect(secrets.log).toEqual(['create:result', 'replace:claim', 'send', 'replace:result']);
    expect(decodeData(secrets.stored.get(stateSecretName(app.uid))?.data)).toMatchObject({ refresh_token: 'refresh-2', access_token: 'access-2' });
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
    // Let the claim through, then cut the apiserver off for the write of the answer.
    const original = secrets.replaceSecret.bind(secrets);
    let writes = 0;
    secrets.replaceSecret = async (namespace, secret) => {
      writes += 1;
      if (writes === 2) secrets.failWrites = true;
      return original(namespace, secret);
    };

    await expect(refresh(refresher, stored)).rejects.toMatchObject({ reason: 'NetworkError' });

    const inMemory = store.load(app);
    expect(inMemory.state.refreshToken).toBe('refresh-2');
    expect(decideRefresh({ now, state: inMemory.state, clientSecretFingerprint: fingerprint('secret'), rotateRequested: false })).toMatchObject({ action: 'wait' });

    secrets.failWrites = false;
    await store.flushUnsaved(app);
    expect(decodeData(secrets.stored.get(stateSecretName(app.uid))?.data)).toMatchObject({ refresh_token: 'refresh-2' });
    expect(sent).toEqual(['refresh-1']);
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
});
