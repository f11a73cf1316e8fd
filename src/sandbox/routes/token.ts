import type { FastifyInstance, FastifyReply } from 'fastify';
import { readClientCredentials } from '../client-auth.ts';
import type { SandboxContext } from '../context.ts';
import { OAuthError, invalidClient, invalidRequest } from '../errors.ts';
import type { Fault } from '../faults.ts';
import { type FormParams, formParams, optionalParam, rawParam, requiredParam } from '../form-params.ts';
import type { TokenOutcome } from '../stats.ts';
import type { IssuedTokens } from '../token-service.ts';
import { FORM, acceptFormsOnly, isForm, noStore, sendError } from './oauth-http.ts';

const sendFault = (reply: FastifyReply, fault: Exclude<Fault, { kind: 'none' }>) => {
  switch (fault.kind) {
    case 'status429':
      return reply
        .code(429)
        .header('retry-after', String(fault.retryAfterSeconds))
        .send({ error: 'too_many_requests', error_description: 'Request over limit' });
    case 'status5xx':
      return reply.code(fault.status).send({ error: 'server_error', error_description: 'Sandbox fault' });
    case 'malformedBody':
      return noStore(reply).code(200).type('application/json; charset=utf-8').send(fault.body);
  }
};

const issueTokens = (ctx: SandboxContext, authorization: string | undefined, params: FormParams): IssuedTokens => {
  const presented = readClientCredentials(authorization, {
    clientId: optionalParam(params, 'client_id'),
    clientSecret: optionalParam(params, 'client_secret'),
  });
  const client = ctx.clients.authenticate(presented.clientId, presented.clientSecret, presented.method);
  if (client === undefined) throw invalidClient();
  const grantType = requiredParam(params, 'grant_type');
  switch (grantType) {
    case 'authorization_code':
      return ctx.tokens.exchangeCode(client, requiredParam(params, 'code'), requiredParam(params, 'redirect_uri'), optionalParam(params, 'code_verifier'));
    case 'refresh_token':
      return ctx.tokens.refresh(client, requiredParam(params, 'refresh_token'));
    default:
      throw new OAuthError('unsupported_grant_type', `grant_type ${grantType} is not supported`);
  }
};

/** The client id a request claims, for the record only (never trusted). */
const claimedClientId = (authorization: string | undefined, params: FormParams): string | undefined => {
  try {
    return readClientCredentials(authorization, { clientId: rawParam(params, 'client_id'), clientSecret: undefined })
      .clientId;
  } catch {
    return rawParam(params, 'client_id');
  }
};

/**
 * POST /oauth/token. Only form bodies are read: every other content type is accepted by a
 * catch-all parser and then refused here with an RFC 6749 style body (415, `invalid_request`),
 * so that it is counted like any other token request.
 */
export const tokenRoutes = (ctx: SandboxContext) => async (app: FastifyInstance) => {
  await acceptFormsOnly(app, ctx, 'token endpoint');

  app.post('/oauth/token', async (request, reply) => {
    const params = isForm(request) ? formParams(request.body) : {};
    const authorization = request.headers.authorization;
    const grantType = rawParam(params, 'grant_type');
    const record = (outcome: TokenOutcome): void => {
      const clientId = claimedClientId(authorization, params);
      ctx.stats.record({
        grantType,
        clientId,
        refreshToken: rawParam(params, 'refresh_token'),
        code: rawParam(params, 'code'),
        codeVerifier: rawParam(params, 'code_verifier'),
        outcome,
      });
      ctx.log.info({ grantType, clientId, outcome }, 'token request');
    };

    if (!isForm(request)) {
      record('invalid_request');
      return sendError(reply, invalidRequest(`Content-Type must be ${FORM}`, 415));
    }
    if (ctx.faults.delayMs > 0) await ctx.sleep(ctx.faults.delayMs);
    const fault = ctx.faults.next();
    if (fault.kind !== 'none') {
      record(fault.kind);
      return sendFault(reply, fault);
    }
    try {
      const tokens = issueTokens(ctx, authorization, params);
      record('ok');
      return noStore(reply).send({ ...tokens, api_domain: ctx.apiDomain ?? `${request.protocol}://${request.host}` });
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      record(error.code);
      return sendError(reply, error);
    }
  });
};
