import type { CompanyUser } from './company.ts';
import { randomToken } from './random.ts';

export interface AuthorizationCode {
  readonly clientId: string;
  /** The redirect_uri the code was issued for at /oauth/authorize. */
  readonly redirectUri: string;
  readonly expiresAt: number;
  /** The PKCE S256 code_challenge sent at /oauth/authorize, if any (RFC 7636 §4.4). */
  readonly codeChallenge: string | undefined;
  /** The company and user that consented: the grant the code is exchanged for belongs to them. */
  readonly owner: CompanyUser;
  /** Set once the code has been exchanged: the grant it created (RFC 6749 §4.1.2 reuse revokes it). */
  grantId: string | undefined;
}

/** Authorization codes: issued on "Allow", single-use, short-lived. */
export class CodeStore {
  readonly #codes = new Map<string, AuthorizationCode>();

  readonly #now: () => number;
  readonly #ttlMs: number;

  constructor(now: () => number, ttlMs: number) {
    this.#now = now;
    this.#ttlMs = ttlMs;
  }

  issue(clientId: string, redirectUri: string, owner: CompanyUser, codeChallenge?: string): string {
    const value = randomToken(24);
    this.#codes.set(value, { clientId, redirectUri, expiresAt: this.#now() + this.#ttlMs, codeChallenge, owner, grantId: undefined });
    return value;
  }

  find(value: string): AuthorizationCode | undefined {
    return this.#codes.get(value);
  }

  isExpired(code: AuthorizationCode): boolean {
    return this.#now() >= code.expiresAt;
  }
}
