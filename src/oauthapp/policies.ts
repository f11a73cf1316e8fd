// Pure decisions about token requests, in the order they are asked (as cert-manager's policy
// chains): what a refresh attempt should do, and what a failure or success means for the state.
import type { TokenRequestError } from '../oauth/errors.ts';
import type { ClientSecretLook } from './client-secret-checks.ts';
import type { AppState, Bookkeeping, FailureKind, RefreshClaim } from './state.ts';
import { fingerprint } from './state.ts';
import { refreshTime } from './schedule.ts';

/** Whether a person has to authorize the app (no refresh token the operator may still send). */
export function needsAuthorization(state: AppState): boolean {
  return !state.refreshToken || state.record.deadRefreshTokenFingerprint === fingerprint(state.refreshToken);
}

export type RefreshReason = 'initial' | 'due' | 'rotate-request' | 'client-secret-changed' | 'retry';

export type BlockedReason = 'client-secret-missing' | 'no-refresh-token' | 'refresh-token-dead';

export type RefreshDecision =
  | { action: 'refresh'; reason: RefreshReason }
  | { action: 'wait'; until: number; reason: 'scheduled' | 'backoff' | 'retry-after' | 'claimed-elsewhere' | 'min-refresh-interval' }
  | { action: 'blocked'; reason: BlockedReason }
  /** A claim's holder never reported back: decide what its request means before anything else. */
  | { action: 'resolve-stale-claim'; claim: RefreshClaim }
  /** Our own claim, written (or maybe written) but never followed by a request: take it back. */
  | { action: 'release-claim' };

export interface RefreshPolicyInput {
  now: number;
  state: AppState;
  /** Fingerprint of the client secret now in the source Secret; undefined when it cannot be read. */
  clientSecretFingerprint: string | undefined;
  /** A new oauthapp.dev/rotate value that has not been acted on. */
  rotateRequested: boolean;
  /**
   * Whether this process knows that the claim in the state is its own and that no request followed
   * it (the claim's write may have committed although its answer was lost).
   */
  claimNeverSent?: (claim: RefreshClaim) => boolean;
  /**
   * --min-refresh-interval: no token request sooner than this after the last one answered, whatever
   * asks for it (the schedule, a retry, a new client secret, a rotate request). Default 0.
   */
  minRefreshIntervalMs?: number;
}

/** When the last token request for this app was answered (success or failure), if known. */
export function lastTokenRequestAt(record: Bookkeeping): number | undefined {
  const times = [record.lastRefreshTime, record.failure?.at].filter((at): at is string => at !== undefined).map((at) => Date.parse(at)).filter(Number.isFinite);
  return times.length === 0 ? undefined : Math.max(...times);
}

/** The earliest time --min-refresh-interval allows the next token request. */
export function earliestNextRequest(record: Bookkeeping, minRefreshIntervalMs: number | undefined): number {
  const last = lastTokenRequestAt(record);
  return last === undefined || !minRefreshIntervalMs ? Number.NEGATIVE_INFINITY : last + minRefreshIntervalMs;
}

/**
 * Whether the provider's access tokens live shorter than --min-refresh-interval: the operator then
 * refreshes once per interval and does not chase them, so the token is expired part of the time.
 */
export function tokenLifetimeTooShort(state: AppState, minRefreshIntervalMs: number | undefined): { lifetimeMs: number } | undefined {
  if (!minRefreshIntervalMs || !state.tokens || !state.record.issuedAt) return undefined;
  const lifetimeMs = Date.parse(state.tokens.expiresAt) - Date.parse(state.record.issuedAt);
  return Number.isFinite(lifetimeMs) && lifetimeMs < minRefreshIntervalMs ? { lifetimeMs } : undefined;
}

export function decideRefresh({ now, state, clientSecretFingerprint, rotateRequested, claimNeverSent, minRefreshIntervalMs }: RefreshPolicyInput): RefreshDecision {
  const { record } = state;
  if (clientSecretFingerprint === undefined) return { action: 'blocked', reason: 'client-secret-missing' };
  if (!state.refreshToken) return { action: 'blocked', reason: 'no-refresh-token' };
  if (record.deadRefreshTokenFingerprint === fingerprint(state.refreshToken)) return { action: 'blocked', reason: 'refresh-token-dead' };

  if (record.claim && claimNeverSent?.(record.claim)) return { action: 'release-claim' };
  if (record.claim) {
    const claimExpiry = Date.parse(record.claim.expiresAt);
    if (claimExpiry > now) return { action: 'wait', until: claimExpiry, reason: 'claimed-elsewhere' };
    return { action: 'resolve-stale-claim', claim: record.claim };
  }

  const failure = record.failure;
  const secretChanged = failure?.clientSecretFingerprint !== undefined && failure.clientSecretFingerprint !== clientSecretFingerprint;
  // The provider asked us to wait: neither ops nor a new secret make that request welcome earlier.
  if ((failure?.kind === 'rate_limited' || failure?.providerAskedToWait) && failure.retryAt && Date.parse(failure.retryAt) > now) {
    return { action: 'wait', until: Date.parse(failure.retryAt), reason: 'retry-after' };
  }
  // The floor on refresh frequency holds for every reason, a person's rotate request included: it
  // is deferred to the end of the interval, not dropped.
  const notBefore = earliestNextRequest(record, minRefreshIntervalMs);
  const refresh = (reason: RefreshReason): RefreshDecision => (notBefore > now ? { action: 'wait', until: notBefore, reason: 'min-refresh-interval' } : { action: 'refresh', reason });
  if (rotateRequested) return refresh('rotate-request');
  // invalid_client backs off like any failure: when ops update the Secret before the provider's
  // portal, a later retry succeeds once the portal catches up; a new secret retries at once.
  if (failure?.retryAt && Date.parse(failure.retryAt) > now) {
    return secretChanged ? refresh('client-secret-changed') : { action: 'wait', until: Date.parse(failure.retryAt), reason: 'backoff' };
  }
  if (failure) return refresh('retry');
  if (!state.tokens) return refresh('initial');
  const refreshAt = record.refreshAt ? Date.parse(record.refreshAt) : now;
  return refreshAt <= now ? refresh('due') : { action: 'wait', until: refreshAt, reason: 'scheduled' };
}

/**
 * A request may have reached the provider without its answer being stored. If this provider
 * keeps refresh tokens across refreshes, sending it again is harmless; if it rotates them (or we
 * do not know yet), a resend could be a replay that revokes the whole grant, so the token is
 * given up and a person re-authorizes — the access token already issued stays in place.
 */
export function mayResendAfterUnknownOutcome(record: Bookkeeping): boolean {
  return record.rotatesRefreshTokens === false;
}

/**
 * Whether a failed request may have been processed by the provider although no usable answer came
 * back: no answer at all, a 2xx we could not read, or a 5xx — a gateway in front of the provider
 * (502, 504, Cloudflare's 520-527) answers that way after the provider got the request, and a
 * provider's own 500 can come after it rotated the token.
 */
export function mayHaveReachedProvider(error: Pick<TokenRequestError, 'delivery' | 'code' | 'status'>): boolean {
  if (error.delivery === 'unknown') return true;
  if (error.delivery !== 'answered' || error.status === undefined) return false;
  return error.status >= 500 || (error.code === 'malformed_response' && error.status < 300);
}

export interface FailureInput {
  now: number;
  state: AppState;
  /** The refresh token that was sent. */
  sentRefreshToken: string;
  kind: Exclude<FailureKind, 'interrupted'>;
  /** Whether the request may have reached the provider without an answer coming back. */
  outcomeUnknown: boolean;
  message: string;
  /** The provider's description of the failure, when it gave one. */
  description?: string | undefined;
  retryAfterMs?: number;
  clientSecretFingerprint: string;
  backoffMs: (attempt: number) => number;
  /** A refresh token an otherwise unusable 2xx carried: it replaces the sent one. */
  rotatedRefreshToken?: string | undefined;
  /** --min-refresh-interval: the retry is never sooner. */
  minRefreshIntervalMs?: number | undefined;
}

const retryAfterDefaultMs = 60_000;

/** The state after a failed token request. Tokens already held are never touched. */
export function recordFailure(input: FailureInput): AppState {
  const { now, state, kind, message, clientSecretFingerprint } = input;
  const at = new Date(now).toISOString();
  const said = input.description === undefined ? {} : { description: input.description };
  const { claim: _claim, ...record } = state.record;
  const attempts = (record.failure?.kind === kind ? record.failure.attempts : 0) + 1;
  const sentFingerprint = fingerprint(input.sentRefreshToken);

  if (kind === 'invalid_grant' || (input.outcomeUnknown && !input.rotatedRefreshToken && !mayResendAfterUnknownOutcome(record))) {
    return {
      ...state,
      record: {
        ...record,
        deadRefreshTokenFingerprint: sentFingerprint,
        failure: { kind: kind === 'invalid_grant' ? kind : 'interrupted', message, ...said, at, attempts: 1 },
      },
    };
  }
  // Retry-After (429, and 503 from a provider that keeps its tokens) is the provider's word.
  const askedToWait = input.retryAfterMs !== undefined;
  const delay = Math.max(input.minRefreshIntervalMs ?? 0, input.retryAfterMs ?? (kind === 'rate_limited' ? retryAfterDefaultMs : cappedByExpiry(input.backoffMs(attempts), now, state)));
  return {
    ...state,
    ...(input.rotatedRefreshToken ? { refreshToken: input.rotatedRefreshToken } : {}),
    record: {
      ...record,
      ...(input.rotatedRefreshToken ? { rotatesRefreshTokens: input.rotatedRefreshToken !== input.sentRefreshToken } : {}),
      failure: {
        kind,
        message,
        ...said,
        at,
        attempts,
        retryAt: new Date(now + delay).toISOString(),
        clientSecretFingerprint,
        ...(askedToWait ? { providerAskedToWait: true } : {}),
      },
    },
  };
}

/** Backoff never sleeps past the token's expiry while a token is still good. */
function cappedByExpiry(delayMs: number, now: number, state: AppState): number {
  if (!state.tokens) return delayMs;
  const untilExpiry = Date.parse(state.tokens.expiresAt) - now;
  return untilExpiry > 0 ? Math.min(delayMs, untilExpiry) : delayMs;
}

/**
 * Records a rotate request as acted on, in the same write as the provider's answer to it: whatever
 * fails after that write (a target conflict, a restart refused, a lost Lease), the request is not
 * acted on twice. A request whose answer never got stored (a crash) stays pending.
 */
export function recordRotateRequest(state: AppState, rotateRequest: string | undefined): AppState {
  return rotateRequest === undefined ? state : { ...state, record: { ...state.record, lastRotateRequest: rotateRequest } };
}

/** The state without our claim that was never followed by a request. */
export function releaseClaim(state: AppState): AppState {
  const { claim: _claim, ...record } = state.record;
  return { ...state, record };
}

/** Whether the live state still carries exactly this claim (an answer to it may be stored). */
export function holdsClaim(state: AppState, claim: RefreshClaim | undefined): boolean {
  const live = state.record.claim;
  return claim !== undefined && live !== undefined && live.holder === claim.holder && live.claimedAt === claim.claimedAt && live.refreshTokenFingerprint === claim.refreshTokenFingerprint;
}

export function recordStaleClaim(state: AppState, now: number): AppState {
  const { claim, ...record } = state.record;
  if (!claim) return state;
  if (mayResendAfterUnknownOutcome(record)) return { ...state, record };
  return {
    ...state,
    record: {
      ...record,
      deadRefreshTokenFingerprint: claim.refreshTokenFingerprint,
      failure: {
        kind: 'interrupted',
        message: 'a refresh was interrupted after it may have reached the provider, which rotates refresh tokens; re-authorize the app',
        at: new Date(now).toISOString(),
        attempts: 1,
      },
    },
  };
}

export interface TokenResponse {
  accessToken: string;
  tokenType: string;
  refreshToken?: string;
  expiresInSeconds: number;
  scope?: string;
  apiDomain?: string;
}

export interface SuccessInput {
  now: number;
  state: AppState;
  /** The refresh token sent, or undefined for an authorization-code exchange. */
  sentRefreshToken: string | undefined;
  response: TokenResponse;
  renewBeforeMs: number | undefined;
  clientSecretFingerprint: string;
  random: () => number;
  /** Chooses the refresh time inside the jitter window (see refresh-slots.ts); default random. */
  pickRefreshTime?: (earliest: number, latest: number) => number;
  /** --min-refresh-interval: the next refresh is never sooner, however short the token lives. */
  minRefreshIntervalMs?: number | undefined;
}

/** The state after a successful token request: the newest tokens and the next refresh time. */
export function recordSuccess({ now, state, sentRefreshToken, response, renewBeforeMs, clientSecretFingerprint, random, pickRefreshTime, minRefreshIntervalMs }: SuccessInput): AppState {
  const expiresAt = now + response.expiresInSeconds * 1000;
  const { claim: _claim, failure: _failure, deadRefreshTokenFingerprint: _dead, rejectedClientSecret: _rejected, ...record } = state.record;
  // A code exchange that brings no refresh token keeps the stored one only if it is still usable:
  // clearing the dead marker below must not make a refused (or possibly consumed) token sendable.
  const storedUsable = state.refreshToken !== undefined && state.record.deadRefreshTokenFingerprint !== fingerprint(state.refreshToken);
  const refreshToken = response.refreshToken ?? sentRefreshToken ?? (storedUsable ? state.refreshToken : undefined);
  const rotates = sentRefreshToken === undefined ? record.rotatesRefreshTokens : response.refreshToken !== undefined && response.refreshToken !== sentRefreshToken;
  const scope = response.scope ?? state.tokens?.scope;
  const apiDomain = response.apiDomain ?? state.tokens?.apiDomain;
  return {
    ...(refreshToken ? { refreshToken } : {}),
    tokens: {
      accessToken: response.accessToken,
      tokenType: response.tokenType,
      expiresAt: new Date(expiresAt).toISOString(),
      ...(scope !== undefined ? { scope } : {}),
      ...(apiDomain !== undefined ? { apiDomain } : {}),
    },
    record: {
      ...record,
      issuedAt: new Date(now).toISOString(),
      lastRefreshTime: new Date(now).toISOString(),
      refreshAt: new Date(
        Math.max(
          now + (minRefreshIntervalMs ?? 0),
          refreshTime({ issuedAt: now, expiresAt, ...(renewBeforeMs !== undefined ? { renewBeforeMs } : {}), random, ...(pickRefreshTime ? { pick: pickRefreshTime } : {}) }),
        ),
      ).toISOString(),
      verifiedClientSecretFingerprint: clientSecretFingerprint,
      ...(rotates !== undefined ? { rotatesRefreshTokens: rotates } : {}),
    },
  };
}

/**
 * A client check's verdict on the secret with `clientSecretFingerprint` (client-secret-checks.ts).
 * It never touches the grant or the refresh schedule: a check is not a refresh, and a refresh
 * goes on whatever a check said (if the provider refuses the client then, that is recorded too).
 */
export function recordClientCheck(state: AppState, clientSecretFingerprint: string, check: ClientSecretLook, now: number): AppState {
  const { rejectedClientSecret: _rejected, ...record } = state.record;
  if (check.verdict === 'accepted') return { ...state, record: { ...record, verifiedClientSecretFingerprint: clientSecretFingerprint } };
  if (check.verdict === 'rejected') {
    const description = check.description === undefined ? {} : { description: check.description };
    return { ...state, record: { ...record, rejectedClientSecret: { fingerprint: clientSecretFingerprint, at: new Date(now).toISOString(), ...description } } };
  }
  return state;
}

/** Whether the provider has given no verdict yet on the secret with `clientSecretFingerprint`. */
export function clientSecretUnchecked(state: AppState, clientSecretFingerprint: string): boolean {
  const { verifiedClientSecretFingerprint, rejectedClientSecret, failure } = state.record;
  if (verifiedClientSecretFingerprint === clientSecretFingerprint || rejectedClientSecret?.fingerprint === clientSecretFingerprint) return false;
  return !(failure?.kind === 'invalid_client' && failure.clientSecretFingerprint === clientSecretFingerprint);
}

/** The claim written before sending: only its holder may send this refresh token. */
export function claimRefresh(state: AppState, holder: string, now: number, requestTimeoutMs: number): AppState {
  if (!state.refreshToken) return state;
  return {
    ...state,
    record: {
      ...state.record,
      claim: {
        holder,
        refreshTokenFingerprint: fingerprint(state.refreshToken),
        claimedAt: new Date(now).toISOString(),
        // A live holder has finished its request by then (got's timeout covers the whole request)
        // and has had time to store the answer; past it, the holder is presumed gone.
        expiresAt: new Date(now + 2 * requestTimeoutMs + 5_000).toISOString(),
      },
    },
  };
}

/** Plants spec.refreshTokenRef's value when the state has no usable refresh token of its own. */
export function seedRefreshToken(state: AppState, seed: string | undefined): AppState {
  if (!seed) return state;
  const seedFingerprint = fingerprint(seed);
  if (state.record.seedFingerprint === seedFingerprint) return state;
  const current = state.refreshToken;
  const currentUsable = current !== undefined && state.record.deadRefreshTokenFingerprint !== fingerprint(current);
  if (currentUsable) return state;
  const { failure: _failure, ...record } = state.record;
  return { ...state, refreshToken: seed, record: { ...record, seedFingerprint } };
}

/**
 * A company installed (again): its new grant replaces whatever the installation held, including a
 * claim (that refresh's answer then no longer applies) and an uninstall.
 */
export function recordInstall(granted: AppState, install: { at: number; userID?: string | undefined }): AppState {
  return { ...granted, record: { ...granted.record, installation: { installedAt: new Date(install.at).toISOString(), ...(install.userID !== undefined ? { userID: install.userID } : {}) } } };
}

/**
 * The provider says the company uninstalled at `at` (its clock): tokens go, the install's facts
 * stay. undefined when an install after `at` already replaced the grant (a late or replayed
 * uninstall) or the uninstall is recorded already.
 */
export function recordUninstall(state: AppState, at: number): AppState | undefined {
  const installation = state.record.installation;
  if (installation && Date.parse(installation.installedAt) > at) return undefined;
  if (installation?.uninstalledAt !== undefined && Date.parse(installation.uninstalledAt) >= at) return undefined;
  const { claim: _claim, failure: _failure, deadRefreshTokenFingerprint: _dead, refreshAt: _refreshAt, ...record } = state.record;
  const installedAt = installation?.installedAt ?? new Date(at).toISOString();
  return { record: { ...record, installation: { ...installation, installedAt, uninstalledAt: new Date(at).toISOString() } } };
}

type ClientSecretHistory = Bookkeeping['clientSecretHistory'];

/** The history with `current` as the client secret now in use: the one it replaces becomes the previous. */
export function rememberClientSecret(history: ClientSecretHistory, current: string | undefined, now: number): ClientSecretHistory {
  if (current === undefined || history?.current === current) return history;
  return history ? { current, previous: history.current, replacedAt: new Date(now).toISOString() } : { current };
}
