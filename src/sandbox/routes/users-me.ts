import type { FastifyInstance } from 'fastify';
import type { CompanyUser } from '../company.ts';
import type { SandboxContext } from '../context.ts';
import type { Grant } from '../grants.ts';

/** User 1 of company 1: who every install belongs to unless a company was named. */
export const SANDBOX_USER = {
  id: 1,
  name: 'Sandbox User',
  email: 'sandbox.user@example.com',
  company_id: 1,
  company_name: 'Sandbox Company',
  company_domain: 'sandbox-company',
  active_flag: true,
} as const;

/**
 * The user and company behind a grant, Pipedrive-shaped. Company 1's user 1 is SANDBOX_USER as it
 * always was, so that single-company clients and specs see no change; other ids get names derived
 * from them, so that a public app can tell its installs apart.
 */
export const sandboxUser = ({ companyId, userId }: CompanyUser) => ({
  id: userId,
  name: userId === SANDBOX_USER.id ? SANDBOX_USER.name : `Sandbox User ${userId}`,
  email: userId === SANDBOX_USER.id ? SANDBOX_USER.email : `sandbox.user.${userId}@example.com`,
  company_id: companyId,
  company_name: companyId === SANDBOX_USER.company_id ? SANDBOX_USER.company_name : `Sandbox Company ${companyId}`,
  company_domain: companyId === SANDBOX_USER.company_id ? SANDBOX_USER.company_domain : `sandbox-company-${companyId}`,
  active_flag: true,
});

const userOfGrant = (grant: Grant) => sandboxUser({ companyId: grant.companyId, userId: grant.userId });

const UNAUTHORIZED = {
  success: false,
  error: 'unauthorized access',
  errorCode: 401,
  error_info: 'Please check developers.pipedrive.com for more information about Pipedrive API.',
} as const;

const bearerToken = (authorization: string | undefined): string | undefined =>
  /^bearer +(\S+)\s*$/i.exec(authorization ?? '')?.[1];

/**
 * The "who am I" check of an access token: `/v1/users/me`, and `/api/v1/users/me` so that
 * `${api_domain}/api/v1/users/me` works as it does against Pipedrive.
 */
export const usersMeRoutes = (ctx: SandboxContext) => async (app: FastifyInstance) => {
  for (const path of ['/v1/users/me', '/api/v1/users/me']) {
    app.get(path, async (request, reply) => {
      const token = bearerToken(request.headers.authorization);
      const grant = token === undefined ? undefined : ctx.grants.liveGrantOfAccessToken(token);
      if (grant === undefined) return reply.code(401).send(UNAUTHORIZED);
      return { success: true, data: { ...userOfGrant(grant), scope: grant.scope } };
    });
  }
};
