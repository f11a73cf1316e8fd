import type { ClientAuthenticationMethod } from '../api/oauthapp.ts';
import { formUrlEncode } from './form-encoding.ts';

export interface RefreshTokenGrant {
  readonly type: 'refresh_token';
  readonly refreshToken: string;
}

export interface AuthorizationCodeGrant {
  readonly type: 'authorization_code';
  readonly code: string;
  readonly redirectURI: string;
  /** PKCE (RFC 7636 §4.5): the verifier whose S256 challenge went out on the authorize URL. */
  readonly codeVerifier?: string | undefined;
}

export type TokenGrant = RefreshTokenGrant | AuthorizationCodeGrant;

export interface TokenRequest {
  readonly tokenURL: string;
  readonly clientAuthentication: ClientAuthenticationMethod;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly grant: TokenGrant;
}

/** A token request as it goes on the wire. */
export interface EncodedTokenRequest {
  /** `application/x-www-form-urlencoded`. */
  readonly body: string;
  readonly authorization: string | undefined;
  /** Every secret value the request carries, in the forms it carries them: kept out of errors. */
  readonly secrets: readonly string[];
}

const grantParams = (grant: TokenGrant): [string, string][] => {
  switch (grant.type) {
    case 'refresh_token':
      return [
        ['grant_type', 'refresh_token'],
        ['refresh_token', grant.refreshToken],
      ];
    case 'authorization_code':
      return [
        ['grant_type', 'authorization_code'],
        ['code', grant.code],
        ['redirect_uri', grant.redirectURI],
        ...(grant.codeVerifier === undefined ? [] : [['code_verifier', grant.codeVerifier] as [string, string]]),
      ];
  }
};

const grantSecrets = (grant: TokenGrant): string[] =>
  grant.type === 'refresh_token' ? [grant.refreshToken] : [grant.code, ...(grant.codeVerifier === undefined ? [] : [grant.codeVerifier])];

/** RFC 6749 §2.3.1: both parts form-encoded before they are joined and base64-encoded. */
export const basicCredentials = (clientId: string, clientSecret: string): string =>
  Buffer.from(`${formUrlEncode(clientId)}:${formUrlEncode(clientSecret)}`, 'utf8').toString('base64');

export const encodeTokenRequest = (request: TokenRequest): EncodedTokenRequest => {
  const params = new URLSearchParams(grantParams(request.grant));
  const secrets = [request.clientSecret, ...grantSecrets(request.grant)];
  if (request.clientAuthentication === 'client_secret_post') {
    params.set('client_id', request.clientId);
    params.set('client_secret', request.clientSecret);
    return { body: params.toString(), authorization: undefined, secrets };
  }
  const credentials = basicCredentials(request.clientId, request.clientSecret);
  return { body: params.toString(), authorization: `Basic ${credentials}`, secrets: [...secrets, credentials] };
};
