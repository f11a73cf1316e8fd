// Whether the provider accepts a client secret, learnt without spending a refresh: a token request
// whose refresh token is one no provider ever issued. RFC 6749 §5.2: a server that cannot
// authenticate the client answers `invalid_client`; one that can goes on to the grant and answers
// `invalid_grant`. So `invalid_grant` says the secret is right and `invalid_client` that it is
// wrong, and no grant is touched either way. The token sent is random (never a replay) and starts
// with `clientCheckTokenPrefix`, so a provider's logs, and our tests, can tell a check from a refresh.
import { randomBytes } from 'node:crypto';
import { isTokenRequestError } from './errors.ts';
import type { TokenClient } from './token-client.ts';
import type { TokenRequest } from './token-request.ts';

export const clientCheckTokenPrefix = 'oauthapp-client-check-';

export type ClientCheck =
  | { verdict: 'accepted' }
  /** `description`: the provider's words, secrets removed (TokenRequestError.description). */
  | { verdict: 'rejected'; description?: string | undefined }
  /** The answer said neither; `retryAfterMs` when the provider asked for a pause. */
  | { verdict: 'unknown'; reason: string; retryAfterMs?: number | undefined };

export type ClientCheckRequest = Omit<TokenRequest, 'grant'>;

export const clientCheckToken = (random: (bytes: number) => Buffer = randomBytes): string => clientCheckTokenPrefix + random(24).toString('base64url');

export async function checkClientSecret(tokens: TokenClient, request: ClientCheckRequest, options: { signal?: AbortSignal; token?: string } = {}): Promise<ClientCheck> {
  try {
    await tokens.requestToken({ ...request, grant: { type: 'refresh_token', refreshToken: options.token ?? clientCheckToken() } }, options.signal ? { signal: options.signal } : {});
  } catch (error) {
    if (!isTokenRequestError(error)) throw error;
    switch (error.code) {
      case 'invalid_grant':
        return { verdict: 'accepted' };
      case 'invalid_client':
        return { verdict: 'rejected', description: error.description };
      default:
        return { verdict: 'unknown', reason: `${error.code}: ${error.message}`, retryAfterMs: error.retryAfterMs };
    }
  }
  // Tokens for a refresh token nobody issued: this provider checks nothing we can learn from.
  return { verdict: 'unknown', reason: 'the provider answered a refresh token it never issued with tokens' };
}
