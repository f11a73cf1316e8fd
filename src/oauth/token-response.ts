// What a token endpoint answers (RFC 6749 §5.1 and §5.2), read with zod since it comes from outside.
import { z } from 'zod';
import { isSecureOrLoopbackURL } from '../api/fields.ts';

/** A token response, normalized. */
export interface TokenSet {
  readonly accessToken: string;
  /** Always `Bearer`: the only type this operator can hand to workloads. */
  readonly tokenType: 'Bearer';
  /** Absent when the server did not rotate it: the stored one stays valid. */
  readonly refreshToken?: string | undefined;
  readonly expiresInSeconds: number;
  /** Verbatim: Pipedrive separates scopes with commas, RFC 6749 with spaces. */
  readonly scope?: string | undefined;
  /** Pipedrive: the company's API host, e.g. `https://acme.pipedrive.com`. */
  readonly apiDomain?: string | undefined;
}

/** About 68 years: keeps `now + expires_in` a valid Date, so `expires_at` can always be written. */
export const maxExpiresInSeconds = 2_147_483_647;

const expiresIn = z
  .union([
    z.number(),
    // Some servers send the number as a string ("3600").
    z
      .string()
      .regex(/^\d+(?:\.\d+)?$/)
      .transform(Number),
  ])
  .pipe(z.number().positive().max(maxExpiresInSeconds));

// RFC 6749 §7.1: the type is case-insensitive. Only Bearer (RFC 6750) is accepted, because the
// target Secret promises workloads a token they send as `Authorization: Bearer …`; a MAC or DPoP
// token would be unusable that way, so it is a malformed answer, not a success.
// A missing token_type (some servers leave it out although RFC 6749 requires it) is read as Bearer.
const bearer = z
  .string()
  .refine((type) => type.toLowerCase() === 'bearer', { message: 'token_type must be Bearer' })
  .transform(() => 'Bearer' as const)
  .optional()
  .transform(() => 'Bearer' as const);

// Informational fields are dropped when unusable instead of failing the whole answer: a 2xx to a
// refresh means the server has rotated the refresh token, so refusing the response over a bad
// `scope` would lose the new refresh token for nothing.
const lenient = <T extends z.ZodType>(schema: T) => schema.optional().catch(undefined);

export const tokenSuccessResponse = z.object({
  access_token: z.string().min(1),
  token_type: bearer,
  // An empty or null refresh_token is read as "not rotated".
  refresh_token: lenient(z.string().min(1)),
  scope: lenient(z.string()),
  // RFC 6749 §5.1 only recommends expires_in: without it the caller's default lifetime applies.
  expires_in: expiresIn.optional(),
  api_domain: lenient(z.url({ protocol: /^https?$/ })),
});
// Unknown fields are allowed and ignored (z.object strips them).

/** RFC 6749 §5.2. */
export const tokenErrorResponse = z.object({
  error: z.string().min(1),
  error_description: z.string().optional(),
  error_uri: z.string().optional(),
});
export type TokenErrorResponse = z.output<typeof tokenErrorResponse>;

export type TokenResponseParse =
  | { readonly success: true; readonly tokenSet: TokenSet }
  /**
   * `problem` names only what was wrong, never a value from the body (it may hold tokens).
   * `refreshToken`: a refresh token the unusable answer still carried. After a 2xx the server may
   * have retired the one that was sent, so this one must be stored even though the rest is refused.
   */
  | { readonly success: false; readonly problem: string; readonly refreshToken?: string | undefined };

export interface TokenResponseOptions {
  /** The lifetime of an access token whose answer has no expires_in. */
  readonly defaultExpiresInSeconds: number;
  /**
   * Whether an `http://` api_domain on a loopback host is kept (a local sandbox; the operator's
   * --allow-loopback-providers). Otherwise only `https://` is: anything else is dropped, and the
   * api_domain stored before stays.
   */
  readonly allowLoopbackAPIDomain?: boolean | undefined;
}

/** Whether a provider's api_domain may be handed to workloads (they send the access token there). */
export const acceptableAPIDomain = (url: string, allowLoopback: boolean): boolean =>
  url.toLowerCase().startsWith('https://') || (allowLoopback && isSecureOrLoopbackURL(url));

/** Pipedrive's access tokens live an hour; a server that does not say is assumed to do the same. */
export const defaultExpiresInSeconds = 3600;

const salvageable = z.object({ refresh_token: z.string().min(1) });

/** Reads a JSON text as a JSON value, or undefined when it is not JSON. */
export const parseJSON = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};

export const parseTokenResponse = (text: string, options: TokenResponseOptions = { defaultExpiresInSeconds }): TokenResponseParse => {
  const json = parseJSON(text);
  if (json === undefined) return { success: false, problem: 'the body is not JSON' };
  const parsed = tokenSuccessResponse.safeParse(json);
  if (!parsed.success) {
    // Paths name schema fields only; zod's own messages are left out as they can quote input.
    const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join('.')))];
    const where = fields.every((field) => field === '') ? 'the body is not a JSON object' : `invalid ${fields.join(', ')}`;
    const salvaged = salvageable.safeParse(json);
    return { success: false, problem: where, ...(salvaged.success ? { refreshToken: salvaged.data.refresh_token } : {}) };
  }
  const body = parsed.data;
  return {
    success: true,
    tokenSet: {
      accessToken: body.access_token,
      tokenType: body.token_type,
      refreshToken: body.refresh_token,
      expiresInSeconds: body.expires_in ?? options.defaultExpiresInSeconds,
      scope: body.scope,
      apiDomain: body.api_domain !== undefined && acceptableAPIDomain(body.api_domain, options.allowLoopbackAPIDomain === true) ? body.api_domain : undefined,
    },
  };
};
