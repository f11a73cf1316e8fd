import { randomUUID } from 'node:crypto';
import type { CompanyUser } from './company.ts';
import { randomToken } from './random.ts';

/** One install of an app: the tokens issued from one authorization, revoked together. */
export interface Grant {
  readonly id: string;
  readonly clientId: string;
  readonly scope: string;
  /** The company that installed the app: one grant per install, many per public app. */
  readonly companyId: number;
  /** The user who installed it (what `/users/me` answers as `data.id`). */
  readonly userId: number;
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

  create(clientId: string, scope: string, owner: CompanyUser): Grant {
    const grant: Grant = { id: randomUUID(), clientId, scope, companyId: owner.companyId, userId: owner.userId, revoked: false };
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

  /** Uninstall: revokes every live grant of the app in that company; returns how many. */
  revokeCompany(clientId: string, companyId: number): number {
    let revoked = 0;
    for (const grant of this.#grants.values()) {
      if (grant.clientId === clientId && grant.companyId === companyId && !grant.revoked) {
        grant.revoked = true;
        revoked += 1;
      }
    }
    return revoked;
  }

  /** The grant an access or refresh token value belongs to, live or not (RFC 7009 looks both up). */
  grantOfToken(value: string): Grant | undefined {
    const token = this.#refreshTokens.get(value) ?? this.#accessTokens.get(value);
    return token === undefined ? undefined : this.#grants.get(token.grantId);
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
