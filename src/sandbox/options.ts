import { setTimeout as delay } from 'node:timers/promises';
import { type Logger, pino } from 'pino';

export interface SandboxOptions {
  /** `expires_in` of access tokens, in seconds. Default 3600, like Pipedrive. */
  readonly expiresIn?: number;
  /** `api_domain` of token responses. Default: the origin the request came to. */
  readonly apiDomain?: string;
  /** The clock, in ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  /** How long an authorization code lives. Default 5 minutes. */
  readonly codeTtlMs?: number;
  /** How long a refresh token lives unused. Default 60 days. */
  readonly refreshTokenIdleTtlMs?: number;
  /** Every refresh returns a new refresh token and the presented one dies. Default true. */
  readonly rotateRefreshTokens?: boolean;
  /** Without rotation, leave `refresh_token` out of refresh responses. Default false (repeat it). */
  readonly omitUnchangedRefreshToken?: boolean;
  /** Replaying an exchanged refresh token (or a used code) revokes the grant. Default true. */
  readonly revokeGrantOnReplay?: boolean;
  /** The scope of clients registered without one, comma-separated. Default `base,deals:full`. */
  readonly scope?: string;
  /** Default silent. Token, code and secret values are never logged. */
  readonly logger?: Logger;
  /** How `delayMs` faults wait. Default a real timer. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export type ResolvedSandboxOptions = Required<Omit<SandboxOptions, 'apiDomain'>> & {
  readonly apiDomain: string | undefined;
};

export const resolveOptions = (options: SandboxOptions): ResolvedSandboxOptions => ({
  expiresIn: options.expiresIn ?? 3600,
  apiDomain: options.apiDomain,
  now: options.now ?? Date.now,
  codeTtlMs: options.codeTtlMs ?? 5 * 60_000,
  refreshTokenIdleTtlMs: options.refreshTokenIdleTtlMs ?? 60 * 24 * 3600_000,
  rotateRefreshTokens: options.rotateRefreshTokens ?? true,
  omitUnchangedRefreshToken: options.omitUnchangedRefreshToken ?? false,
  revokeGrantOnReplay: options.revokeGrantOnReplay ?? true,
  scope: options.scope ?? 'base,deals:full',
  logger: options.logger ?? pino({ level: 'silent' }),
  sleep: options.sleep ?? ((ms: number) => delay(ms)),
});
