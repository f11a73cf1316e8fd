import { createHash, timingSafeEqual } from 'node:crypto';
import type { Client } from './clients.ts';
import type { CodeStore } from './codes.ts';
import type { CompanyUser } from './company.ts';
import { invalidGrant } from './errors.ts';
import type { Grant, GrantStore } from './grants.ts';

/** The token endpoint's success body, minus `api_domain` (the route knows the host). */
export interface IssuedTokens {
  access_token: string;
  token_type: 'Bearer';
  refresh_token?: string;
  scope: string;
  expires_in: number;
}

export interface TokenPolicy {
  readonly expiresInSeconds: number;
  /** Every refresh returns a new refresh token and the presented one dies. */
  readonly rotateRefreshTokens: boolean;
  /** Without rotation: leave `refresh_token` out of refresh responses instead of repeating it. */
  readonly omitUnchangedRefreshToken: boolean;
  /** Presenting an exchanged refresh token or a used code revokes the whole grant. */
  readonly revokeGrantOnReplay: boolean;
}

const verifierFormat = /^[A-Za-z0-9._~-]{43,128}$/;

/**
 * RFC 7636 §4.6: the verifier must hash to the code's S256 challenge. A verifier for a code issued
 * without a challenge is refused too (RFC 9700 §2.1.1: it would hide a PKCE downgrade).
 */
const checkCodeVerifier = (codeChallenge: string | undefined, codeVerifier: string | undefined): void => {
  if (codeChallenge === undefined) {
    if (codeVerifier !== undefined) throw invalidGrant('code_verifier was sent, but the authorization request had no code_challenge');
    return;
  }
  if (codeVerifier === undefined) throw invalidGrant('code_verifier is missing: the authorization request had a code_challenge');
  if (!verifierFormat.test(codeVerifier)) throw invalidGrant('code_verifier is invalid');
  const computed = Buffer.from(createHash('sha256').update(codeVerifier, 'ascii').digest('base64url'));
  const expected = Buffer.from(codeChallenge);
  if (computed.length !== expected.length || !timingSafeEqual(computed, expected)) {
    throw invalidGrant('code_verifier does not match the code_challenge');
  }
};

/** The two grant types' rules (RFC 6749 §4.1.3 and §6), with Pipedrive's error wording. */
export class TokenService {
  readonly #codes: CodeStore;
  readonly #grants: GrantStore;
  readonly #policy: TokenPolicy;

  constructor(codes: CodeStore, grants: GrantStore, policy: TokenPolicy) {
    this.#codes = codes;
    this.#grants = grants;
    this.#policy = policy;
  }

  exchangeCode(client: Client, codeValue: string, redirectUri: string, codeVerifier?: string): IssuedTokens {
    const code = this.#codes.find(codeValue);
    if (code === undefined || code.clientId !== client.clientId) {
      throw invalidGrant('authorization_code is invalid');
    }
    if (code.grantId !== undefined) {
      if (this.#policy.revokeGrantOnReplay) this.#grants.revoke(code.grantId);
      throw invalidGrant('authorization_code is invalid');
    }
    if (this.#codes.isExpired(code)) throw invalidGrant('authorization_code has expired');
    if (redirectUri !== code.redirectUri || redirectUri !== client.redirectUri) {
      throw invalidGrant('redirect_uri is invalid');
    }
    checkCodeVerifier(code.codeChallenge, codeVerifier);
    const grant = this.#grants.create(client.clientId, client.scope, code.owner);
    code.grantId = grant.id;
    return this.#issue(grant, this.#grants.issueRefreshToken(grant.id));
  }

  refresh(client: Client, refreshTokenValue: string): IssuedTokens {
    const token = this.#grants.refreshToken(refreshTokenValue);
    const grant = token === undefined ? undefined : this.#grants.grant(token.grantId);
    if (token === undefined || grant === undefined || grant.clientId !== client.clientId) {
      throw invalidGrant('refresh_token is invalid');
    }
    if (token.exchanged) {
      if (this.#policy.revokeGrantOnReplay) this.#grants.revoke(grant.id);
      throw invalidGrant('refresh_token is invalid');
    }
    if (grant.revoked || this.#grants.isExpired(token)) throw invalidGrant('refresh_token is invalid');

    if (this.#policy.rotateRefreshTokens) {
      token.exchanged = true;
      return this.#issue(grant, this.#grants.issueRefreshToken(grant.id));
    }
    this.#grants.touch(token);
    return this.#issue(grant, this.#policy.omitUnchangedRefreshToken ? undefined : refreshTokenValue);
  }

  /** A refresh token as if the app had just been installed by `owner` (for tests and demos). */
  bootstrapRefreshToken(client: Client, owner: CompanyUser): string {
    const grant = this.#grants.create(client.clientId, client.scope, owner);
    return this.#grants.issueRefreshToken(grant.id);
  }

  /**
   * RFC 7009 §2.1: revokes the grant behind an access or refresh token of `client`, taking all its
   * tokens with it (the hint is not needed: the server looks both kinds up). A token that is
   * unknown, already revoked or issued to another app changes nothing and is not an error (§2.2),
   * so that the answer does not tell a client whether another app's token exists. Returns whether
   * a live grant was revoked.
   */
  revoke(client: Client, tokenValue: string): boolean {
    const grant = this.#grants.grantOfToken(tokenValue);
    if (grant === undefined || grant.clientId !== client.clientId || grant.revoked) return false;
    this.#grants.revoke(grant.id);
    return true;
  }

  #issue(grant: Grant, refreshToken: string | undefined): IssuedTokens {
    return {
      access_token: this.#grants.issueAccessToken(grant.id),
      token_type: 'Bearer',
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
      scope: grant.scope,
      expires_in: this.#policy.expiresInSeconds,
    };
  }
}
