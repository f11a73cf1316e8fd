import { clientCheckTokenPrefix } from '../oauth/client-check.ts';
import type { OAuthErrorCode } from './errors.ts';
import type { Fault } from './faults.ts';

/** How one token request ended: success, an RFC 6749 error code, or an injected fault. */
export type TokenOutcome = 'ok' | OAuthErrorCode | Exclude<Fault['kind'], 'none'>;

/** One credential value as it arrived at /oauth/token, and what became of the request. */
export interface Presentation {
  readonly value: string;
  /** The client id the request claimed (authenticated or not). */
  readonly clientId: string | undefined;
  readonly outcome: TokenOutcome;
  /** The sandbox clock (ms) when the request was answered. */
  readonly at: number;
  /** With an authorization code: the PKCE code_verifier sent with it, if any. */
  readonly codeVerifier?: string;
}

export interface SandboxStats {
  readonly tokenRequests: number;
  /** Counts by `grant_type` (as sent; `(none)` when absent), then by outcome. */
  readonly byGrant: Readonly<Record<string, Readonly<Partial<Record<TokenOutcome, number>>>>>;
  /**
   * Every refresh-token value presented, in order, including refused and faulted requests; client
   * checks (a token no provider issued, oauth/client-check.ts) are in `clientChecks` instead.
   */
  readonly presentedRefreshTokens: readonly Presentation[];
  /** Every client check (a refresh request whose token starts with clientCheckTokenPrefix), in order. */
  readonly clientChecks: readonly Presentation[];
  /** Every authorization code presented, in order. */
  readonly presentedAuthorizationCodes: readonly Presentation[];
  /**
   * Revocation requests (POST /oauth/revoke) answered 200 to an authenticated client, whether the
   * token was live, already revoked or unknown (RFC 7009 §2.2 answers them alike). Refused
   * requests (bad client, no token) are not counted; neither are uninstalls done through the admin.
   */
  readonly revocations: number;
}

export interface TokenRequestRecord {
  readonly grantType: string | undefined;
  readonly clientId: string | undefined;
  readonly refreshToken: string | undefined;
  readonly code: string | undefined;
  readonly codeVerifier?: string | undefined;
  readonly outcome: TokenOutcome;
}

/** Observation of the token and revocation endpoints, for tests that assert what a client sent. */
export class StatsRecorder {
  #total = 0;
  readonly #byGrant = new Map<string, Map<TokenOutcome, number>>();
  readonly #refreshTokens: Presentation[] = [];
  readonly #clientChecks: Presentation[] = [];
  readonly #codes: Presentation[] = [];
  #revocations = 0;

  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  record(request: TokenRequestRecord): void {
    this.#total += 1;
    const grant = request.grantType ?? '(none)';
    const outcomes = this.#byGrant.get(grant) ?? new Map<TokenOutcome, number>();
    outcomes.set(request.outcome, (outcomes.get(request.outcome) ?? 0) + 1);
    this.#byGrant.set(grant, outcomes);
    const base = { clientId: request.clientId, outcome: request.outcome, at: this.#now() };
    if (request.refreshToken !== undefined) {
      const presentations = request.refreshToken.startsWith(clientCheckTokenPrefix) ? this.#clientChecks : this.#refreshTokens;
      presentations.push({ ...base, value: request.refreshToken });
    }
    if (request.code !== undefined) {
      this.#codes.push({ ...base, value: request.code, ...(request.codeVerifier === undefined ? {} : { codeVerifier: request.codeVerifier }) });
    }
  }

  recordRevocation(): void {
    this.#revocations += 1;
  }

  snapshot(): SandboxStats {
    return {
      tokenRequests: this.#total,
      byGrant: Object.fromEntries(
        [...this.#byGrant].map(([grant, outcomes]) => [grant, Object.fromEntries(outcomes)]),
      ),
      presentedRefreshTokens: [...this.#refreshTokens],
      clientChecks: [...this.#clientChecks],
      presentedAuthorizationCodes: [...this.#codes],
      revocations: this.#revocations,
    };
  }
}
