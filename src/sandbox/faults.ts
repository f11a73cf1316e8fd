import { z } from 'zod';

const count = z.int().min(0);

/**
 * Misbehaviour of /oauth/token, "for the next N token requests". At most one counted fault
 * applies per request, in this order: 429, 5xx, malformed body. `delayMs` holds back every
 * token response while set (the request is still processed after the delay, like a slow server
 * that finishes work the client may have given up on). Counted faults answer without
 * processing the request: nothing is exchanged or rotated.
 */
export const FaultsSchema = z.strictObject({
  status429: z.strictObject({ count, retryAfterSeconds: z.int().min(0).default(1) }).optional(),
  status5xx: z.strictObject({ count, status: z.int().min(500).max(599).default(503) }).optional(),
  delayMs: z.int().min(0).max(600_000).optional(),
  malformedBody: z.strictObject({ count, body: z.string().default('{"access_token": ') }).optional(),
});

/** What callers set (defaults may be left out). */
export type FaultsInput = z.input<typeof FaultsSchema>;
/** What is in force, with counts that go down as faults fire. */
export type Faults = z.output<typeof FaultsSchema>;

export type Fault =
  | { readonly kind: 'none' }
  | { readonly kind: 'status429'; readonly retryAfterSeconds: number }
  | { readonly kind: 'status5xx'; readonly status: number }
  | { readonly kind: 'malformedBody'; readonly body: string };

export class FaultInjector {
  #faults: Faults = {};

  /** Replaces every fault; throws a ZodError for a shape that is not a Faults. */
  set(input: FaultsInput): void {
    this.#faults = FaultsSchema.parse(input);
  }

  snapshot(): Faults {
    return structuredClone(this.#faults);
  }

  get delayMs(): number {
    return this.#faults.delayMs ?? 0;
  }

  /** The fault for the current token request, counting it down. */
  next(): Fault {
    const { status429, status5xx, malformedBody } = this.#faults;
    if (status429 !== undefined && status429.count > 0) {
      status429.count -= 1;
      return { kind: 'status429', retryAfterSeconds: status429.retryAfterSeconds };
    }
    if (status5xx !== undefined && status5xx.count > 0) {
      status5xx.count -= 1;
      return { kind: 'status5xx', status: status5xx.status };
    }
    if (malformedBody !== undefined && malformedBody.count > 0) {
      malformedBody.count -= 1;
      return { kind: 'malformedBody', body: malformedBody.body };
    }
    return { kind: 'none' };
  }
}
