import { reservedAuthorizeParams } from '../api/oauthapp.ts';

export interface AuthorizeURLInput {
  readonly authorizeURL: string;
  readonly clientId: string;
  readonly redirectURI: string;
  readonly state: string;
  /** PKCE (RFC 7636): the S256 challenge of this request's code_verifier; sent with code_challenge_method=S256. */
  readonly codeChallenge?: string | undefined;
  /** Sent space-separated as `scope`; omitted when absent or empty. */
  readonly scopes?: readonly string[] | undefined;
  /** Extra query parameters (spec.authorizeParams), such as `access_type: offline`. */
  readonly extraParams?: Readonly<Record<string, string>> | undefined;
}

const reserved: ReadonlySet<string> = new Set(reservedAuthorizeParams);

// encodeURIComponent rather than URLSearchParams: it writes a space as %20, which every server
// decodes as a space, while some strict RFC 3986 decoders read URLSearchParams' '+' literally.
const serialize = (params: Iterable<readonly [string, string]>): string =>
  [...params].map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&');

/**
 * The provider's authorization URL for the authorization code flow (RFC 6749 §4.1.1). A query
 * already in `authorizeURL` is kept.
 * @throws TypeError when `authorizeURL` is not an absolute URL.
 */
export const buildAuthorizeURL = (input: AuthorizeURLInput): string => {
  const url = new URL(input.authorizeURL);
  const params = new URLSearchParams(url.search);
  params.set('response_type', 'code');
  params.set('client_id', input.clientId);
  params.set('redirect_uri', input.redirectURI);
  params.set('state', input.state);
  if (input.codeChallenge !== undefined) {
    params.set('code_challenge', input.codeChallenge);
    params.set('code_challenge_method', 'S256');
  }
  if (input.scopes !== undefined && input.scopes.length > 0) params.set('scope', input.scopes.join(' '));
  for (const [name, value] of Object.entries(input.extraParams ?? {})) {
    // The CRD already refuses these; skipping them here too means an extra parameter can never
    // replace the state, the redirect URI or the PKCE challenge.
    if (!reserved.has(name)) params.set(name, value);
  }
  url.search = serialize(params);
  return url.toString();
};
