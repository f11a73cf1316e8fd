// The OAuth 2.0 side of the operator: provider presets, the authorize URL and the token client.
export { buildAuthorizeURL, type AuthorizeURLInput } from './authorize-url.ts';
export {
  isTokenRequestError,
  ProviderConfigError,
  TokenRequestError,
  TransportError,
  tokenErrorCodes,
  type Delivery,
  type TokenErrorCode,
} from './errors.ts';
export { pipedrive, providerPresets, resolveProvider, type ProviderSpec, type ResolvedProvider } from './providers.ts';
export { createTokenClient, type RequestTokenOptions, type TokenClient, type TokenClientOptions } from './token-client.ts';
export type { AuthorizationCodeGrant, RefreshTokenGrant, TokenGrant, TokenRequest } from './token-request.ts';
export type { TokenSet } from './token-response.ts';
