import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Client } from '../clients.ts';
import { type CompanyUser, companyUserFromForm } from '../company.ts';
import type { SandboxContext } from '../context.ts';
import { OAuthError } from '../errors.ts';
import { type FormParams, formParams, optionalParam } from '../form-params.ts';
import { consentPage, errorPage } from '../html.ts';

interface AuthorizeRequest {
  readonly client: Client;
  readonly redirectUri: string;
  readonly state: string | undefined;
}

/** An S256 challenge is BASE64URL of a SHA-256 digest: 43 characters (RFC 7636 §4.2). */
const s256Challenge = /^[A-Za-z0-9_-]{43}$/;

/**
 * PKCE (RFC 7636 §4.4): the request's S256 code_challenge, or why the request is refused. Only
 * S256 is supported (RFC 9700 §2.1.1: plain reveals the verifier); a client registered with
 * requirePkce must send one.
 */
const readCodeChallenge = (client: Client, params: FormParams): { codeChallenge: string | undefined } | { problem: string } => {
  try {
    const codeChallenge = optionalParam(params, 'code_challenge');
    const method = optionalParam(params, 'code_challenge_method');
    if (codeChallenge === undefined) {
      if (method !== undefined) return { problem: 'code_challenge_method without code_challenge' };
      return client.requirePkce ? { problem: 'code_challenge required: this app must use PKCE (S256)' } : { codeChallenge: undefined };
    }
    if (method !== 'S256') return { problem: 'transform algorithm not supported: code_challenge_method must be S256' };
    if (!s256Challenge.test(codeChallenge)) return { problem: 'code_challenge is invalid: an S256 challenge is 43 base64url characters' };
    return { codeChallenge };
  } catch (error) {
    if (error instanceof OAuthError) return { problem: error.description };
    throw error;
  }
};

/**
 * The checks that come before any redirect: an unknown client or a redirect_uri other than the
 * registered one gets an error page, never a redirect (RFC 6749 §4.1.2.1).
 */
const readAuthorizeRequest = (ctx: SandboxContext, params: FormParams): AuthorizeRequest | string => {
  try {
    const clientId = optionalParam(params, 'client_id');
    if (clientId === undefined) return 'client_id is missing';
    const client = ctx.clients.find(clientId);
    if (client === undefined) return 'client_id is invalid: no such app';
    const redirectUri = optionalParam(params, 'redirect_uri');
    if (redirectUri === undefined) return 'redirect_uri is missing';
    if (redirectUri !== client.redirectUri) return 'redirect_uri is invalid: it is not the callback URL registered for this app';
    return { client, redirectUri, state: optionalParam(params, 'state') };
  } catch (error) {
    if (error instanceof OAuthError) return error.description;
    throw error;
  }
};

/**
 * Who consents: the decision's optional `company_id` and `user_id` (default 1 each), so that one
 * browser can install an app for several companies. Otherwise the problem, shown as a page: these
 * are the consent screen's own fields, not the client's request.
 */
const readConsentingUser = (params: FormParams): CompanyUser | string => {
  try {
    const owner = companyUserFromForm(optionalParam(params, 'company_id'), optionalParam(params, 'user_id'));
    return owner ?? 'company_id and user_id must be positive integers';
  } catch (error) {
    if (error instanceof OAuthError) return error.description;
    throw error;
  }
};

const redirectTo = (reply: FastifyReply, redirectUri: string, params: Readonly<Record<string, string | undefined>>) => {
  const target = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) target.searchParams.set(name, value);
  }
  return reply.redirect(target.toString(), 302);
};

const refuse = (reply: FastifyReply, problem: string) =>
  reply.code(400).type('text/html; charset=utf-8').send(errorPage(problem));

/**
 * GET /oauth/authorize shows the consent page; POST /oauth/authorize/decision is what its
 * buttons (or a scripted client) send. A requested `scope` is ignored: as on Pipedrive, the
 * app's scope is fixed at registration.
 */
export const authorizeRoutes = (ctx: SandboxContext) => async (app: FastifyInstance) => {
  app.get('/oauth/authorize', async (request, reply) => {
    const params = formParams(request.query);
    const checked = readAuthorizeRequest(ctx, params);
    if (typeof checked === 'string') return refuse(reply, checked);
    const responseType = params['response_type'];
    if (responseType !== undefined && responseType !== 'code') {
      return redirectTo(reply, checked.redirectUri, { error: 'unsupported_response_type', state: checked.state });
    }
    const pkce = readCodeChallenge(checked.client, params);
    if ('problem' in pkce) {
      return redirectTo(reply, checked.redirectUri, { error: 'invalid_request', error_description: pkce.problem, state: checked.state });
    }
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(consentPage({ ...checked, clientId: checked.client.clientId, scope: checked.client.scope, codeChallenge: pkce.codeChallenge }));
  });

  app.post('/oauth/authorize/decision', async (request, reply) => {
    const params = formParams(request.body);
    const checked = readAuthorizeRequest(ctx, params);
    if (typeof checked === 'string') return refuse(reply, checked);
    const decision = params['decision'];
    if (decision === 'deny') {
      ctx.log.info({ clientId: checked.client.clientId }, 'authorization denied');
      return redirectTo(reply, checked.redirectUri, { error: 'access_denied', state: checked.state });
    }
    if (decision !== 'allow') return refuse(reply, 'decision must be allow or deny');
    const pkce = readCodeChallenge(checked.client, params);
    if ('problem' in pkce) {
      return redirectTo(reply, checked.redirectUri, { error: 'invalid_request', error_description: pkce.problem, state: checked.state });
    }
    const owner = readConsentingUser(params);
    if (typeof owner === 'string') return refuse(reply, owner);
    const code = ctx.codes.issue(checked.client.clientId, checked.redirectUri, owner, pkce.codeChallenge);
    ctx.log.info({ clientId: checked.client.clientId, companyId: owner.companyId, userId: owner.userId }, 'authorization code issued');
    return redirectTo(reply, checked.redirectUri, { code, state: checked.state });
  });
};
