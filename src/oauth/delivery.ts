import type { Delivery } from './errors.ts';

/** What the HTTP client reported about a request that failed. */
export interface TransportFacts {
  /** Whether response headers had arrived before the failure. */
  readonly answered: boolean;
  /** Whether the URL was https (then the request goes out only after the TLS handshake). */
  readonly secure: boolean;
  readonly code?: string | undefined;
  /** The phase of a got TimeoutError. */
  readonly event?: string | undefined;
  /** got's timings (epoch ms per event); undefined when the client never started the request. */
  readonly timings?: { readonly connect?: number | undefined; readonly secureConnect?: number | undefined } | undefined;
}

/** Timeout phases that end before a single byte of the request can have been written. */
const connectionPhases: ReadonlySet<string> = new Set(['lookup', 'connect', 'secureConnect']);

/** System errors that only happen while resolving or connecting. */
const connectionCodes: ReadonlySet<string> = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'ECONNREFUSED',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'ERR_INVALID_URL',
]);

/**
 * Whether a failed request may have reached the server (see `Delivery`). The request is written
 * only once the connection is up (after the TLS handshake for https), so a connection that never
 * came up proves that nothing was sent; that rule also covers TLS failures (EPROTO, certificate
 * errors), whatever their code. When in doubt the answer is `unknown`, never `not_sent`: a wrong
 * `not_sent` could make the controller replay a single-use refresh token.
 */
export const deliveryOf = (facts: TransportFacts): Delivery => {
  if (facts.answered) return 'answered';
  if (facts.event !== undefined && connectionPhases.has(facts.event)) return 'not_sent';
  if (facts.timings !== undefined) {
    const connectionReady = facts.secure ? facts.timings.secureConnect : facts.timings.connect;
    return connectionReady === undefined ? 'not_sent' : 'unknown';
  }
  return facts.code !== undefined && connectionCodes.has(facts.code) ? 'not_sent' : 'unknown';
};
