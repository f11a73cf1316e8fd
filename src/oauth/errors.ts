// The token client's error taxonomy. Every failure of a token request is a TokenRequestError with a
// stable `code` the controller branches on, and a `delivery` that says what is known about whether
// the provider saw the request.

export const tokenErrorCodes = [
  'invalid_grant',
  'invalid_client',
  'rate_limited',
  'server_error',
  'timeout',
  'network',
  'malformed_response',
  'rejected',
  'aborted',
] as const;
export type TokenErrorCode = (typeof tokenErrorCodes)[number];

/**
 * What is known about whether the provider received the request.
 *
 * The controller needs this because a refresh token can be single-use (Pipedrive: "already
 * exchanged"), and standards-following servers revoke the whole grant when an old one is replayed:
 * - `not_sent`: provably never reached the server (DNS failure, connection refused, TLS handshake
 *   failure, timeout before the connection was up). The refresh token was not consumed; sending it
 *   again is safe.
 * - `answered`: an HTTP response arrived (any status). The server processed the request; what it
 *   did is in `code`. On a 2xx that could not be used (`malformed_response`), the server may already
 *   have rotated the refresh token.
 * - `unknown`: the request may have been written and processed, but no answer was read (timeout
 *   while sending or waiting, connection reset). The refresh token must be treated as possibly
 *   consumed.
 */
export type Delivery = 'not_sent' | 'answered' | 'unknown';

export interface TokenRequestErrorDetails {
  readonly code: TokenErrorCode;
  readonly delivery: Delivery;
  /** HTTP status, when a response arrived. */
  readonly status?: number | undefined;
  /** How long the provider asked us to wait (Retry-After), on `rate_limited` and `server_error`. */
  readonly retryAfterMs?: number | undefined;
  /** The provider's RFC 6749 §5.2 `error` code, as sent (e.g. `invalid_scope`), when there was one. */
  readonly providerError?: string | undefined;
  /** The provider's own words about the failure (see TokenRequestError.description). */
  readonly description?: string | undefined;
  /** A refresh token found in a 2xx that was otherwise unusable (see TokenRequestError.refreshToken). */
  readonly refreshToken?: string | undefined;
  /** What the provider or the connection said (see TokenRequestError.detail). */
  readonly detail?: string | undefined;
  readonly cause?: TransportError | undefined;
}

/**
 * `message` is coarse ("connection refused", "TLS verification failed", "HTTP 404"): it reaches
 * status, Events and the callback page, which people without access to the provider read. It never
 * carries a remote certificate's names, an address the host resolved to, or the answer's body;
 * those are in `detail`, for debug logs only.
 */
export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError';

  readonly code: TokenErrorCode;
  readonly delivery: Delivery;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly providerError: string | undefined;
  /**
   * The provider's own description of the error (RFC 6749 error_description, or the sentence
   * Pipedrive sends instead), with the secret values sent removed, on one line, at most
   * maxProviderTextLength characters: the provider's word to the app's owner, fit for status and
   * Events. Unlike `detail`, never a transport error's text (certificate names, addresses).
   */
  readonly description: string | undefined;

  constructor(message: string, details: TokenRequestErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = details.code;
    this.delivery = details.delivery;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    this.providerError = details.providerError;
    this.description = details.description;
    this.#refreshToken = details.refreshToken;
    this.#detail = details.detail;
  }

  // Private, so a logger that serializes the error at a level above debug does not print it.
  readonly #detail: string | undefined;

  /** What the provider or the connection said, secrets removed: for debug logs, never status. */
  get detail(): string | undefined {
    return this.#detail ?? (this.cause instanceof Error ? this.cause.message : undefined);
  }

  // A private field: loggers and util.inspect (even with showHidden) never print it, and it is a secret.
  readonly #refreshToken: string | undefined;

  /** A refresh token carried by an unusable 2xx: the sent one may be retired, store this one. */
  get refreshToken(): string | undefined {
    return this.#refreshToken;
  }
}

export const isTokenRequestError = (value: unknown): value is TokenRequestError => value instanceof TokenRequestError;

/**
 * A sanitized copy of the HTTP client's error, kept as `cause`. got's own errors are not kept:
 * they carry the request `options` (form body with the refresh token or code, and the
 * Authorization header) as an enumerable property, which loggers and `util.inspect` print.
 */
export class TransportError extends Error {
  override readonly name = 'TransportError';

  /** The HTTP client's or the system's code, such as `ECONNREFUSED`, `ETIMEDOUT`, `EPROTO`. */
  readonly code: string | undefined;
  /** For timeouts: the phase that timed out (`lookup`, `connect`, `secureConnect`, `send`, `response`, `request`). */
  readonly event: string | undefined;

  constructor(message: string, code: string | undefined, event: string | undefined) {
    super(message);
    this.code = code;
    this.event = event;
  }
}

export type ProviderConfigErrorCode = 'provider_url_missing';

/** A provider that cannot be used as configured (only reachable for specs that skipped validation). */
export class ProviderConfigError extends Error {
  override readonly name = 'ProviderConfigError';

  readonly code: ProviderConfigErrorCode;
  /** The spec field at fault, such as `tokenURL`. */
  readonly field: string;

  constructor(code: ProviderConfigErrorCode, field: string, message: string) {
    super(message);
    this.code = code;
    this.field = field;
  }
}
