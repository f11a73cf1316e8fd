import formbody from '@fastify/formbody';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readClientCredentials } from '../client-auth.ts';
import type { SandboxContext } from '../context.ts';
import { OAuthError, invalidClient, invalidRequest } from '../errors.ts';
import type { Fault } from '../faults.ts';
import { type FormParams, formParams, optionalParam, rawParam, requiredParam } from '../form-params.ts';
import type { TokenOutcome } from '../stats.ts';
import type { IssuedTokens } from '../token-service.ts';

const FORM = 'application/x-www-form-urlencoded';

const noStore = (reply: FastifyReply): FastifyReply =>
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

const sendError = (reply: FastifyReply, error: OAuthError) => {
  if (error.status === 401) reply.header('www-authenticate', 'Basic realm="oauth"');
  return noStore(reply).code(error.status).send({ error: error.code, error_description: error.description });
};

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

const isForm = (request: FastifyRequest): boolean =>
  (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() === FORM;

/**
 * POST /oauth/token. Only form bodies are read: every other content type is accepted by a
 * catch-all parser and then refused here with an RFC 6749 style body (415, `invalid_request`),
 * so that it is counted like any other token request.
 */
export const tokenRoutes = (ctx: SandboxContext) => async (app: FastifyInstance) => {
  app.removeAllContentTypeParsers();
  await app.register(formbody);
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));

  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      ctx.log.error({ code: error.code }, 'token endpoint failed');
      return noStore(reply).code(500).send({ error: 'server_error', error_description: 'Internal error' });
    }
    return sendError(reply, invalidRequest(error.message, status === 415 ? 415 : 400));
  });

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
