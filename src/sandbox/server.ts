import formbody from '@fastify/formbody';
import { type FastifyInstance, fastify } from 'fastify';
import { type SandboxAdmin, createAdmin } from './admin.ts';
import { ClientRegistry } from './clients.ts';
import { CodeStore } from './codes.ts';
import type { SandboxContext } from './context.ts';
import { FaultInjector, type Faults, type FaultsInput } from './faults.ts';
import { GrantStore } from './grants.ts';
import { type SandboxOptions, resolveOptions } from './options.ts';
import { adminRoutes } from './routes/admin.ts';
import { authorizeRoutes } from './routes/authorize.ts';
import { marketplaceRoutes } from './routes/marketplace.ts';
import { revokeRoutes } from './routes/revoke.ts';
import { tokenRoutes } from './routes/token.ts';
import { usersMeRoutes } from './routes/users-me.ts';
import { StatsRecorder } from './stats.ts';
import { TokenService } from './token-service.ts';

export type { SandboxOptions } from './options.ts';
export type { Client, ClientAuthMethod, ClientRegistration } from './clients.ts';
export type { CompanyUser, CompanyUserInput } from './company.ts';
export type { MarketplaceInstall } from './marketplace.ts';
export type { UninstallOptions, UninstallResult } from './uninstall.ts';
export type { Faults, FaultsInput } from './faults.ts';
export type { Presentation, SandboxStats, TokenOutcome } from './stats.ts';

/** A Pipedrive-compatible OAuth server, driven in-process or over `/admin/...`. */
export interface Sandbox extends Omit<SandboxAdmin, 'faults' | 'setFaults'> {
  /** The fastify instance (`app.inject` works without listening). */
  readonly app: FastifyInstance;
  /** Starts listening; resolves to the base URL, e.g. `http://127.0.0.1:8090`. */
  listen(address: { host: string; port: number }): Promise<string>;
  close(): Promise<void>;
  /** The faults in force (counts go down as they fire); assigning replaces them all. */
  get faults(): Faults;
  set faults(faults: FaultsInput);
}

const buildContext = (options: SandboxOptions): SandboxContext => {
  const resolved = resolveOptions(options);
  const codes = new CodeStore(resolved.now, resolved.codeTtlMs);
  const grants = new GrantStore(resolved.now, {
    accessTokenTtlMs: resolved.expiresIn * 1000,
    refreshTokenIdleTtlMs: resolved.refreshTokenIdleTtlMs,
  });
  return {
    clients: new ClientRegistry(resolved.scope),
    codes,
    grants,
    tokens: new TokenService(codes, grants, {
      expiresInSeconds: resolved.expiresIn,
      rotateRefreshTokens: resolved.rotateRefreshTokens,
      omitUnchangedRefreshToken: resolved.omitUnchangedRefreshToken,
      revokeGrantOnReplay: resolved.revokeGrantOnReplay,
    }),
    faults: new FaultInjector(),
    stats: new StatsRecorder(resolved.now),
    log: resolved.logger,
    sleep: resolved.sleep,
    now: resolved.now,
    apiDomain: resolved.apiDomain,
  };
};

export const createSandbox = (options: SandboxOptions = {}): Sandbox => {
  const ctx = buildContext(options);
  const admin = createAdmin(ctx);
  // fastify's own request logging is off: it would log query strings; one line per response
  // names the route pattern only.
  const app = fastify({ logger: false });
  app.addHook('onResponse', async (request, reply) => {
    ctx.log.debug({ method: request.method, route: request.routeOptions.url, status: reply.statusCode }, 'request');
  });
  void app.register(formbody);
  void app.register(authorizeRoutes(ctx));
  void app.register(tokenRoutes(ctx));
  void app.register(revokeRoutes(ctx));
  void app.register(marketplaceRoutes(ctx));
  void app.register(usersMeRoutes(ctx));
  void app.register(adminRoutes(admin));

  return {
    app,
    async listen({ host, port }) {
      const url = await app.listen({ host, port });
      ctx.log.info({ url }, 'sandbox listening');
      return url;
    },
    close: () => app.close(),
    registerClient: (registration) => admin.registerClient(registration),
    rotateClientSecret: (clientId, newSecret) => admin.rotateClientSecret(clientId, newSecret),
    issueRefreshToken: (clientId, company) => admin.issueRefreshToken(clientId, company),
    marketplaceInstall: (clientId, companyId, userId) => admin.marketplaceInstall(clientId, companyId, userId),
    uninstall: (clientId, companyId, options) => admin.uninstall(clientId, companyId, options),
    get faults() {
      return admin.faults();
    },
    set faults(faults) {
      admin.setFaults(faults);
    },
    setApiDomain: (apiDomain) => admin.setApiDomain(apiDomain),
    stats: () => admin.stats(),
  };
};
