import { randomUUID } from 'node:crypto';
import { randomToken } from './random.ts';

/** One install of an app: the tokens issued from one authorization, revoked together. */
export interface Grant {
  readonly id: string;
  readonly clientId: string;
  readonly scope: string;
  revoked: boolean;
}

interface AccessToken {
  readonly grantId: string;
  readonly expiresAt: number;
}

export interface RefreshToken {
  readonly grantId: string;
  /** Dead after this long unused (Pipedrive: reportedly 60 days). */
  expiresAt: number;
  /** True once presented at the token endpoint with rotation on: it never works again. */
  exchanged: boolean;
}

export interface GrantLifetimes {
  readonly accessTokenTtlMs: number;
  readonly refreshTokenIdleTtlMs: number;
}

/** Grants and the access and refresh tokens that belong to them. */
export class GrantStore {
  readonly #grants = new Map<string, Grant>();
  readonly #accessTokens = new Map<string, AccessToken>();
  readonly #refreshTokens = new Map<string, RefreshToken>();

  readonly #now: () => number;
  readonly #lifetimes: GrantLifetimes;

  constructor(now: () => number, lifetimes: GrantLifetimes) {
    this.#now = now;
    this.#lifetimes = lifetimes;
  }

  create(clientId: string, scope: string): Grant {
    const grant: Grant = { id: randomUUID(), clientId, scope, revoked: false };
    this.#grants.set(grant.id, grant);
    return grant;
  }

  grant(grantId: string): Grant | undefined {
    return this.#grants.get(grantId);
  }

  revoke(grantId: string): void {
    const grant = this.#grants.get(grantId);
    if (grant !== undefined) grant.revoked = true;
  }

  issueAccessToken(grantId: string): string {
    const value = randomToken();
    this.#accessTokens.set(value, { grantId, expiresAt: this.#now() + this.#lifetimes.accessTokenTtlMs });
    return value;
  }

  issueRefreshToken(grantId: string): string {
    const value = randomToken();
    this.#refreshTokens.set(value, {
      grantId,
      expiresAt: this.#now() + this.#lifetimes.refreshTokenIdleTtlMs,
      exchanged: false,
    });
    return value;
  }

  refreshToken(value: string): RefreshToken | undefined {
    return this.#refreshTokens.get(value);
  }

  isExpired(token: RefreshToken): boolean {
    return this.#now() >= token.expiresAt;
  }

  /** A refresh token that stays valid after use (rotation off) lives another idle period. */
  touch(token: RefreshToken): void {
    token.expiresAt = this.#now() + this.#lifetimes.refreshTokenIdleTtlMs;
  }

  /** The grant behind an access token that is unexpired and unrevoked; otherwise undefined. */
  liveGrantOfAccessToken(value: string): Grant | undefined {
    const token = this.#accessTokens.get(value);
    if (token === undefined || this.#now() >= token.expiresAt) return undefined;
    const grant = this.#grants.get(token.grantId);
    return grant === undefined || grant.revoked ? undefined : grant;
  }
}
