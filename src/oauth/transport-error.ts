import { AbortError, RequestError, TimeoutError } from 'got';
import { addressNotAllowedCode } from './address-policy.ts';
import { deliveryOf } from './delivery.ts';
import { TokenRequestError, TransportError } from './errors.ts';
import { providerText, type Redact } from './redact.ts';

export interface TransportContext {
  /** Whether response headers had arrived, and with which status. */
  readonly status: number | undefined;
  readonly secure: boolean;
  readonly redact: Redact;
}

/** The provider's address was refused by the operator's address policy. */
export const addressNotAllowedMessage = "the provider's address is not allowed";

const certificateCodes: ReadonlySet<string> = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_FORMAT',
]);

const coarse: Readonly<Record<string, string>> = {
  [addressNotAllowedCode]: addressNotAllowedMessage,
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ENOTFOUND: "the provider's host name could not be resolved",
  EAI_AGAIN: "the provider's host name could not be resolved",
  EAI_FAIL: "the provider's host name could not be resolved",
  EAI_NONAME: "the provider's host name could not be resolved",
  ENETUNREACH: 'network unreachable',
  EHOSTUNREACH: 'host unreachable',
  EADDRNOTAVAIL: 'address not available',
  ETIMEDOUT: 'connection timed out',
  EPROTO: 'TLS handshake failed',
  ERR_INVALID_URL: 'invalid URL',
};

/**
 * A few words for status and Events: never the system's message, which can name the remote
 * certificate's subjects or the address a host resolved to.
 */
export const coarseTransportProblem = (code: string | undefined): string => {
  if (code === undefined) return 'connection failed';
  if (certificateCodes.has(code) || code.startsWith('ERR_TLS_')) return 'TLS verification failed';
  if (code.startsWith('ERR_SSL_')) return 'TLS handshake failed';
  return coarse[code] ?? (/^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? `connection failed (${code})` : 'connection failed');
};

/** A failure of the HTTP exchange itself (no usable answer) as a TokenRequestError. */
export const fromTransportError = (error: unknown, context: TransportContext): TokenRequestError => {
  const requestError = error instanceof RequestError ? error : undefined;
  const code = requestError?.code ?? (error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined);
  const event = error instanceof TimeoutError ? error.event : undefined;
  const refused = code === addressNotAllowedCode;
  const delivery = refused
    ? 'not_sent'
    : deliveryOf({
        answered: context.status !== undefined,
        secure: context.secure,
        code,
        event,
        timings: requestError?.timings,
      });
  const detail = providerText(error instanceof Error ? error.message : String(error), context.redact);
  const cause = new TransportError(detail, code, event);
  const after = context.status === undefined ? '' : ` after HTTP ${context.status} headers`;
  const common = { delivery, status: context.status, cause };

  if (error instanceof TimeoutError) {
    return new TokenRequestError(`token request timed out in phase ${error.event}${after}`, { code: 'timeout', ...common });
  }
  if (error instanceof AbortError) {
    return new TokenRequestError(`token request aborted${after}`, { code: 'aborted', ...common });
  }
  return new TokenRequestError(`token request failed${after}: ${coarseTransportProblem(code)}`, { code: 'network', ...common });
};
