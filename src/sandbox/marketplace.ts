import type { Client } from './clients.ts';
import type { CompanyUser } from './company.ts';
import type { SandboxContext } from './context.ts';

export interface MarketplaceInstall {
  /** The authorization code, exchanged at /oauth/token with the registered redirect_uri. */
  readonly code: string;
  /** Where the browser is sent: the registered callback URL with `code` and nothing else. */
  readonly redirectURL: string;
}

/**
 * "Install now" in the Pipedrive Marketplace: the install starts at Pipedrive, not at the app, so
 * the callback gets no `state`, and no PKCE challenge is involved (a client's `requirePkce`
 * governs /oauth/authorize only). The code belongs to `owner`'s company.
 */
export const marketplaceInstall = (ctx: SandboxContext, client: Client, owner: CompanyUser): MarketplaceInstall => {
  const code = ctx.codes.issue(client.clientId, client.redirectUri, owner);
  const target = new URL(client.redirectUri);
  target.searchParams.set('code', code);
  ctx.log.info({ clientId: client.clientId, companyId: owner.companyId, userId: owner.userId }, 'marketplace install: authorization code issued');
  return { code, redirectURL: target.toString() };
};
