import type { Client, ClientRegistration } from './clients.ts';
import { type CompanyUserInput, companyUser } from './company.ts';
import type { SandboxContext } from './context.ts';
import type { Faults, FaultsInput } from './faults.ts';
import { type MarketplaceInstall, marketplaceInstall } from './marketplace.ts';
import type { SandboxStats } from './stats.ts';
import { type UninstallOptions, type UninstallResult, uninstall } from './uninstall.ts';

/** What a test or a human does to the sandbox from outside the OAuth flows. */
export interface SandboxAdmin {
  registerClient(registration: ClientRegistration): Client;
  /** The portal's "Refresh" button: the old secret is refused at once; issued tokens stay valid. */
  rotateClientSecret(clientId: string, newSecret?: string): string;
  /**
   * A refresh token as if the app had been installed (a grant with no access token yet), by
   * `company` (default company 1, user 1).
   */
  issueRefreshToken(clientId: string, company?: CompanyUserInput): string;
  /**
   * "Install now" in the Marketplace by a user (default 1) of `companyId`, without the HTML: the
   * code and the callback URL the browser would be sent to (with `code` only: no state, no PKCE).
   */
  marketplaceInstall(clientId: string, companyId: number, userId?: number): MarketplaceInstall;
  /**
   * The company uninstalls the app: revokes every grant of the app in that company, then sends
   * Pipedrive's DELETE to the app's callback URL; resolves to the status it answered with.
   */
  uninstall(clientId: string, companyId: number, options?: UninstallOptions): Promise<UninstallResult>;
  setFaults(faults: FaultsInput): void;
  faults(): Faults;
  /** The `api_domain` of later token responses; undefined: this server's own origin. */
  setApiDomain(apiDomain: string | undefined): void;
  stats(): SandboxStats;
}

export const createAdmin = (ctx: SandboxContext): SandboxAdmin => ({
  registerClient(registration) {
    const client = ctx.clients.register(registration);
    ctx.log.info({ clientId: client.clientId }, 'client registered');
    return client;
  },
  rotateClientSecret(clientId, newSecret) {
    const secret = ctx.clients.rotateSecret(clientId, newSecret);
    ctx.log.info({ clientId }, 'client secret refreshed');
    return secret;
  },
  issueRefreshToken(clientId, company) {
    return ctx.tokens.bootstrapRefreshToken(ctx.clients.get(clientId), companyUser(company));
  },
  marketplaceInstall(clientId, companyId, userId) {
    const owner = companyUser({ companyId, ...(userId === undefined ? {} : { userId }) });
    return marketplaceInstall(ctx, ctx.clients.get(clientId), owner);
  },
  async uninstall(clientId, companyId, options) {
    const client = ctx.clients.get(clientId);
    // Validates the ids (positive integers) before anything is revoked or sent.
    const owner = companyUser({ companyId, ...(options?.userId === undefined ? {} : { userId: options.userId }) });
    return uninstall(ctx, client, owner.companyId, { ...options, userId: owner.userId });
  },
  setFaults(faults) {
    ctx.faults.set(faults);
    ctx.log.info({ faults: ctx.faults.snapshot() }, 'faults set');
  },
  faults: () => ctx.faults.snapshot(),
  setApiDomain(apiDomain) {
    ctx.apiDomain = apiDomain;
  },
  stats: () => ctx.stats.snapshot(),
});
