// One refresh, in the only safe order: claim (a write guarded by resourceVersion, so one sender
// per refresh-token value across all replicas), send, then store the answer before anything else.
import { isTokenRequestError, type TokenRequestError } from '../oauth/errors.ts';
import type { ResolvedProvider } from '../oauth/providers.ts';
import type { TokenSet } from '../oauth/token-response.ts';
import type { AppIdentity } from './state.ts';
import { fingerprint, type AppState } from './state.ts';
import type { StateStore, StoredState } from './state-store.ts';
import { claimRefresh, recordFailure, recordSuccess, type RefreshReason } from './policies.ts';

export interface TokenRequester {
  requestToken(request: {
    tokenURL: string;
    clientAuthentication: ResolvedProvider['clientAuthentication'];
    clientId: string;
    clientSecret: string;
    grant: { type: 'refresh_token'; refreshToken: string };
  }): Promise<TokenSet>;
}

export interface RefresherDependencies {
  store: StateStore;
  tokens: TokenRequester;
  /** Caps concurrent token requests per provider. */
  limit: <T>(providerKey: string, task: () => Promise<T>) => Promise<T>;
  now: () => number;
  random: () => number;
  /** Where in its jitter window the next refresh goes (evenly spread across apps). */
  pickRefreshTime?: (earliest: number, latest: number) => number;
  backoffMs: (attempt: number) => number;
  /** This process: pod name plus a per-start id, so a restarted operator never trusts its old claims. */
  holder: string;
  requestTimeoutMs: number;
  onResult?: (result: 'success' | TokenRequestError['code'], seconds: number) => void;
}

export interface RefreshRequest {
  app: AppIdentity;
  stored: StoredState;
  provider: ResolvedProvider;
  clientId: string;
  clientSecret: string;
  renewBeforeMs: number | undefined;
  reason: RefreshReason;
}

export type RefreshOutcome = { ok: true; stored: StoredState } | { ok: false; stored: StoredState; error: TokenRequestError };

export class Refresher {
  private readonly deps: RefresherDependencies;

  constructor(dependencies: RefresherDependencies) {
    this.deps = dependencies;
  }

  /** Conflicts (another writer got there first) propagate: the caller requeues and re-reads. */
  async refresh(request: RefreshRequest): Promise<RefreshOutcome> {
    return this.deps.limit(new URL(request.provider.tokenURL).host, () => this.claimAndSend(request));
  }

  private async claimAndSend({ app, stored, provider, clientId, clientSecret, renewBeforeMs }: RefreshRequest): Promise<RefreshOutcome> {
    const { store, tokens, now, random, pickRefreshTime } = this.deps;
    const refreshToken = stored.state.refreshToken;
    if (!refreshToken) throw new Error('refresh requested without a refresh token');
    const claimed = await store.save(app, claimRefresh(stored.state, this.deps.holder, now(), this.deps.requestTimeoutMs), stored.resourceVersion);
    const clientSecretFingerprint = fingerprint(clientSecret);

    const started = now();
    let response: TokenSet;
    try {
      response = await tokens.requestToken({
        tokenURL: provider.tokenURL,
        clientAuthentication: provider.clientAuthentication,
        clientId,
        clientSecret,
        grant: { type: 'refresh_token', refreshToken },
      });
    } catch (error) {
      if (!isTokenRequestError(error)) throw error;
      this.deps.onResult?.(error.code, (now() - started) / 1000);
      return this.storeFailure(app, claimed, refreshToken, clientSecretFingerprint, error);
    }
    this.deps.onResult?.('success', (now() - started) / 1000);

    const success = (state: AppState) =>
      recordSuccess({ now: now(), state, sentRefreshToken: refreshToken, response, renewBeforeMs, clientSecretFingerprint, random, ...(pickRefreshTime ? { pickRefreshTime } : {}) });
    // Whatever else happened to the state meanwhile, the tokens just issued are the only live ones.
    return { ok: true, stored: await store.saveDurably(app, claimed, success(claimed.state), success) };
  }

  private async storeFailure(app: AppIdentity, claimed: StoredState, sent: string, clientSecretFingerprint: string, error: TokenRequestError): Promise<RefreshOutcome> {
    const { store } = this.deps;
    let base = claimed;
    if (error.code === 'invalid_grant') {
      // Another writer (a callback, another replica) may have replaced the token meanwhile.
      base = await store.loadLive(app);
      if (base.state.refreshToken !== sent) return { ok: false, stored: base, error };
    }
    const failed = (state: AppState) =>
      recordFailure({
        now: this.deps.now(),
        state,
        sentRefreshToken: sent,
        kind: error.code === 'aborted' ? 'network' : error.code,
        outcomeUnknown: error.delivery === 'unknown' || (error.code === 'malformed_response' && error.delivery === 'answered' && (error.status ?? 0) < 300),
        message: error.message,
        ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
        clientSecretFingerprint,
        backoffMs: this.deps.backoffMs,
      });
    return { ok: false, stored: await store.saveDurably(app, base, failed(base.state), failed), error };
  }
}
