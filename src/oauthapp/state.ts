// The operator's durable memory of one OAuthApp: tokens and bookkeeping in a Secret in the
// operator's own namespace, which the app's namespace cannot read. The target Secret is a
// projection of this state, so a crash between the two writes loses nothing.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { decodeData, encodeData, type Secret } from '../kube/objects.ts';
import { tokenErrorCodes } from '../oauth/errors.ts';
import { managedByLabel, managedByValue } from './labels.ts';

export const roleLabel = 'oauthapp.dev/role';
export const appUIDLabel = 'oauthapp.dev/app-uid';
export const appAnnotation = 'oauthapp.dev/app';

export const stateSecretName = (appUID: string) => `oauthapp-state-${appUID}`;

/** A short, one-way fingerprint: lets bookkeeping compare secret values without storing them. */
export const fingerprint = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 16);

const isoTime = z.string().datetime({ offset: true });

/** A token request's failure (minus shutdown aborts, recorded as network), or a refresh interrupted by a crash. */
const failureKinds = [...tokenErrorCodes.filter((code) => code !== 'aborted'), 'interrupted'] as const;
export type FailureKind = (typeof failureKinds)[number];

export const refreshFailure = z.object({
  kind: z.enum(failureKinds),
  message: z.string(),
  /** What the provider said about it (TokenRequestError.description: secrets removed, capped). */
  description: z.string().optional(),
  at: isoTime,
  /** Consecutive failures of a retryable kind, for the backoff. */
  attempts: z.number().int().min(1),
  /** No token request before this time. */
  retryAt: isoTime.optional(),
  /** The client secret in use when it failed: invalid_client holds until the secret changes. */
  clientSecretFingerprint: z.string().optional(),
  /** retryAt came from the provider's Retry-After: a rotate request or a new secret does not cut it short. */
  providerAskedToWait: z.boolean().optional(),
});
export type RefreshFailure = z.output<typeof refreshFailure>;

/** Written (with a resourceVersion precondition) before a token request is sent. */
export const refreshClaim = z.object({
  holder: z.string(),
  refreshTokenFingerprint: z.string(),
  claimedAt: isoTime,
  /** After this, a claim whose holder never reported back is stale: the request's fate is unknown. */
  expiresAt: isoTime,
});
export type RefreshClaim = z.output<typeof refreshClaim>;

export const bookkeeping = z.object({
  issuedAt: isoTime.optional(),
  refreshAt: isoTime.optional(),
  lastRefreshTime: isoTime.optional(),
  claim: refreshClaim.optional(),
  failure: refreshFailure.optional(),
  /** A refresh token the provider refused (or may have consumed): never sent again. */
  deadRefreshTokenFingerprint: z.string().optional(),
  /** The spec.refreshTokenRef value already used, so a dead seed is not planted again. */
  seedFingerprint: z.string().optional(),
  /** Learned from responses: whether this provider hands out a new refresh token on refresh. */
  rotatesRefreshTokens: z.boolean().optional(),
  /** The client secret the provider last accepted: a token request succeeded, or a client check. */
  verifiedClientSecretFingerprint: z.string().optional(),
  /** A client secret a client check found refused (invalid_client), and what the provider said. */
  rejectedClientSecret: z.object({ fingerprint: z.string(), at: isoTime, description: z.string().optional() }).optional(),
  /** The client secret the rolloutRestartTargets were last restarted for. */
  rolledOutClientSecretFingerprint: z.string().optional(),
  /** The restartedAt value of that restart: the next one must differ, or no pod template changes. */
  rolledOutRestartedAt: isoTime.optional(),
  /**
   * A restart decided and possibly half applied. Re-applying the same restartedAt value after a
   * crash changes no pod template again, so one secret change makes exactly one rollout.
   */
  pendingRollout: z.object({ clientSecretFingerprint: z.string(), restartedAt: isoTime }).optional(),
  /** The last oauthapp.dev/rotate value acted on, written with the claim that acts on it. */
  lastRotateRequest: z.string().optional(),
  /** Which signed `state` is valid: bumped when a callback uses one, so each works once. */
  authorizationRound: z.number().int().min(0).optional(),
  /** An OAuthInstallation's grant: when and by whom it was installed, and when its company uninstalled it. */
  installation: z.object({ installedAt: isoTime, userID: z.string().optional(), uninstalledAt: isoTime.optional() }).optional(),
  /**
   * A public app's own state: the client secret it had before the current one, and when it was
   * replaced, so an uninstall callback signed during a rotation is still believed for a while.
   */
  clientSecretHistory: z.object({ current: z.string(), previous: z.string().optional(), replacedAt: isoTime.optional() }).optional(),
  /** Why the last callback did not authorize the app (refused at the provider, code not accepted). */
  authorizationFailure: z.object({ reason: z.string(), message: z.string(), at: isoTime }).optional(),
});
export type Bookkeeping = z.output<typeof bookkeeping>;

export interface Tokens {
  accessToken: string;
  tokenType: string;
  expiresAt: string;
  scope?: string;
  apiDomain?: string;
}

export interface AppState {
  refreshToken?: string;
  tokens?: Tokens;
  record: Bookkeeping;
}

export const emptyState = (): AppState => ({ record: {} });

const keys = {
  refreshToken: 'refresh_token',
  accessToken: 'access_token',
  tokenType: 'token_type',
  expiresAt: 'expires_at',
  scope: 'scope',
  apiDomain: 'api_domain',
  record: 'record.json',
} as const;

export class CorruptStateError extends Error {
  readonly code = 'CORRUPT_STATE';
}

/** Reads the state Secret; bookkeeping that does not parse is reported, tokens are kept. */
export function decodeState(secret: Secret): AppState {
  const data = decodeData(secret.data);
  let record: Bookkeeping = {};
  const recordJSON = data[keys.record];
  if (recordJSON) {
    const parsed = bookkeeping.safeParse(safeJSON(recordJSON));
    if (!parsed.success) throw new CorruptStateError(`state Secret ${secret.metadata.name}: ${keys.record} is not valid bookkeeping`);
    record = parsed.data;
  }
  const accessToken = data[keys.accessToken];
  const expiresAt = data[keys.expiresAt];
  return {
    ...(data[keys.refreshToken] ? { refreshToken: data[keys.refreshToken] } : {}),
    ...(accessToken && expiresAt
      ? {
          tokens: {
            accessToken,
            tokenType: data[keys.tokenType] ?? 'Bearer',
            expiresAt,
            ...(data[keys.scope] !== undefined ? { scope: data[keys.scope] } : {}),
            ...(data[keys.apiDomain] !== undefined ? { apiDomain: data[keys.apiDomain] } : {}),
          },
        }
      : {}),
    record,
  };
}

export function encodeStateData(state: AppState): Record<string, string> {
  const data: Record<string, string> = { [keys.record]: JSON.stringify(state.record) };
  if (state.refreshToken) data[keys.refreshToken] = state.refreshToken;
  if (state.tokens) {
    data[keys.accessToken] = state.tokens.accessToken;
    data[keys.tokenType] = state.tokens.tokenType;
    data[keys.expiresAt] = state.tokens.expiresAt;
    if (state.tokens.scope !== undefined) data[keys.scope] = state.tokens.scope;
    if (state.tokens.apiDomain !== undefined) data[keys.apiDomain] = state.tokens.apiDomain;
  }
  return encodeData(data);
}

/**
 * Who owns a grant: an OAuthApp, or an OAuthInstallation whose `name` carries installationMarker
 * (keys.ts), so that its work-queue key, its state's annotation and its logs say which kind it is.
 */
export interface AppIdentity {
  namespace: string;
  name: string;
  uid: string;
}

export function stateSecret(app: AppIdentity, operatorNamespace: string, state: AppState, resourceVersion?: string): Secret {
  return {
    metadata: {
      name: stateSecretName(app.uid),
      namespace: operatorNamespace,
      ...(resourceVersion ? { resourceVersion } : {}),
      labels: { [managedByLabel]: managedByValue, [roleLabel]: 'state', [appUIDLabel]: app.uid },
      annotations: { [appAnnotation]: `${app.namespace}/${app.name}` },
    },
    type: 'Opaque',
    data: encodeStateData(state),
  };
}

function safeJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
