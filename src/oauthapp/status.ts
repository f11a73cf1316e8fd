// Pure: the conditions and status fields a person reads, from what the reconcile found.
// Messages name Secrets and keys, never their values.
import type { ConditionInput } from '../api/conditions.ts';
import type { OAuthAppStatus } from '../api/oauthapp.ts';
import type { OAuthInstallationStatus } from '../api/oauthinstallation.ts';
import { rfc3339 } from './desired.ts';
import { needsAuthorization, tokenLifetimeTooShort } from './policies.ts';
import { fingerprint, type AppState, type FailureKind } from './state.ts';

export const reasons = {
  tokenValid: 'TokenValid',
  tokenExpired: 'TokenExpired',
  notAuthorized: 'NotAuthorized',
  clientSecretInvalid: 'ClientSecretInvalid',
  invalidSpec: 'InvalidSpec',
  pending: 'Pending',
  targetConflict: 'TargetConflict',
  authorized: 'RefreshTokenPresent',
  authorizationRequired: 'AuthorizationRequired',
  invalidGrant: 'InvalidGrant',
  refreshInterrupted: 'RefreshInterrupted',
  secretVerified: 'Verified',
  secretNotVerified: 'NotVerified',
  secretNotFound: 'SecretNotFound',
  invalidClient: 'InvalidClient',
  invalidRotateRequest: 'InvalidRotateRequest',
  seedAlreadyUsed: 'SeedAlreadyUsed',
  authorizationURLTooLong: 'AuthorizationURLTooLong',
  providerNotAllowed: 'ProviderNotAllowed',
  tokenLifetimeTooShort: 'TokenLifetimeTooShort',
  secretValueTooLarge: 'SecretValueTooLarge',
  uninstalled: 'Uninstalled',
  appNotFound: 'AppNotFound',
  acceptingInstallations: 'AcceptingInstallations',
  callbackPathTaken: 'CallbackPathTaken',
} as const;

/** status.lastFailure.reason for each kind of failed token request, in the conditions' style. */
export const failureReasons: Readonly<Record<FailureKind, string>> = {
  invalid_grant: reasons.invalidGrant,
  invalid_client: reasons.invalidClient,
  rate_limited: 'RateLimited',
  server_error: 'ServerError',
  timeout: 'Timeout',
  network: 'NetworkError',
  malformed_response: 'MalformedResponse',
  rejected: 'Rejected',
  interrupted: reasons.refreshInterrupted,
};

/** The CRD's bounds on status fields (src/api/oauthapp.ts): a longer value could never be written. */
export const limits = { rotateRequest: 256, authorizationURL: 8192 } as const;

export type ClientSecretLookup =
  | { found: true; value: string; source: string }
  | { found: false; source: string; problem: string; reason?: string };

export interface StatusInput {
  now: number;
  state: AppState;
  clientSecret: ClientSecretLookup;
  /** The target Secret's name (spec.target.name or its default). */
  targetSecretName: string;
  /** Set when the target Secret exists but belongs to something else. */
  targetConflict?: string;
  authorizationURL?: string;
  lastRotateRequest?: string;
  /** Why the oauthapp.dev/rotate value is not acted on. */
  rotateRequestRefused?: string;
  /** spec.refreshTokenRef holds a seed an earlier OAuthApp already used. */
  seedAlreadyUsed?: boolean;
  /** Why the operator may not send requests to the spec's provider (--provider-hosts, --allow-preset-overrides). */
  providerNotAllowed?: string;
  /** --min-refresh-interval, to report tokens that live shorter than it. */
  minRefreshIntervalMs?: number;
  /** Why spec.refreshTokenRef's value was not used (e.g. too large); shown while no refresh token is held. */
  refreshTokenSourceProblem?: { reason: string; message: string };
  /** An OAuthInstallation: re-authorizing means the company installs again, and status shows the install. */
  installation?: boolean;
}

export interface DerivedStatus {
  conditions: ConditionInput[];
  fields: Omit<OAuthAppStatus, 'conditions' | 'observedGeneration'> & Partial<Pick<OAuthInstallationStatus, 'installedAt' | 'userID' | 'uninstalledAt'>>;
}

export function invalidSpecStatus(message: string): DerivedStatus {
  const condition = (type: ConditionInput['type']): ConditionInput => ({ type, status: 'Unknown', reason: reasons.invalidSpec, message });
  return {
    conditions: [{ type: 'Ready', status: 'False', reason: reasons.invalidSpec, message }, condition('Authorized'), condition('ClientSecretValid')],
    fields: {},
  };
}

export function deriveStatus(input: StatusInput): DerivedStatus {
  const authorized = authorizedCondition(input);
  const clientSecretValid = clientSecretCondition(input);
  const ready = readyCondition(input, authorized, clientSecretValid);
  const { tokens, record } = input.state;
  const waitingForPerson = authorized.status === 'False' || clientSecretValid.status === 'False' || input.providerNotAllowed !== undefined;
  const next = waitingForPerson ? undefined : nextRefresh(input.state);
  return {
    conditions: [ready, authorized, clientSecretValid],
    fields: {
      targetSecretName: input.targetSecretName,
      ...(tokens ? { accessTokenExpiresAt: rfc3339(tokens.expiresAt) } : {}),
      ...(record.lastRefreshTime ? { lastRefreshTime: rfc3339(record.lastRefreshTime) } : {}),
      ...(next ? { nextRefreshTime: rfc3339(next) } : {}),
      ...(record.failure ? { lastFailure: { reason: failureReasons[record.failure.kind], time: rfc3339(record.failure.at), attempts: record.failure.attempts } } : {}),
      ...(input.lastRotateRequest !== undefined ? { lastRotateRequest: input.lastRotateRequest } : {}),
      ...(authorized.status === 'False' && usableURL(input.authorizationURL) ? { authorizationURL: input.authorizationURL } : {}),
      ...(input.installation ? installationFields(input.state) : {}),
    },
  };
}

function installationFields({ record }: AppState): DerivedStatus['fields'] {
  const installation = record.installation;
  if (!installation) return {};
  return {
    installedAt: rfc3339(installation.installedAt),
    ...(installation.userID !== undefined ? { userID: installation.userID } : {}),
    ...(installation.uninstalledAt !== undefined ? { uninstalledAt: rfc3339(installation.uninstalledAt) } : {}),
  };
}

/** An installation whose company uninstalled the app: nothing to refresh, nothing to mount. */
export function uninstalledStatus(state: AppState): DerivedStatus {
  const at = state.record.installation?.uninstalledAt;
  const message = `the company uninstalled the app${at ? ` at ${rfc3339(at)}` : ''}: its tokens and Secret were removed; it comes back when the company installs again`;
  const condition = (type: ConditionInput['type']): ConditionInput => ({ type, status: 'False', reason: reasons.uninstalled, message });
  return { conditions: [condition('Ready'), condition('Authorized')], fields: installationFields(state) };
}

/** An installation whose grant the callback has not stored (yet). */
export function installationPendingStatus(): DerivedStatus {
  const message = 'no grant stored for this installation yet: the callback that created it stores one within moments; if this stays, the company installs the app again';
  return {
    conditions: [
      { type: 'Ready', status: 'False', reason: reasons.pending, message },
      // Unknown, not False: an Event for every new installation in the moment before its grant lands would be noise.
      { type: 'Authorized', status: 'Unknown', reason: reasons.pending, message },
    ],
    fields: {},
  };
}

/** An installation whose OAuthApp is missing, or is not a public app. */
export function appNotFoundStatus(app: string): DerivedStatus {
  const message = `OAuthApp ${app} with installations: multiple does not exist in this namespace`;
  return { conditions: [{ type: 'Ready', status: 'False', reason: reasons.appNotFound, message }], fields: {} };
}

/** A public app itself holds no grant: it is ready when installs can be accepted. */
export function publicAppStatus(input: { state: AppState; clientSecret: ClientSecretLookup; authorizationURL?: string; providerNotAllowed?: string; callbackPathTaken?: string }): DerivedStatus {
  const clientSecretValid = clientSecretCondition({ ...input, now: 0, targetSecretName: '' });
  const problem = input.providerNotAllowed ?? input.callbackPathTaken;
  const ready: ConditionInput = problem !== undefined
    ? { type: 'Ready', status: 'False', reason: input.providerNotAllowed !== undefined ? reasons.providerNotAllowed : reasons.callbackPathTaken, message: problem }
    : clientSecretValid.status === 'False'
      ? { type: 'Ready', status: 'False', reason: reasons.clientSecretInvalid, message: clientSecretValid.message }
      : { type: 'Ready', status: 'True', reason: reasons.acceptingInstallations, message: 'companies can install the app; each installation is an OAuthInstallation (kubectl get oinst)' };
  return {
    conditions: [ready, clientSecretValid],
    fields: { ...(input.authorizationURL !== undefined && usableURL(input.authorizationURL) ? { authorizationURL: input.authorizationURL } : {}) },
  };
}

function nextRefresh({ record }: AppState): string | undefined {
  return record.failure?.retryAt ?? record.refreshAt;
}

/** The provider's own description of a failure (already redacted and capped), quoted, for a condition message. */
export const providerSaid = (description: string | undefined): string => (description === undefined ? '' : ` (the provider said: ${JSON.stringify(description)})`);

const usableURL = (url: string | undefined): boolean => url !== undefined && url.length <= limits.authorizationURL;

function authorizedCondition({ state, authorizationURL, seedAlreadyUsed, providerNotAllowed, refreshTokenSourceProblem, installation }: StatusInput): ConditionInput {
  if (providerNotAllowed !== undefined && needsAuthorization(state)) {
    return { type: 'Authorized', status: 'False', reason: reasons.providerNotAllowed, message: `no authorization URL: ${providerNotAllowed}` };
  }
  if (needsAuthorization(state) && authorizationURL !== undefined && authorizationURL.length > limits.authorizationURL) {
    return {
      type: 'Authorized',
      status: 'False',
      reason: reasons.authorizationURLTooLong,
      message: `the authorization URL would be ${authorizationURL.length} characters long (at most ${limits.authorizationURL}): shorten spec.scopes or spec.authorizeParams`,
    };
  }
  const where = installation ? ' (for an installation: the company installs the app again)' : authorizationURL ? ' at status.authorizationURL' : '';
  if (refreshTokenSourceProblem && needsAuthorization(state)) {
    return { type: 'Authorized', status: 'False', reason: refreshTokenSourceProblem.reason, message: `${refreshTokenSourceProblem.message}; fix it or authorize${where}` };
  }
  if (seedAlreadyUsed && !state.refreshToken) {
    return {
      type: 'Authorized',
      status: 'False',
      reason: reasons.seedAlreadyUsed,
      message: `the refresh token in spec.refreshTokenRef was already used by an earlier OAuthApp and may be dead; put a fresh one there or authorize${where}`,
    };
  }
  const lastAttempt = state.record.authorizationFailure;
  if (lastAttempt && needsAuthorization(state)) {
    return { type: 'Authorized', status: 'False', reason: lastAttempt.reason, message: `the last authorization failed: ${lastAttempt.message}; authorize again${where}` };
  }
  if (!state.refreshToken) {
    return { type: 'Authorized', status: 'False', reason: reasons.authorizationRequired, message: `no refresh token yet: authorize the app${where}` };
  }
  if (state.record.deadRefreshTokenFingerprint === fingerprint(state.refreshToken)) {
    const interrupted = state.record.failure?.kind === 'interrupted';
    return {
      type: 'Authorized',
      status: 'False',
      reason: interrupted ? reasons.refreshInterrupted : reasons.invalidGrant,
      message: interrupted
        ? `${state.record.failure?.message ?? 'a refresh was interrupted'}${providerSaid(state.record.failure?.description)}${where}`
        : `the provider refused the refresh token (invalid_grant: the app was uninstalled or the token expired)${providerSaid(state.record.failure?.description)}: re-authorize${where}`,
    };
  }
  return { type: 'Authorized', status: 'True', reason: reasons.authorized, message: 'the operator holds a refresh token' };
}

function clientSecretCondition({ state, clientSecret }: StatusInput): ConditionInput {
  if (!clientSecret.found) {
    return { type: 'ClientSecretValid', status: 'False', reason: clientSecret.reason ?? reasons.secretNotFound, message: clientSecret.problem };
  }
  const current = fingerprint(clientSecret.value);
  const failure = state.record.failure;
  if (failure?.kind === 'invalid_client' && failure.clientSecretFingerprint === current) {
    return {
      type: 'ClientSecretValid',
      status: 'False',
      reason: reasons.invalidClient,
      message: `the provider rejected the client secret in ${clientSecret.source} (invalid_client)${providerSaid(failure?.description)}: put the secret shown in the provider's developer portal into that Secret`,
    };
  }
  const rejected = state.record.rejectedClientSecret;
  if (rejected?.fingerprint === current) {
    return {
      type: 'ClientSecretValid',
      status: 'False',
      reason: reasons.invalidClient,
      message: `the provider rejected the client secret in ${clientSecret.source} when the operator checked it (invalid_client)${providerSaid(rejected.description)}: put the secret shown in the provider's developer portal into that Secret`,
    };
  }
  if (state.record.verifiedClientSecretFingerprint === current) {
    return { type: 'ClientSecretValid', status: 'True', reason: reasons.secretVerified, message: `the provider accepted the client secret in ${clientSecret.source}` };
  }
  return {
    type: 'ClientSecretValid',
    status: 'Unknown',
    reason: reasons.secretNotVerified,
    message: `the client secret in ${clientSecret.source} has not been used with the provider yet`,
  };
}

function readyCondition(input: StatusInput, authorized: ConditionInput, clientSecretValid: ConditionInput): ConditionInput {
  const { state, now, targetConflict, rotateRequestRefused, providerNotAllowed } = input;
  if (providerNotAllowed !== undefined) return { type: 'Ready', status: 'False', reason: reasons.providerNotAllowed, message: providerNotAllowed };
  if (targetConflict) return { type: 'Ready', status: 'False', reason: reasons.targetConflict, message: targetConflict };
  if (rotateRequestRefused) return { type: 'Ready', status: 'False', reason: reasons.invalidRotateRequest, message: rotateRequestRefused };
  const failure = state.record.failure;
  const lastFailure = failure && failure.kind !== 'invalid_grant' && failure.kind !== 'interrupted' && failure.kind !== 'invalid_client'
    ? `; the last refresh failed (${failure.kind}): ${failure.message}${providerSaid(failure.description)}`
    : '';
  const blocker = personMustAct(authorized, clientSecretValid);
  const blockedBy = blocker ? `; ${blocker.condition.message}` : '';
  if (!state.tokens) {
    return blocker
      ? { type: 'Ready', status: 'False', reason: blocker.reason, message: `no access token yet${blockedBy}` }
      : { type: 'Ready', status: 'False', reason: reasons.pending, message: `waiting for the first access token${lastFailure}` };
  }
  const expiresAt = rfc3339(state.tokens.expiresAt);
  // Not chased: one refresh per interval, and one steady reason whether the token is valid or
  // expired at the moment (a condition flipping with every cycle would be an Event each time).
  const tooShort = blocker ? undefined : tokenLifetimeTooShort(state, input.minRefreshIntervalMs);
  if (tooShort && input.minRefreshIntervalMs) {
    const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
    return {
      type: 'Ready',
      status: 'False',
      reason: reasons.tokenLifetimeTooShort,
      message: `the provider's access tokens live ${seconds(tooShort.lifetimeMs)}, less than --min-refresh-interval (${seconds(input.minRefreshIntervalMs)}): the operator refreshes at most once per interval and does not chase them, so the access token is expired part of the time: lengthen the provider's token lifetime or lower --min-refresh-interval${lastFailure}`,
    };
  }
  // An expired token outranks the person's task: the workloads are failing now.
  if (Date.parse(state.tokens.expiresAt) <= now) {
    return { type: 'Ready', status: 'False', reason: reasons.tokenExpired, message: `the access token expired at ${expiresAt}${blockedBy || lastFailure}` };
  }
  if (blocker) return { type: 'Ready', status: 'False', reason: blocker.reason, message: `the access token is valid until ${expiresAt}${blockedBy}` };
  return { type: 'Ready', status: 'True', reason: reasons.tokenValid, message: `the access token is valid until ${expiresAt}${lastFailure}` };
}

/**
 * The condition a person must fix, and Ready's reason for it. The client secret comes first: a new
 * authorization cannot succeed without it (the code exchange authenticates the client).
 */
function personMustAct(authorized: ConditionInput, clientSecretValid: ConditionInput): { reason: string; condition: ConditionInput } | undefined {
  if (clientSecretValid.status === 'False') return { reason: reasons.clientSecretInvalid, condition: clientSecretValid };
  if (authorized.status === 'False') return { reason: reasons.notAuthorized, condition: authorized };
  return undefined;
}
