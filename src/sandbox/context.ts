import type { Logger } from 'pino';
import type { ClientRegistry } from './clients.ts';
import type { CodeStore } from './codes.ts';
import type { FaultInjector } from './faults.ts';
import type { GrantStore } from './grants.ts';
import type { StatsRecorder } from './stats.ts';
import type { TokenService } from './token-service.ts';

/** The sandbox's state and dependencies, shared by its route plugins. */
export interface SandboxContext {
  readonly clients: ClientRegistry;
  readonly codes: CodeStore;
  readonly grants: GrantStore;
  readonly tokens: TokenService;
  readonly faults: FaultInjector;
  readonly stats: StatsRecorder;
  readonly log: Logger;
  readonly sleep: (ms: number) => Promise<void>;
  /** The sandbox clock (ms since the epoch), e.g. for an uninstall's `timestamp`. */
  readonly now: () => number;
  /** The configured or admin-set `api_domain`; undefined means "this server's own origin". */
  apiDomain: string | undefined;
}
