import { AbortError, RequestError, TimeoutError } from 'got';
import { deliveryOf } from './delivery.ts';
import { TokenRequestError, TransportError } from './errors.ts';
import { providerText, type Redact } from './redact.ts';

export interface TransportContext {
  /** Whether response headers had arrived, and with which status. */
  readonly status: number | undefined;
  readonly secure: boolean;
  readonly redact: Redact;
}

/** A failure of the HTTP exchange itself (no usable answer) as a TokenRequestError. */
export const fromTransportError = (error: unknown, context: TransportContext): TokenRequestError => {
  const requestError = error instanceof RequestError ? error : undefined;
  const code = requestError?.code ?? (error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined);
  const event = error instanceof TimeoutError ? error.event : undefined;
  const delivery = deliveryOf({
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
  return new TokenRequestError(`token request failed${after}: ${code ?? 'error'}: ${detail}`, { code: 'network', ...common });
};
