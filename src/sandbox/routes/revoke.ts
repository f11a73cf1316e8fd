import type { FastifyInstance } from 'fastify';
import { readClientCredentials } from '../client-auth.ts';
import type { Client } from '../clients.ts';
import type { SandboxContext } from '../context.ts';
import { OAuthError, invalidClient, invalidRequest } from '../errors.ts';
import { type FormParams, formParams, optionalParam, requiredParam } from '../form-params.ts';
import { FORM, acceptFormsOnly, isForm, noStore, sendError } from './oauth-http.ts';

/** The client, authenticated as at the token endpoint (same methods, same `invalid_client`). */
const authenticate = (ctx: SandboxContext, authorization: string | undefined, params: FormParams): Client => {
  const presented = readClientCredentials(authorization, {
    clientId: optionalParam(params, 'client_id'),
    clientSecret: optionalParam(params, 'client_secret'),
  });
  const client = ctx.clients.authenticate(presented.clientId, presented.clientSecret, presented.method);
  if (client === undefined) throw invalidClient();
  return client;
};

/**
 * POST /oauth/revoke (RFC 7009), what an app calls when it lets go of an install. Revoking any
 * token of a grant revokes the whole grant: its refresh token is `invalid_grant` at the token
 * endpoint from then on and its access tokens are refused by `/users/me`. `token_type_hint` is
 * read by nobody: both kinds of token are looked up (§2.1 allows ignoring it). Faults do not
 * apply here: they model the token endpoint only.
 */
export const revokeRoutes = (ctx: SandboxContext) => async (app: FastifyInstance) => {
  await acceptFormsOnly(app, ctx, 'revocation endpoint');

  app.post('/oauth/revoke', async (request, reply) => {
    if (!isForm(request)) return sendError(reply, invalidRequest(`Content-Type must be ${FORM}`, 415));
    const params = formParams(request.body);
    try {
      const client = authenticate(ctx, request.headers.authorization, params);
      const revoked = ctx.tokens.revoke(client, requiredParam(params, 'token'));
      ctx.stats.recordRevocation();
      ctx.log.info({ clientId: client.clientId, revoked }, 'token revocation');
      return noStore(reply).code(200).send({});
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      ctx.log.info({ outcome: error.code }, 'token revocation refused');
      return sendError(reply, error);
    }
  });
};
