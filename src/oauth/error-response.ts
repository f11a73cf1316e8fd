// Turns a token endpoint's non-2xx answer into a TokenRequestError (RFC 6749 §5.2, plus the
// status codes and Pipedrive wording the design names).
import { z } from 'zod';
import { TokenRequestError, type TokenErrorCode } from './errors.ts';
import { providerText, type Redact } from './redact.ts';
import { parseRetryAfter } from './retry-after.ts';
import { parseJSON } from './token-response.ts';

export interface ErrorAnswer {
  readonly status: number;
  readonly retryAfter: string | undefined;
  /** Undefined when the body was too large to read. */
  readonly body: string | undefined;
}

export interface ErrorAnswerContext {
  readonly now: number;
  /** Removes the secret values that were sent from provider text. */
  readonly redact: Redact;
}

// Read leniently: a field of the wrong type is ignored rather than making the body unreadable.
const text = z.string().optional().catch(undefined);
const errorBody = z.object({ error: text, error_description: text, message: text });

/** RFC 6749 §5.2, plus §4.1.2.1's server_error and temporarily_unavailable that some servers send here. */
const registeredCodes: ReadonlySet<string> = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'server_error',
  'temporarily_unavailable',
]);

/** What an `error` value must look like to be a code and not a sentence (RFC 6749 §5.2 charset). */
const codeLike = /^[\x21\x23-\x5b\x5d-\x7e]{1,64}$/;

// Pipedrive answers 400 with prose and no RFC code; these are its wordings.
const pipedriveGrantMessages = [
  /\brefresh_token is invalid\b/i,
  /\bauthorization_code (?:is invalid|has expired)\b/i,
  /\bredirect_uri is invalid\b/i,
];
const pipedriveClientMessages = [/\binvalid client\b/i];

interface ProviderSays {
  readonly code: string | undefined;
  readonly description: string | undefined;
  /** Every text field, for recognising Pipedrive's wording wherever it puts it. */
  readonly words: string;
}

const readBody = (body: string | undefined): ProviderSays => {
  const parsed = errorBody.safeParse(body === undefined ? undefined : parseJSON(body));
  if (!parsed.success) return { code: undefined, description: undefined, words: '' };
  const { error, error_description: errorDescription, message } = parsed.data;
  const code = error !== undefined && codeLike.test(error) ? error : undefined;
  const sentence = code === undefined ? error : undefined;
  const words = [error, errorDescription, message].filter((value) => value !== undefined).join('\n');
  return { code, description: errorDescription ?? message ?? sentence, words };
};

const classify = (status: number, says: ProviderSays): TokenErrorCode => {
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server_error';
  if (status < 400) return 'malformed_response';
  switch (says.code) {
    case 'invalid_grant':
    case 'invalid_client':
      return says.code;
    case 'server_error':
    case 'temporarily_unavailable':
      return 'server_error';
  }
  if (says.code === undefined || !registeredCodes.has(says.code)) {
    if (pipedriveGrantMessages.some((pattern) => pattern.test(says.words))) return 'invalid_grant';
    if (pipedriveClientMessages.some((pattern) => pattern.test(says.words))) return 'invalid_client';
    // A 401 from a token endpoint is the client authentication failing (RFC 6749 §5.2).
    if (status === 401) return 'invalid_client';
  }
  return 'rejected';
};

const summaries: Readonly<Record<TokenErrorCode, string>> = {
  invalid_grant: 'token endpoint refused the grant',
  invalid_client: 'token endpoint refused the client credentials',
  rate_limited: 'token endpoint is rate limiting',
  server_error: 'token endpoint failed',
  malformed_response: 'token endpoint answered with an unexpected status',
  rejected: 'token endpoint rejected the request',
  timeout: 'token request timed out',
  network: 'token request failed',
  aborted: 'token request aborted',
};

export const fromErrorAnswer = (answer: ErrorAnswer, context: ErrorAnswerContext): TokenRequestError => {
  const says = readBody(answer.body);
  const code = classify(answer.status, says);
  const providerError = says.code === undefined ? undefined : providerText(says.code, context.redact);
  const description = says.description === undefined ? undefined : providerText(says.description, context.redact);
  const retryAfterMs =
    code === 'rate_limited' || code === 'server_error' ? parseRetryAfter(answer.retryAfter, context.now) : undefined;
  // The message reaches status and Events: the status and a registered RFC 6749 code only. The
  // provider's description (redacted, capped) travels apart from it, so that status can quote it
  // as the provider's word; code and description together are the debug-log detail.
  const said = [providerError, description].filter((part) => part !== undefined && part !== '').join(': ');
  const registered = says.code !== undefined && registeredCodes.has(says.code) ? ` ${says.code}` : '';
  const wait = retryAfterMs === undefined ? '' : `, retry after ${Math.ceil(retryAfterMs / 1000)}s`;
  const message = `${summaries[code]} (HTTP ${answer.status}${registered}${wait})`;
  return new TokenRequestError(message, {
    code,
    delivery: 'answered',
    status: answer.status,
    retryAfterMs,
    providerError,
    ...(description === undefined || description === '' ? {} : { description }),
    ...(said === '' ? {} : { detail: said }),
  });
};

/** A 2xx whose body is not a usable token response (but may still carry a new refresh token). */
export const malformedAnswer = (status: number, problem: string, refreshToken?: string): TokenRequestError =>
  new TokenRequestError(`token endpoint answered HTTP ${status} without a usable token response: ${problem}`, {
    code: 'malformed_response',
    delivery: 'answered',
    status,
    ...(refreshToken === undefined ? {} : { refreshToken }),
  });
