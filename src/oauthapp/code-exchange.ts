// A grant's beginning and end at the provider, the same wherever the operator needs them: the code
// exchange (RFC 6749 §4.1.3) and the grant it records, for first authorizations and public apps'
// installs (through the provider's slots, a refusal worded once for status, Events and the
// person's page); and the revocation request (RFC 7009) that ends an installation's grant.
import type { OAuthApp } from '../api/oauthapp.ts';
import { parseDurationMs } from '../api/fields.ts';
import { isTokenRequestError } from '../oauth/errors.ts';
import { resolveProvider } from '../oauth/providers.ts';
import type { TokenClient } from '../oauth/token-client.ts';
import type { RevocationRequest } from '../oauth/token-request.ts';
import type { TokenSet } from '../oauth/token-response.ts';
import { recordSuccess } from './policies.ts';
import { fingerprint, type AppState } from './state.ts';
import { providerSaid } from './status.ts';

export interface CodeExchangeDependencies {
  tokens: TokenClient;
  /** The per-provider cap on concurrent token requests that refreshes share. */
  limit: <T>(providerKey: string, task: () => Promise<T>) => Promise<T>;
  random: () => number;
  /** Where in its jitter window the next refresh goes (evenly spread across apps). */
  pickRefreshTime?: ((earliest: number, latest: number) => number) | undefined;
}

export type Exchanged = { ok: true; response: TokenSet } | { ok: false; message: string };

/** `codeVerifier`: PKCE, for codes from the operator's own authorization URL (none from the Marketplace). */
export async function exchangeCode(deps: CodeExchangeDependencies, app: OAuthApp, clientSecret: string, code: string, codeVerifier?: string): Promise<Exchanged> {
  const provider = resolveProvider(app.spec);
  try {
    const response = await deps.limit(new URL(provider.tokenURL).host, () =>
      deps.tokens.requestToken({
        tokenURL: provider.tokenURL,
        clientAuthentication: provider.clientAuthentication,
        clientId: app.spec.clientId,
        clientSecret,
        grant: { type: 'authorization_code', code, redirectURI: app.spec.redirectURI, ...(codeVerifier !== undefined ? { codeVerifier } : {}) },
      }),
    );
    return { ok: true, response };
  } catch (error) {
    if (!isTokenRequestError(error)) throw error;
    return { ok: false, message: `the provider did not accept the authorization code (${error.code}): ${error.message}${providerSaid(error.description)}` };
  }
}

/** `state` with the exchanged grant: tokens, refresh schedule, and the client secret it proved good. */
export function recordExchange(deps: Pick<CodeExchangeDependencies, 'random' | 'pickRefreshTime'>, app: OAuthApp, state: AppState, response: TokenSet, clientSecret: string, answeredAt: number): AppState {
  return recordSuccess({
    now: answeredAt,
    state,
    sentRefreshToken: undefined,
    response,
    renewBeforeMs: app.spec.renewBefore === undefined ? undefined : parseDurationMs(app.spec.renewBefore),
    clientSecretFingerprint: fingerprint(clientSecret),
    random: deps.random,
    ...(deps.pickRefreshTime ? { pickRefreshTime: deps.pickRefreshTime } : {}),
  });
}

/** The RFC 7009 request that revokes `refreshToken`; undefined when the provider has no revocation endpoint. */
export function revocationRequest(app: OAuthApp, clientSecret: string, refreshToken: string): RevocationRequest | undefined {
  const { revokeURL, clientAuthentication } = resolveProvider(app.spec);
  return revokeURL === undefined ? undefined : { revokeURL, clientAuthentication, clientId: app.spec.clientId, clientSecret, refreshToken };
}
