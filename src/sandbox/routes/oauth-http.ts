import formbody from '@fastify/formbody';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SandboxContext } from '../context.ts';
import { type OAuthError, invalidRequest } from '../errors.ts';

/** What the token and revocation endpoints share: form bodies in, RFC 6749 §5.2 errors out. */

export const FORM = 'application/x-www-form-urlencoded';

export const noStore = (reply: FastifyReply): FastifyReply =>
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

export const sendError = (reply: FastifyReply, error: OAuthError) => {
  if (error.status === 401) reply.header('www-authenticate', 'Basic realm="oauth"');
  return noStore(reply).code(error.status).send({ error: error.code, error_description: error.description });
};

export const isForm = (request: FastifyRequest): boolean =>
  (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() === FORM;

/**
 * Within the calling plugin: only form bodies are parsed; every other content type is accepted by
 * a catch-all parser and left for the route to refuse with an RFC 6749 style body (so that it is
 * counted like any other request); parser errors become `invalid_request` and crashes a bare
 * `server_error`.
 */
export const acceptFormsOnly = async (app: FastifyInstance, ctx: SandboxContext, endpoint: string): Promise<void> => {
  app.removeAllContentTypeParsers();
  await app.register(formbody);
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));

  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      ctx.log.error({ code: error.code }, `${endpoint} failed`);
      return noStore(reply).code(500).send({ error: 'server_error', error_description: 'Internal error' });
    }
    return sendError(reply, invalidRequest(error.message, status === 415 ? 415 : 400));
  });
};
