import { describe, expect, it } from '@jest/globals';
import { fromErrorAnswer } from '../../../src/oauth/error-response.ts';
import { redactor } from '../../../src/oauth/redact.ts';

const now = Date.parse('2030-01-01T00:00:00Z');
const context = { now, redact: redactor(['s3cret']) };
const answer = (status: number, body: unknown, retryAfter?: string) =>
  fromErrorAnswer({ status, retryAfter, body: typeof body === 'string' ? body : JSON.stringify(body) }, context);

describe('an error answer from the token endpoint', () => {
  it.each([
    'refresh_token is invalid',
    'authorization_code has expired',
    'authorization_code is invalid',
    'redirect_uri is invalid',
  ])('is invalid_grant when Pipedrive says %j without an error code', (message) => {
    expect(answer(400, { success: false, message }).code).toBe('invalid_grant');
  });

  it('is invalid_grant when Pipedrive\'s wording is in error_description', () => {
    expect(answer(400, { error_description: 'refresh_token is invalid' }).code).toBe('invalid_grant');
  });

  it('is invalid_client when Pipedrive says "Invalid client" without an error code', () => {
    expect(answer(400, { message: 'Invalid client' }).code).toBe('invalid_client');
  });

  it('is invalid_client when the sentence "Invalid client" stands in the error field', () => {
    expect(answer(400, { error: 'Invalid client' })).toMatchObject({ code: 'invalid_client', providerError: undefined });
  });

  it('trusts a registered error code over the wording', () => {
    expect(answer(400, { error: 'invalid_request', error_description: 'refresh_token is invalid' }).code).toBe('rejected');
  });

  it('is invalid_grant for a 401 whose body says invalid_grant', () => {
    expect(answer(401, { error: 'invalid_grant' }).code).toBe('invalid_grant');
  });

  it.each(['', 'Unauthorized', '{"error":"invalid_token"}'])('is invalid_client for a 401 with body %j', (body) => {
    expect(answer(401, body).code).toBe('invalid_client');
  });

  it.each(['unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'invalid_request'])(
    'is rejected for %s and keeps the code in providerError',
    (error) => {
      expect(answer(400, { error })).toMatchObject({ code: 'rejected', providerError: error });
    },
  );

  it('is rejected for a 4xx without any body', () => {
    expect(answer(403, '')).toMatchObject({ code: 'rejected', status: 403, providerError: undefined });
  });

  it('is server_error for a 4xx whose code is temporarily_unavailable', () => {
    expect(answer(400, { error: 'temporarily_unavailable' }).code).toBe('server_error');
  });

  it('is rate_limited for 429 whatever the body says', () => {
    expect(answer(429, { error: 'invalid_grant' }, '5')).toMatchObject({ code: 'rate_limited', retryAfterMs: 5_000 });
  });

  it('keeps Retry-After on a 503', () => {
    expect(answer(503, '', '7')).toMatchObject({ code: 'server_error', status: 503, retryAfterMs: 7_000 });
  });

  it('reads a body that was too large to read as no body', () => {
    expect(fromErrorAnswer({ status: 401, retryAfter: undefined, body: undefined }, context).code).toBe('invalid_client');
  });

  it('says the status and the registered error code in its message, nothing the provider wrote', () => {
    expect(answer(400, { error: 'invalid_grant', error_description: 'expired' }).message).toBe('token endpoint refused the grant (HTTP 400 invalid_grant)');
  });

  it('leaves an unregistered error code out of its message', () => {
    expect(answer(400, { error: 'internal_host_10_0_0_5_said_no' }).message).toBe('token endpoint rejected the request (HTTP 400)');
  });

  it('keeps the code and the description as the detail for debug logs', () => {
    expect(answer(400, { error: 'invalid_grant', error_description: 'expired' }).detail).toBe('invalid_grant: expired');
  });

  it('caps the description in the detail at 200 characters', () => {
    const { detail } = answer(400, { error: 'invalid_grant', error_description: 'x'.repeat(1000) });
    expect(detail).toContain(`${'x'.repeat(200)}…`);
    expect(detail).not.toContain('x'.repeat(201));
  });

  it('removes secret values from the detail', () => {
    expect(answer(400, { error: 'invalid_grant', error_description: 'bad s3cret' }).detail).toContain('bad [redacted]');
  });

  it('flattens line breaks in the detail', () => {
    expect(answer(400, { error: 'invalid_grant', error_description: 'a\nb\r\nc' }).detail).toContain('a b c');
  });

  it("keeps the provider's error_description as its description, apart from the message", () => {
    expect(answer(400, { error: 'invalid_grant', error_description: 'refresh token expired after 60 days unused' }).description).toBe('refresh token expired after 60 days unused');
  });

  it("keeps Pipedrive's sentence as the description when it sends no error_description", () => {
    expect(answer(400, { success: false, message: 'refresh_token is invalid' }).description).toBe('refresh_token is invalid');
  });

  it('has no description when the provider gave none', () => {
    expect(answer(400, { error: 'invalid_grant' }).description).toBeUndefined();
  });

  it('removes secret values, also form-encoded, from the description', () => {
    const { description } = fromErrorAnswer(
      { status: 400, retryAfter: undefined, body: JSON.stringify({ error: 'invalid_grant', error_description: 'got refresh_token=a%2Fb and a/b' }) },
      { now, redact: redactor(['a/b']) },
    );
    expect(description).toBe('got refresh_token=[redacted] and [redacted]');
  });

  it('caps the description at 200 characters on one line', () => {
    const { description } = answer(400, { error: 'invalid_grant', error_description: `a\nb ${'x'.repeat(1000)}` });
    expect(description).toBe(`a b ${'x'.repeat(196)}…`);
  });
});
