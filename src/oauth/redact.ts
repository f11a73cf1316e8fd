import { formUrlEncode } from './form-encoding.ts';

export const redacted = '[redacted]';

/** Longest provider text kept in a message (error_description and the like). */
export const maxProviderTextLength = 200;

export type Redact = (text: string) => string;

/**
 * A function that removes every occurrence of the given secret values from a text, also in the
 * encodings they were sent in (a server that echoes the form body or the Authorization header
 * would otherwise leak them through its error_description).
 */
export const redactor = (secrets: readonly string[]): Redact => {
  const variants = new Set<string>();
  for (const secret of secrets) {
    if (secret === '') continue;
    variants.add(secret);
    variants.add(formUrlEncode(secret));
    variants.add(encodeURIComponent(secret));
  }
  // Longest first, so that a secret containing another is removed whole.
  const ordered = [...variants].sort((a, b) => b.length - a.length);
  return (text) => ordered.reduce((result, variant) => result.replaceAll(variant, redacted), text);
};

/**
 * Text from the provider made fit for a message: secrets removed first (capping first could cut a
 * secret so that it no longer matches), then control characters flattened and the length capped.
 */
export const providerText = (text: string, redact: Redact): string => {
  const flat = redact(text).replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > maxProviderTextLength ? `${flat.slice(0, maxProviderTextLength)}…` : flat;
};
