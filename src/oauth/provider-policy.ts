// Where an OAuthApp may send its client's credentials, as the operator's admin decided
// (--provider-hosts, --allow-preset-overrides): checked on the spec before any request and before
// an authorize URL is shown. The addresses those hosts resolve to are checked separately, at
// connect time (address-policy.ts).
import { providerPresets, type ProviderSpec } from './providers.ts';

export interface ProviderPolicyOptions {
  /** Host globs (`*` any run of characters, so `*.example.com` or `*`); default `*`. */
  readonly hosts?: readonly string[] | undefined;
  /** Whether a preset's URLs may be replaced by spec.tokenURL / spec.authorizeURL. */
  readonly allowPresetOverrides?: boolean | undefined;
}

export interface ProviderPolicy {
  /** Why this spec's provider is not allowed, or undefined when it is. */
  refusal(spec: ProviderSpec): string | undefined;
}

const globPattern = (glob: string): RegExp =>
  new RegExp(`^${glob.toLowerCase().split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

/** Whether `hostname` (as `URL` gives it: lowercase, IPv6 in brackets) matches one of the globs. */
export const hostMatcher = (globs: readonly string[]): ((hostname: string) => boolean) => {
  const patterns = globs.map(globPattern);
  return (hostname) => patterns.some((pattern) => pattern.test(hostname.toLowerCase()));
};

const urlFields = ['tokenURL', 'authorizeURL', 'revokeURL'] as const;

const hostnameOf = (url: string): string | undefined => {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
};

export const createProviderPolicy = ({ hosts = ['*'], allowPresetOverrides = false }: ProviderPolicyOptions = {}): ProviderPolicy => {
  const allowedHost = hostMatcher(hosts);
  return {
    refusal(spec) {
      const preset = providerPresets[spec.provider];
      // A preset's own URLs are trusted as they are; what the spec sets instead is not.
      const overridden = urlFields.filter((field) => spec[field] !== undefined && spec[field] !== preset?.[field]);
      if (preset && overridden.length > 0 && !allowPresetOverrides) {
        return `spec.${overridden.join(' and spec.')} would replace the ${spec.provider} preset's endpoints, which this operator does not allow (it runs without --allow-preset-overrides): remove them, or use provider: custom`;
      }
      const checked = preset ? overridden : urlFields.filter((field) => spec[field] !== undefined);
      for (const field of checked) {
        const hostname = hostnameOf(spec[field] ?? '');
        if (hostname === undefined || !allowedHost(hostname)) {
          return `the host ${JSON.stringify(hostname ?? spec[field])} of spec.${field} is not one this operator may send credentials to (--provider-hosts); ask its admin`;
        }
      }
      return undefined;
    },
  };
};
