import type { FastifyInstance } from 'fastify';
import type { SandboxContext } from '../context.ts';

/** The one user every sandbox install belongs to. */
export const SANDBOX_USER = {
  id: 1,
  name: 'Sandbox User',
  email: 'sandbox.user@example.com',
  company_id: 1,
  company_name: 'Sandbox Company',
  company_domain: 'sandbox-company',
  active_flag: true,
} as const;

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
      return { success: true, data: { ...SANDBOX_USER, scope: grant.scope } };
    });
  }
};
