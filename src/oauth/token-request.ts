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

export const encodeTokenRequest = (request: TokenRequest): EncodedTokenRequest =>
  withClientAuthentication(new URLSearchParams(grantParams(request.grant)), request, [request.clientSecret, ...grantSecrets(request.grant)]);

/** RFC 6749 §2.3.1: the client's credentials in the body (client_secret_post) or as HTTP Basic. */
const withClientAuthentication = (
  params: URLSearchParams,
  request: Pick<TokenRequest, 'clientAuthentication' | 'clientId' | 'clientSecret'>,
  secrets: string[],
): EncodedTokenRequest => {
  if (request.clientAuthentication === 'client_secret_post') {
    params.set('client_id', request.clientId);
    params.set('client_secret', request.clientSecret);
    return { body: params.toString(), authorization: undefined, secrets };
  }
  const credentials = basicCredentials(request.clientId, request.clientSecret);
  return { body: params.toString(), authorization: `Basic ${credentials}`, secrets: [...secrets, credentials] };
};

/** RFC 7009 §2.1: a refresh token to revoke, with the client's authentication. */
export interface RevocationRequest {
  readonly revokeURL: string;
  readonly clientAuthentication: ClientAuthenticationMethod;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly refreshToken: string;
}

export const encodeRevocationRequest = (request: RevocationRequest): EncodedTokenRequest => {
  const params = new URLSearchParams([
    ['token', request.refreshToken],
    ['token_type_hint', 'refresh_token'],
  ]);
  return withClientAuthentication(params, request, [request.clientSecret, request.refreshToken]);
};
