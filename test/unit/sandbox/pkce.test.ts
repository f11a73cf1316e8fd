// PKCE (RFC 7636) at the sandbox: a client registered with requirePkce must send an S256
// challenge, and a challenge that is sent binds the code to its verifier.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import type { Client } from '../../../src/sandbox/server.ts';
import { type ErrorBody, REDIRECT_URI, type Running, basicAuth, decide, json, startSandbox } from './harness.ts';

// RFC 7636 appendix B.
const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

describe('sandbox PKCE', () => {
  let running: Running;
  let strict: Client;
  beforeEach(async () => {
    running = await startSandbox();
    strict = running.sandbox.registerClient({ redirectUri: REDIRECT_URI, requirePkce: true });
  });
  afterEach(async () => {
    await running.close();
  });

  const authorizePage = (client: Client, extra: Record<string, string> = {}) =>
    running.http.get('oauth/authorize', { searchParams: { client_id: client.clientId, redirect_uri: REDIRECT_URI, state: 's', response_type: 'code', ...extra } });

  const exchange = (client: Client, code: string, extra: Record<string, string> = {}) =>
    running.http.post('oauth/token', {
      headers: { authorization: basicAuth(client.clientId, client.clientSecret) },
      form: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, ...extra },
    });

  const codeFor = async (client: Client, fields: { codeChallenge?: string; codeChallengeMethod?: string } = {}) => {
    const location = await decide(running, 'allow', { clientId: client.clientId, ...fields });
    const code = location.searchParams.get('code');
    if (code === null) throw new Error(`no code: ${location.href}`);
    return code;
  };

  it('carries the challenge through the consent form', async () => {
    const response = await authorizePage(strict, { code_challenge: challenge, code_challenge_method: 'S256' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain(`name="code_challenge" value="${challenge}"`);
    expect(response.body).toContain('name="code_challenge_method" value="S256"');
  });

  it.each([
    ['no challenge from a client that requires PKCE', {}, 'code_challenge required'],
    ['the plain method', { code_challenge: verifier, code_challenge_method: 'plain' }, 'transform algorithm not supported'],
    ['a challenge without a method (plain by default)', { code_challenge: challenge }, 'transform algorithm not supported'],
    ['a challenge that is not an S256 digest', { code_challenge: 'short', code_challenge_method: 'S256' }, 'code_challenge is invalid'],
  ])('sends %s back to the callback with invalid_request, at authorize and at the decision', async (_title, extra: Record<string, string>, description) => {
    const page = await authorizePage(strict, extra);
    expect(page.statusCode).toBe(302);
    const location = new URL(page.headers.location ?? '');
    expect(Object.fromEntries(location.searchParams)).toEqual({ error: 'invalid_request', error_description: expect.stringContaining(description), state: 's' });

    const decided = await decide(running, 'allow', {
      clientId: strict.clientId,
      ...(extra.code_challenge === undefined ? {} : { codeChallenge: extra.code_challenge }),
      ...(extra.code_challenge_method === undefined ? {} : { codeChallengeMethod: extra.code_challenge_method }),
    });
    expect(decided.searchParams.get('error')).toBe('invalid_request');
    expect(decided.searchParams.has('code')).toBe(false);
  });

  it('exchanges a code with the verifier of its challenge', async () => {
    const code = await codeFor(strict, { codeChallenge: challenge, codeChallengeMethod: 'S256' });
    const response = await exchange(strict, code, { code_verifier: verifier });
    expect(response.statusCode).toBe(200);
    expect(running.sandbox.stats().presentedAuthorizationCodes).toEqual([expect.objectContaining({ value: code, codeVerifier: verifier, outcome: 'ok' })]);
  });

  it.each([
    ['a wrong verifier', { code_verifier: `${verifier.slice(0, -1)}Y` }, 'code_verifier does not match'],
    ['no verifier', {}, 'code_verifier is missing'],
    ['a verifier too short for RFC 7636', { code_verifier: 'abc' }, 'code_verifier is invalid'],
  ])('refuses a code with a challenge and %s as invalid_grant', async (_title, extra: Record<string, string>, description) => {
    const code = await codeFor(strict, { codeChallenge: challenge, codeChallengeMethod: 'S256' });
    const response = await exchange(strict, code, extra);
    expect(response.statusCode).toBe(400);
    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_grant', error_description: expect.stringContaining(description) });
    // The refusal did not spend the code: the right verifier still works (no guessing game is lost by the owner).
    expect((await exchange(strict, code, { code_verifier: verifier })).statusCode).toBe(200);
  });

  it('verifies a challenge from a client that does not require PKCE, too', async () => {
    const code = await codeFor(running.client, { codeChallenge: challenge, codeChallengeMethod: 'S256' });
    expect(json<ErrorBody>(await exchange(running.client, code, { code_verifier: 'x'.repeat(43) })).error).toBe('invalid_grant');
    expect((await exchange(running.client, code, { code_verifier: verifier })).statusCode).toBe(200);
  });

  it('refuses a verifier for a code issued without a challenge (RFC 9700 §2.1.1: a PKCE downgrade)', async () => {
    const code = await codeFor(running.client);
    const response = await exchange(running.client, code, { code_verifier: verifier });
    expect(json<ErrorBody>(response)).toEqual({ error: 'invalid_grant', error_description: expect.stringContaining('no code_challenge') });
  });

  it('keeps working without PKCE for a client that does not require it, as Pipedrive documents it', async () => {
    const code = await codeFor(running.client);
    expect((await exchange(running.client, code)).statusCode).toBe(200);
  });

  it('checks the RFC 7636 appendix B pair the way a client computes it', () => {
    expect(createHash('sha256').update(verifier, 'ascii').digest('base64url')).toBe(challenge);
  });
});
