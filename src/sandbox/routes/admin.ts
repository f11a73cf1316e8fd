import type { FastifyError, FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { SandboxAdmin } from '../admin.ts';
import { SandboxError } from '../errors.ts';
import { FaultsSchema } from '../faults.ts';

const RegisterClientBody = z.strictObject({
  clientId: z.string().min(1).optional(),
  clientSecret: z.string().min(1).optional(),
  redirectUri: z.url(),
  authMethods: z.array(z.enum(['client_secret_basic', 'client_secret_post'])).min(1).optional(),
  scope: z.string().min(1).optional(),
  requirePkce: z.boolean().optional(),
});

const RotateSecretBody = z.strictObject({ clientSecret: z.string().min(1).optional() }).default({});

const ApiDomainBody = z.strictObject({ apiDomain: z.url().nullable() });

const ClientParams = z.object({ id: z.string().min(1) });

const pipedriveId = z.int().min(1);

const RefreshTokensBody = z.strictObject({ companyId: pipedriveId.optional(), userId: pipedriveId.optional() }).default({});

const MarketplaceInstallBody = z.strictObject({ companyId: pipedriveId, userId: pipedriveId.optional() });

/** `timestamp` is any string, not only ISO: a test may want to send the app a malformed one. */
const UninstallBody = z.strictObject({ companyId: pipedriveId, userId: pipedriveId.optional(), timestamp: z.string().min(1).optional() });

const STATUS_OF: Readonly<Record<SandboxError['code'], number>> = {
  SANDBOX_CLIENT_EXISTS: 409,
  SANDBOX_CLIENT_NOT_FOUND: 404,
  SANDBOX_CALLBACK_FAILED: 502,
};

/**
 * The admin API, JSON over HTTP, for humans and process-external tests. It is deliberately
 * unauthenticated: the sandbox is a local test server meant to listen on loopback only, and
 * this API hands out client secrets and tokens. Never expose it on a shared network.
 */
export const adminRoutes = (admin: SandboxAdmin) => async (app: FastifyInstance) => {
  app.setErrorHandler((error: FastifyError | SandboxError | z.ZodError, _request, reply) => {
    if (error instanceof SandboxError) {
      return reply.code(STATUS_OF[error.code]).send({ error: error.code, message: error.message });
    }
    if (error instanceof z.ZodError) {
      return reply.code(400).send({ error: 'SANDBOX_INVALID_BODY', message: z.prettifyError(error) });
    }
    const status = error.statusCode ?? 500;
    return reply.code(status).send({ error: error.code ?? 'SANDBOX_ERROR', message: error.message });
  });

  app.post('/admin/clients', async (request, reply) => {
    const client = admin.registerClient(RegisterClientBody.parse(request.body));
    return reply.code(201).send(client);
  });

  app.post('/admin/clients/:id/rotate-secret', async (request) => {
    const { id } = ClientParams.parse(request.params);
    const { clientSecret } = RotateSecretBody.parse(request.body ?? undefined);
    return { clientId: id, clientSecret: admin.rotateClientSecret(id, clientSecret) };
  });

  app.post('/admin/clients/:id/refresh-tokens', async (request, reply) => {
    const { id } = ClientParams.parse(request.params);
    const { companyId, userId } = RefreshTokensBody.parse(request.body ?? undefined);
    const company = { ...(companyId === undefined ? {} : { companyId }), ...(userId === undefined ? {} : { userId }) };
    return reply.code(201).send({ refresh_token: admin.issueRefreshToken(id, company) });
  });

  app.post('/admin/clients/:id/marketplace-install', async (request, reply) => {
    const { id } = ClientParams.parse(request.params);
    const { companyId, userId } = MarketplaceInstallBody.parse(request.body);
    return reply.code(201).send(admin.marketplaceInstall(id, companyId, userId));
  });

  app.post('/admin/clients/:id/uninstall', async (request) => {
    const { id } = ClientParams.parse(request.params);
    const { companyId, userId, timestamp } = UninstallBody.parse(request.body);
    return admin.uninstall(id, companyId, {
      ...(userId === undefined ? {} : { userId }),
      ...(timestamp === undefined ? {} : { timestamp }),
    });
  });

  app.get('/admin/faults', async () => admin.faults());

  app.put('/admin/faults', async (request) => {
    admin.setFaults(FaultsSchema.parse(request.body ?? {}));
    return admin.faults();
  });

  app.put('/admin/api-domain', async (request) => {
    const { apiDomain } = ApiDomainBody.parse(request.body);
    admin.setApiDomain(apiDomain ?? undefined);
    return { apiDomain };
  });

  app.get('/admin/stats', async () => admin.stats());
};
