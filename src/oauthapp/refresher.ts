// One refresh, in the only safe order: claim (a write guarded by resourceVersion, so one sender
// per refresh-token value across all replicas), send, then store the answer before anything else.
//
// Waiting for the provider never holds a worker. A reconcile that wants a refresh asks for one of
// its provider's slots (--provider-concurrency) without waiting (`start`):
// - no slot free: nothing is written or sent; the app is parked in the limiter, which puts its key
//   back on the queue once a slot frees up, and the worker goes on to other apps (other tenants);
// - a slot: the claim is written right there, in the reconcile (one guarded write; its conflicts
//   and errors reach the runner's backoff as before). Then the request and the storing of its
//   answer run off the worker, still holding the slot, and the app's key is queued again when the
//   answer is stored (or given up), so the reconcile that follows writes the target and status.
// Why this keeps the grant-safety protocol whole:
// - claim before send: the request is sent only after the claim's write came back, by the same
//   code path as before; the slot is taken before the claim, so a claim is never written for a
//   request that would then wait (its holder's lease on the token, 2 × --token-request-timeout + 5 s,
//   covers the request and the store, not a queue);
// - answer stored first: the answer is written by the task that sent the request, before the slot
//   is released and before the app's key is queued for the reconcile that uses it; when that write
//   fails the answer is held in the store as before, and every later reconcile writes it first;
// - one sender: the work queue keeps one reconcile per app, but a reconcile may now run while the
//   app's request is out. The app is marked in flight from before its claim is written until its
//   answer is stored, and a reconcile of an app in flight makes no refresh decision at all: it does
//   not refresh, release or resolve the claim (it would otherwise see our own live claim, or after
//   a slow store a stale-looking one, and act on it). It only brings an existing target Secret up
//   to date (a new client secret propagates while a refresh is out).
import { setTimeout as sleep } from 'node:timers/promises';
import { isTokenRequestError, type TokenRequestError } from '../oauth/errors.ts';
import type { ResolvedProvider } from '../oauth/providers.ts';
import type { TokenSet } from '../oauth/token-response.ts';
import type { Slot } from '../controller/limiter.ts';
import { NotLeadingError } from '../controller/errors.ts';
import type { AppIdentity, RefreshClaim } from './state.ts';
import { fingerprint, type AppState } from './state.ts';
import type { StateStore, StoredState } from './state-store.ts';
import { claimRefresh, holdsClaim, mayHaveReachedProvider, recordFailure, recordRotateRequest, recordSuccess, releaseClaim, type RefreshReason } from './policies.ts';

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
  /**
   * Caps concurrent token requests per provider without waiting: a slot now, or undefined (then
   * `waiter` is woken when one frees up; see controller/limiter.ts).
   */
  slots: { tryAcquire(providerKey: string, waiter: string): Slot | undefined };
  /** Called once a request started by `start` has ended and its answer is stored (or given up). */
  onSettled?: (app: AppIdentity) => void;
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
  /** Each token request's result and duration, by provider (the token URL's host, as the limiter keys it). */
  onResult?: (result: 'success' | TokenRequestError['code'], seconds: number, provider: string) => void;
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
  /** Who waits for a provider slot (the app's queue key); woken when one frees up. */
  waiter: string;
  /** Where the outcome of the request, which ends after the reconcile did, is logged. */
  log?: RefreshLog | undefined;
}

/** The part of the logger a refresh reports to. */
export interface RefreshLog {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
  debug(object: Record<string, unknown>, message: string): void;
}

export type RefreshOutcome = { ok: true; stored: StoredState } | { ok: false; stored: StoredState; error: TokenRequestError };

export type RefreshStart =
  /** No slot of the provider is free: nothing written or sent; the waiter is woken when one frees. */
  | { started: false }
  /**
   * Claimed (`claimed` is the state with the claim) and sent off the worker. `answered` settles once
   * the answer is stored or given up: it rejects where a refresh used to throw after its claim
   * (the answer could not be stored, and is held for the next reconcile).
   */
  | { started: true; claimed: StoredState; answered: Promise<RefreshOutcome> };

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
  private readonly unsentClaims = new Map<string, { app: AppIdentity; claimedAt: Set<string> }>();
  /** Requests out (from before the claim until the answer is stored), by app uid. */
  private readonly requests = new Map<string, Promise<void>>();

  constructor(dependencies: RefresherDependencies) {
    this.deps = dependencies;
  }

  /** Whether `claim` is this process's own and no token request followed it. */
  claimNeverSent(app: AppIdentity, claim: RefreshClaim): boolean {
    return claim.holder === this.deps.holder && (this.unsentClaims.get(app.uid)?.claimedAt.has(claim.claimedAt) ?? false);
  }

  /**
   * Takes this process's claims that no request followed (a claim whose write committed with its
   * answer lost, or whose request the end of leadership stopped) out of the live state, so that the
   * next leader does not find them, let them expire and report the grant lost (RefreshInterrupted)
   * although the refresh token never left. Guarded writes, for a replica that stops leading once
   * its reconciles have ended. The apiserver is often failing just then (that is how leadership is
   * lost), so each claim is tried again, every `retryEveryMs`, until it is released or seen not to
   * be ours any more, or `deadline` passes; a claim still there then is left to expire as before.
   * Resolves with how many were released.
   */
  async releaseUnsentClaims(deadline: number, retryEveryMs = 500): Promise<number> {
    let released = 0;
    for (;;) {
      for (const [uid, { app }] of [...this.unsentClaims]) {
        try {
          const live = await this.deps.store.loadLive(app);
          const claim = live.state.record.claim;
          if (claim && this.claimNeverSent(app, claim)) {
            await this.deps.store.save(app, releaseClaim(live.state), live.resourceVersion);
            released += 1;
          }
          this.unsentClaims.delete(uid);
        } catch {
          // Unreachable apiserver or a conflict: tried again in the next round.
        }
      }
      // Wall-clock time, as the caller's deadline (a stopping process's budget) is.
      if (this.unsentClaims.size === 0 || Date.now() + retryEveryMs >= deadline) return released;
      await sleep(retryEveryMs);
    }
  }

  /** Whether a request of this app is out (claimed, sent or being stored): no refresh decision now. */
  inFlight(app: AppIdentity): boolean {
    return this.requests.has(app.uid);
  }

  /** Resolves once no request started here is still out (a stopping replica stores its answers first). */
  async idle(): Promise<void> {
    while (this.requests.size > 0) await Promise.allSettled([...this.requests.values()]);
  }

  /**
   * Takes a slot of the app's provider without waiting and, with one, claims the refresh here and
   * sends it off the worker (see the top of this file). The claim's errors (a conflict: another
   * writer got there first; a lost Lease) propagate: the caller requeues and re-reads.
   */
  async start(request: RefreshRequest): Promise<RefreshStart> {
    const { app } = request;
    if (this.requests.has(app.uid)) throw new Error(`a refresh of ${app.namespace}/${app.name} is already out`);
    const providerKey = new URL(request.provider.tokenURL).host;
    const slot = this.deps.slots.tryAcquire(providerKey, request.waiter);
    if (slot === undefined) return { started: false };
    let settle!: () => void;
    // In flight from before the claim is written: no reconcile may decide about the claim meanwhile.
    this.requests.set(app.uid, new Promise<void>((resolve) => (settle = resolve)));
    const end = () => {
      this.requests.delete(app.uid);
      slot.release();
      settle();
    };
    let claim: Claimed;
    try {
      claim = await this.claim(request);
    } catch (error) {
      end();
      throw error;
    }
    const answered = this.send(request, claim, providerKey);
    void answered
      .then(
        (outcome) => report(request, outcome),
        // Held for the next reconcile (a failed write), or no longer ours to store (the claim is gone).
        (error: unknown) => request.log?.warn(describe(error), 'token request ended without its answer stored'),
      )
      .finally(() => {
        end();
        this.deps.onSettled?.(app);
      });
    return { started: true, claimed: claim.claimed, answered };
  }

  /** The claim's guarded write; the request may reach the provider only after it came back. */
  private async claim({ app, stored, leadership }: Pick<RefreshRequest, 'app' | 'stored' | 'leadership'>): Promise<Claimed> {
    const refreshToken = stored.state.refreshToken;
    if (!refreshToken) throw new Error('refresh requested without a refresh token');
    if (leadership?.aborted) throw new NotLeadingError();
    const claimState = claimRefresh(stored.state, this.deps.holder, this.deps.now(), this.deps.requestTimeoutMs);
    const claim = claimState.record.claim;
    // Every claim tried is remembered until a request follows, not just the last: a claim whose
    // write committed but whose answer was lost may be followed by a retry whose write fails, and
    // the committed one must still be known as never sent.
    if (claim) {
      const unsent = this.unsentClaims.get(app.uid) ?? { app, claimedAt: new Set<string>() };
      this.unsentClaims.set(app.uid, unsent);
      unsent.claimedAt.add(claim.claimedAt);
    }
    const claimed = await this.deps.store.save(app, claimState, stored.resourceVersion);
    return { claimed, claim, refreshToken };
  }

  private async send({ app, provider, clientId, clientSecret, renewBeforeMs, rotateRequest }: RefreshRequest, { claimed, claim, refreshToken }: Claimed, providerKey: string): Promise<RefreshOutcome> {
    const { store, tokens, now, random, pickRefreshTime, minRefreshIntervalMs } = this.deps;
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
      this.deps.onResult?.(error.code, (now() - started) / 1000, providerKey);
      return this.storeFailure(app, claimed, claim, refreshToken, clientSecretFingerprint, error, rotateRequest);
    }
    // The answer's time, once: an answer stored late must not get a later expiry than it has.
    const answeredAt = now();
    this.deps.onResult?.('success', (answeredAt - started) / 1000, providerKey);

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
            description: error.description,
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

interface Claimed {
  claimed: StoredState;
  claim: RefreshClaim | undefined;
  refreshToken: string;
}

function report({ log, reason }: Pick<RefreshRequest, 'log' | 'reason'>, outcome: RefreshOutcome): void {
  if (!log) return;
  if (outcome.ok) {
    log.info({ reason, nextRefreshAt: outcome.stored.state.record.refreshAt }, 'refreshed the access token');
    return;
  }
  const { error } = outcome;
  log.warn({ reason, error: error.code, delivery: error.delivery, message: error.message }, 'token refresh failed');
  // What the provider or the connection said (certificate names, addresses): debug only.
  log.debug({ error: error.code, detail: error.detail }, 'token refresh failure detail');
}

/** The message and code only: an error object may carry request or response details. */
function describe(error: unknown): { error: string; code?: string } {
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' ? { error: message, code } : { error: message };
}
