// One refresh, in the only safe order: claim (a write guarded by resourceVersion, so one sender
// per refresh-token value across all replicas), send, then store the answer before anything else.
import { isTokenRequestError, type TokenRequestError } from '../oauth/errors.ts';
import type { ResolvedProvider } from '../oauth/providers.ts';
import type { TokenSet } from '../oauth/token-response.ts';
import { NotLeadingError } from '../controller/errors.ts';
import type { AppIdentity, RefreshClaim } from './state.ts';
import { fingerprint, type AppState } from './state.ts';
import type { StateStore, StoredState } from './state-store.ts';
import { claimRefresh, holdsClaim, mayHaveReachedProvider, recordFailure, recordRotateRequest, recordSuccess, type RefreshReason } from './policies.ts';

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
  /** --min-refresh-interval: stored refresh and retry times are never sooner after an answer. */
  minRefreshIntervalMs?: number;
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
  /** The oauthapp.dev/rotate value this refresh acts on, recorded with the answer. */
  rotateRequest?: string | undefined;
  /** Aborted when this replica stops leading: no claim is written after that. */
  leadership?: AbortSignal | undefined;
}

export type RefreshOutcome = { ok: true; stored: StoredState } | { ok: false; stored: StoredState; error: TokenRequestError };

/**
 * An answer the apiserver could not take is retried this long. Its write is guarded by our claim,
 * so it can only land while nobody has moved the state on; the bound is for memory.
 */
const heldRefreshAnswerMs = 24 * 3600_000;

export class Refresher {
  private readonly deps: RefresherDependencies;
  /**
   * Claims this process wrote (or tried to write) and has not followed with a request yet, by app
   * uid: if the claim's answer is lost, the retry finds its own claim here and releases it instead
   * of taking it for a request that may have reached the provider.
   */
  private readonly unsentClaims = new Map<string, Set<string>>();

  constructor(dependencies: RefresherDependencies) {
    this.deps = dependencies;
  }

  /** Whether `claim` is this process's own and no token request followed it. */
  claimNeverSent(app: AppIdentity, claim: RefreshClaim): boolean {
    return claim.holder === this.deps.holder && (this.unsentClaims.get(app.uid)?.has(claim.claimedAt) ?? false);
  }

  /** Conflicts (another writer got there first) propagate: the caller requeues and re-reads. */
  async refresh(request: RefreshRequest): Promise<RefreshOutcome> {
    return this.deps.limit(new URL(request.provider.tokenURL).host, () => this.claimAndSend(request));
  }

  private async claimAndSend({ app, stored, provider, clientId, clientSecret, renewBeforeMs, rotateRequest, leadership }: RefreshRequest): Promise<RefreshOutcome> {
    const { store, tokens, now, random, pickRefreshTime, minRefreshIntervalMs } = this.deps;
    const refreshToken = stored.state.refreshToken;
    if (!refreshToken) throw new Error('refresh requested without a refresh token');
    if (leadership?.aborted) throw new NotLeadingError();
    const claimState = claimRefresh(stored.state, this.deps.holder, now(), this.deps.requestTimeoutMs);
    const claim = claimState.record.claim;
    // Every claim tried is remembered until a request follows, not just the last: a claim whose
    // write committed but whose answer was lost may be followed by a retry whose write fails, and
    // the committed one must still be known as never sent.
    if (claim) this.unsentClaims.set(app.uid, (this.unsentClaims.get(app.uid) ?? new Set()).add(claim.claimedAt));
    const claimed = await store.save(app, claimState, stored.resourceVersion);
    const clientSecretFingerprint = fingerprint(clientSecret);

    // From here on the request may reach the provider. Older claims tried for this app can no longer
    // be live: the one just written replaced them.
    this.unsentClaims.delete(app.uid);
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
      return this.storeFailure(app, claimed, claim, refreshToken, clientSecretFingerprint, error, rotateRequest);
    }
    // The answer's time, once: an answer stored late must not get a later expiry than it has.
    const answeredAt = now();
    this.deps.onResult?.('success', (answeredAt - started) / 1000);

    const success = (state: AppState) =>
      holdsClaim(state, claim)
        ? recordRotateRequest(
            recordSuccess({ now: answeredAt, state, sentRefreshToken: refreshToken, response, renewBeforeMs, clientSecretFingerprint, random, ...(pickRefreshTime ? { pickRefreshTime } : {}), minRefreshIntervalMs }),
            rotateRequest,
          )
        : undefined;
    return { ok: true, stored: await store.saveAnswer(app, claimed, success, heldRefreshAnswerMs) };
  }

  private async storeFailure(
    app: AppIdentity,
    claimed: StoredState,
    claim: RefreshClaim | undefined,
    sent: string,
    clientSecretFingerprint: string,
    error: TokenRequestError,
    rotateRequest: string | undefined,
  ): Promise<RefreshOutcome> {
    const { store } = this.deps;
    let base = claimed;
    if (error.code === 'invalid_grant') {
      // Another writer (a callback, another replica) may have replaced the token meanwhile.
      base = await store.loadLive(app);
      if (base.state.refreshToken !== sent) return { ok: false, stored: base, error };
    }
    const answeredAt = this.deps.now();
    const failed = (state: AppState) =>
      holdsClaim(state, claim)
        ? recordRotateRequest(recordFailure({
            now: answeredAt,
            state,
            sentRefreshToken: sent,
            kind: error.code === 'aborted' ? 'network' : error.code,
            outcomeUnknown: mayHaveReachedProvider(error),
            message: error.message,
            ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
            clientSecretFingerprint,
            backoffMs: this.deps.backoffMs,
            rotatedRefreshToken: error.refreshToken,
            minRefreshIntervalMs: this.deps.minRefreshIntervalMs,
          }), rotateRequest)
        : undefined;
    return { ok: false, stored: await store.saveAnswer(app, base, failed, heldRefreshAnswerMs), error };
  }
}
