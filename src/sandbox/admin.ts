import type { Client, ClientRegistration } from './clients.ts';
import type { SandboxContext } from './context.ts';
import type { Faults, FaultsInput } from './faults.ts';
import type { SandboxStats } from './stats.ts';

/** What a test or a human does to the sandbox from outside the OAuth flows. */
export interface SandboxAdmin {
  registerClient(registration: ClientRegistration): Client;
  /** The portal's "Refresh" button: the old secret is refused at once; issued tokens stay valid. */
  rotateClientSecret(clientId: string, newSecret?: string): string;
  /** A refresh token as if the app had been installed (a grant with no access token yet). */
  issueRefreshToken(clientId: string): string;
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
  issueRefreshToken(clientId) {
    return ctx.tokens.bootstrapRefreshToken(ctx.clients.get(clientId));
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
