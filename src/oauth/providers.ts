import type { ClientAuthenticationMethod, OAuthAppSpec, ProviderName } from '../api/oauthapp.ts';
import { ProviderConfigError } from './errors.ts';

export interface ProviderEndpoints {
  readonly authorizeURL: string;
  readonly tokenURL: string;
  readonly clientAuthentication: ClientAuthenticationMethod;
  /**
   * The issuer identifier the provider sends as `iss` in authorization responses (RFC 9207), when
   * it is known to send one; the callback then refuses a missing or different `iss`.
   */
  readonly issuer?: string | undefined;
  /** Token revocation (RFC 7009), where the provider has it. */
  readonly revokeURL?: string | undefined;
}

export interface ResolvedProvider extends ProviderEndpoints {
  readonly name: ProviderName;
}

/** The spec fields that pick a provider's endpoints. */
export type ProviderSpec = Pick<OAuthAppSpec, 'provider' | 'tokenURL' | 'authorizeURL' | 'clientAuthentication'> & Partial<Pick<OAuthAppSpec, 'issuer' | 'revokeURL'>>;

export const pipedrive: ProviderEndpoints = {
  authorizeURL: 'https://oauth.pipedrive.com/oauth/authorize',
  tokenURL: 'https://oauth.pipedrive.com/oauth/token',
  clientAuthentication: 'client_secret_basic',
  // Pipedrive does not document RFC 9207 (nor OpenID Connect discovery): whether it sends `iss`
  // is unknown, so it is not required.
  issuer: undefined,
  revokeURL: 'https://oauth.pipedrive.com/oauth/revoke',
};

/** Presets by provider name; `custom` has none and takes everything from the spec. */
export const providerPresets: Readonly<Record<ProviderName, ProviderEndpoints | undefined>> = {
  pipedrive,
  custom: undefined,
};

export const defaultClientAuthentication: ClientAuthenticationMethod = 'client_secret_basic';

/**
 * The endpoints to use for a spec: explicit `tokenURL` / `authorizeURL` win over the preset (that
 * is how tests and the sandbox point `pipedrive` at a local server).
 * @throws ProviderConfigError when an URL is neither in the spec nor in a preset; the CRD makes
 * that impossible for specs that went through the apiserver.
 */
export const resolveProvider = (spec: ProviderSpec): ResolvedProvider => {
  const preset = providerPresets[spec.provider];
  const tokenURL = spec.tokenURL ?? preset?.tokenURL;
  const authorizeURL = spec.authorizeURL ?? preset?.authorizeURL;
  if (tokenURL === undefined) {
    throw new ProviderConfigError('provider_url_missing', 'tokenURL', `tokenURL is required when provider is ${spec.provider}`);
  }
  if (authorizeURL === undefined) {
    throw new ProviderConfigError(
      'provider_url_missing',
      'authorizeURL',
      `authorizeURL is required when provider is ${spec.provider}`,
    );
  }
  return {
    name: spec.provider,
    tokenURL,
    authorizeURL,
    clientAuthentication: spec.clientAuthentication ?? preset?.clientAuthentication ?? defaultClientAuthentication,
    // A preset's issuer speaks for its own authorize endpoint only, not for an override (a sandbox).
    issuer: spec.issuer ?? (spec.authorizeURL === undefined ? preset?.issuer : undefined),
    revokeURL: spec.revokeURL ?? preset?.revokeURL,
  };
};
