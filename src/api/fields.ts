// Field schemas shared by the OAuthApp spec. Each carries its own OpenAPI constraints and CEL
// rules (`x-kubernetes-validations` in .meta) so the CRD in crds/ is generated from these very
// schemas; the zod checks next to each CEL rule make the controller refuse what the apiserver refuses.
import { isIP } from 'node:net';
import { z } from 'zod';

export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueForbidden' | 'FieldValueDuplicate';
}

export const celRules = (...rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

const dnsSubdomainPattern = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

/** A Kubernetes object name (RFC 1123 subdomain), as Secrets and workloads use. */
export const objectName = z
  .string()
  .min(1)
  .max(253)
  .regex(new RegExp(dnsSubdomainPattern), 'must be a lowercase RFC 1123 subdomain (a-z, 0-9, "-" and ".")');

/** A key inside a Secret's data. */
export const secretDataKey = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[-._a-zA-Z0-9]+$/, 'must consist of alphanumerics, "-", "_" or "."');

export const secretKeyRef = z
  .strictObject({
    name: objectName.describe('Name of a Secret in the OAuthApp\'s namespace.'),
    key: secretDataKey.describe('Key in that Secret\'s data.'),
  })
  .describe('A key of a Secret in the same namespace as the OAuthApp.');

const loopbackHosts = new Set(['localhost']);

/** True for https URLs, and for http URLs whose host is a loopback address. */
export function isSecureOrLoopbackURL(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  if (url.protocol !== 'http:') return false;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (loopbackHosts.has(host)) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return isIP(host) === 6 && host === '::1';
}

const secureURLRule: CelRule = {
  // Regular expressions rather than url(self) calls: each call adds to the apiserver's CEL cost budget.
  rule:
    "isURL(self) && (self.startsWith('https://') || " +
    "self.matches('^http://(localhost|127(\\\\.[0-9]{1,3}){3}|\\\\[::1\\\\])(:[0-9]{1,5})?([/?#]|$)'))",
  message: 'must be an https:// URL (http:// is allowed only for loopback addresses)',
};

/** An absolute URL that must be https, except on loopback (a local sandbox or test server). */
export const secureURL = z
  .string()
  .min(1)
  .max(2048)
  .refine(isSecureOrLoopbackURL, secureURLRule.message)
  .meta(celRules(secureURLRule));

export const durationPattern = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
const durationUnitsMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** Parses a Go-style duration ("15m", "1h30m", "90s") to milliseconds. */
export function parseDurationMs(value: string): number {
  let total = 0;
  for (const [, amount, , unit] of value.matchAll(/([0-9]+(\.[0-9]+)?)(ms|s|m|h)/g)) {
    total += Number(amount) * durationUnitsMs[unit as keyof typeof durationUnitsMs];
  }
  return total;
}

const positiveDurationRule: CelRule = { rule: "duration(self) > duration('0s')", message: 'must be a positive duration' };

/** A positive Go-style duration such as "15m" or "1h30m", as cert-manager's renewBefore. */
export const duration = z
  .string()
  .max(64)
  .regex(durationPattern, 'must be a duration such as 90s, 15m or 1h30m')
  .refine((value) => parseDurationMs(value) > 0, positiveDurationRule.message)
  .meta(celRules(positiveDurationRule));
