import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Client } from '../clients.ts';
import { type CompanyUser, companyUserFromForm } from '../company.ts';
import type { SandboxContext } from '../context.ts';
import { OAuthError } from '../errors.ts';
import { type FormParams, formParams, optionalParam } from '../form-params.ts';
import { errorPage, marketplacePage } from '../html.ts';
import { marketplaceInstall } from '../marketplace.ts';

interface InstallRequest {
  readonly client: Client;
  readonly owner: CompanyUser;
}

/**
 * The app and the installing company, or why there is no install: an unknown app gets an error
 * page, never a redirect (there is no callback URL to trust). `company_id` is required (the
 * Marketplace always knows the company), `user_id` defaults to 1.
 */
const readInstallRequest = (ctx: SandboxContext, params: FormParams): InstallRequest | string => {
  try {
    const clientId = optionalParam(params, 'client_id');
    if (clientId === undefined) return 'client_id is missing';
    const client = ctx.clients.find(clientId);
    if (client === undefined) return 'client_id is invalid: no such app';
    const companyId = optionalParam(params, 'company_id');
    if (companyId === undefined) return 'company_id is missing';
    const owner = companyUserFromForm(companyId, optionalParam(params, 'user_id'));
    if (owner === undefined) return 'company_id and user_id must be positive integers';
    return { client, owner };
  } catch (error) {
    if (error instanceof OAuthError) return error.description;
    throw error;
  }
};

const refuse = (reply: FastifyReply, problem: string) =>
  reply.code(400).type('text/html; charset=utf-8').send(errorPage(problem));

/**
 * The Pipedrive Marketplace, for public apps: GET /marketplace/install shows "Install <app> for
 * company N"; its button posts to POST /marketplace/install, which sends the browser to the app's
 * registered callback with a `code` for that company and nothing else (no state, no PKCE).
 */
export const marketplaceRoutes = (ctx: SandboxContext) => async (app: FastifyInstance) => {
  app.get('/marketplace/install', async (request, reply) => {
    const checked = readInstallRequest(ctx, formParams(request.query));
    if (typeof checked === 'string') return refuse(reply, checked);
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(marketplacePage({ clientId: checked.client.clientId, scope: checked.client.scope, ...checked.owner }));
  });

  app.post('/marketplace/install', async (request, reply) => {
    const checked = readInstallRequest(ctx, formParams(request.body));
    if (typeof checked === 'string') return refuse(reply, checked);
    const { redirectURL } = marketplaceInstall(ctx, checked.client, checked.owner);
    return reply.redirect(redirectURL, 302);
  });
};
