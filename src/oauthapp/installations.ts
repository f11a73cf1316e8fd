// Public apps (installations: multiple), the callback's side: a company installs (a code from the
// Marketplace with no state of ours, or from the app's own authorization URL) and gets an
// OAuthInstallation holding its grant; Pipedrive's uninstall callback ends one. What happens to an
// installation afterwards (refreshes, its Secret, revocation when deleted) is the reconciler's.
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { OAuthApp } from '../api/oauthapp.ts';
import { appLabel, companyID, companyLabel, installationAPIVersion, installationKind, installationName, oauthInstallation } from '../api/oauthinstallation.ts';
import { apiVersion as appAPIVersion, kind as appKind } from '../api/oauthapp.ts';
import type { CallbackOutcome, UninstallOutcome } from '../http/callback-server.ts';
import type { KubeClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import { isAlreadyExists } from '../kube/errors.ts';
import type { KubeObject } from '../kube/objects.ts';
import type { Logger } from '../log.ts';
import { isTokenRequestError } from '../oauth/errors.ts';
import type { ProviderPolicy } from '../oauth/provider-policy.ts';
import type { InstallationCalls, TokenClient } from '../oauth/token-client.ts';
import type { TokenSet } from '../oauth/token-response.ts';
import type { CallbackPaths } from './callback-paths.ts';
import { installationIdentityName, installationKey } from './keys.ts';
import { finalizerName } from './labels.ts';
import { recordInstall, recordUninstall } from './policies.ts';
import { exchangeCode, recordExchange, revocationRequest } from './code-exchange.ts';
import type { SourceSecrets } from './source-secrets.ts';
import { AnswerNoLongerAppliesError, type StateStore } from './state-store.ts';
import { emptyState, fingerprint, type AppIdentity, type AppState } from './state.ts';

/** A new grant the apiserver could not take yet is retried this long (as a code exchange's). */
const heldInstallMs = 10 * 60_000;

export interface InstallationsDependencies {
  paths: CallbackPaths;
  states: StateStore;
  sources: SourceSecrets;
  tokens: TokenClient & InstallationCalls;
  limit: <T>(providerKey: string, task: () => Promise<T>) => Promise<T>;
  kube: Pick<KubeClient, 'getOAuthInstallation' | 'createOAuthInstallation'>;
  events: Pick<EventRecorder, 'record'>;
  enqueue: (key: string) => void;
  providerPolicy?: ProviderPolicy | undefined;
  now: () => number;
  random: () => number;
  pickRefreshTime?: (earliest: number, latest: number) => number;
  /** How long the client secret a rotation replaced still authenticates an uninstall callback. */
  previousSecretGraceMs: number;
  logger: Logger;
}

type Failure = Extract<CallbackOutcome, { ok: false }>;

type FoundInstallation = { ok: true; name: string; uid: string; companyID: string; userID: string | undefined } | { ok: false; failure: Failure };

const refuse = (status: Failure['status'], reason: string, message: string, app?: OAuthApp): Failure => ({
  ok: false,
  status,
  reason,
  message,
  ...(app ? { app: { namespace: app.metadata.namespace, name: app.metadata.name } } : {}),
});

/** Pipedrive's uninstall body; ids come as numbers, strings are accepted. */
const uninstallBody = z.object({
  client_id: z.string().min(1).max(256),
  company_id: z.union([z.number().int().nonnegative().transform(String), z.string()]).pipe(companyID),
  user_id: z.union([z.number(), z.string()]).optional(),
  timestamp: z.string().datetime({ offset: true }),
});

export class Installations {
  private readonly deps: InstallationsDependencies;

  constructor(dependencies: InstallationsDependencies) {
    this.deps = dependencies;
  }

  /** Whether a state-less code on `path` is for a public app (otherwise it is refused as today). */
  acceptsStatelessCode(path: string): boolean {
    return this.deps.paths.appAt(path) !== undefined;
  }

  /** A Marketplace install: the code came with no state, so no PKCE verifier either. */
  async installFromMarketplace({ path, code }: { path: string; code: string }): Promise<CallbackOutcome> {
    const app = this.deps.paths.appAt(path);
    if (!app) return refuse(400, 'missing_state', 'The state parameter is missing, and no public app receives installs at this address.');
    const clientSecret = await this.deps.sources.read(app.metadata.namespace, app.spec.clientSecretRef);
    if (!clientSecret.found) return refuse(409, 'client_secret_missing', `${clientSecret.problem}: the code cannot be exchanged without it.`, app);
    const notAllowed = this.deps.providerPolicy?.refusal(app.spec);
    if (notAllowed !== undefined) return refuse(403, 'provider_not_allowed', `The operator may not send this app's code to its provider: ${notAllowed}. No code was exchanged.`, app);
    const exchanged = await exchangeCode(this.deps, app, clientSecret.value, code);
    if (!exchanged.ok) {
      await this.deps.events.record(app, { type: 'Warning', reason: 'InstallFailed', message: exchanged.message, action: 'Install' });
      return refuse(502, 'exchange_failed', `${exchanged.message}. Install the app again from the Marketplace.`, app);
    }
    return this.install(app, exchanged.response, clientSecret.value);
  }

  /**
   * A company's new grant (from either kind of callback): finds the company, creates or reuses its
   * OAuthInstallation, and stores the grant in the installation's state, replacing any earlier one.
   */
  async install(app: OAuthApp, response: TokenSet, clientSecret: string): Promise<CallbackOutcome> {
    const answeredAt = this.deps.now();
    const refreshToken = response.refreshToken;
    if (refreshToken === undefined) {
      return refuse(502, 'no_refresh_token', 'The provider issued no refresh token for this install; nothing was stored. Install the app again.', app);
    }
    // Until the grant is stored (or held for storing), a refusal hands it back to the provider
    // rather than leaving it live there with nobody holding it.
    let found: FoundInstallation;
    try {
      found = await this.findInstallation(app, response);
    } catch (error) {
      await this.revokeUnkept(app, refreshToken, clientSecret);
      throw error;
    }
    if (!found.ok) {
      await this.revokeUnkept(app, refreshToken, clientSecret);
      return found.failure;
    }
    const identity: AppIdentity = { namespace: app.metadata.namespace, name: installationIdentityName(found.name), uid: found.uid };
    const granted = (current: AppState): AppState | undefined => {
      // Written again (held after a lost answer) once a refresh or a newer install moved the state
      // on, this grant would bring back a refresh token the provider may have rotated away.
      if (movedOnSince(current, answeredAt)) return undefined;
      const success = recordExchange(this.deps, app, { record: current.record }, response, clientSecret, answeredAt);
      return recordInstall(success, { at: answeredAt, userID: found.userID });
    };
    // Tried as a create first (a new installation has no state); an existing state is read then,
    // and an apiserver failure holds the grant for the periodic retry (state-store.ts).
    try {
      await this.deps.states.saveAnswer(identity, { state: emptyState(), resourceVersion: undefined }, granted, heldInstallMs, { mayCreate: true });
    } catch (error) {
      if (!(error instanceof AnswerNoLongerAppliesError)) throw error;
      return refuse(409, 'installed_meanwhile', 'This company\'s installation got a newer grant while this one was stored; nothing was changed.', app);
    }
    this.deps.logger.info({ app: `${app.metadata.namespace}/${app.metadata.name}`, installation: found.name, company: found.companyID }, 'installed');
    this.deps.enqueue(installationKey(app.metadata.namespace, found.name));
    return { ok: true, app: { namespace: app.metadata.namespace, name: app.metadata.name } };
  }

  /**
   * Pipedrive's uninstall callback: HTTP Basic with the app's client id and secret (the previous
   * secret too, for a while after a rotation), compared in constant time. Anything less is 401 and
   * changes nothing.
   */
  async uninstall({ path, authorization, body }: { path: string; authorization: string | undefined; body: unknown }): Promise<UninstallOutcome> {
    const app = this.deps.paths.appAt(path);
    if (!app) return { status: 404, reason: 'no_public_app' };
    const credentials = basicCredentials(authorization);
    if (!credentials || !(await this.authenticates(app, credentials))) return { status: 401, reason: 'unauthorized' };
    const parsed = uninstallBody.safeParse(body);
    if (!parsed.success || parsed.data.client_id !== app.spec.clientId) return { status: 400, reason: 'malformed_body' };
    const { company_id: company, timestamp } = parsed.data;
    const name = installationName(app.metadata.name, company);
    const live = oauthInstallation.safeParse(await this.deps.kube.getOAuthInstallation(app.metadata.namespace, name));
    if (!live.success || live.data.spec.companyID !== company) return { status: 200, reason: 'not_installed' };
    const identity: AppIdentity = { namespace: app.metadata.namespace, name: installationIdentityName(name), uid: live.data.metadata.uid };
    try {
      await this.deps.states.saveAnswer(identity, await this.deps.states.loadLive(identity), (current) => recordUninstall(current, Date.parse(timestamp)), heldInstallMs);
    } catch (error) {
      // A later install replaced the grant, or this uninstall is known already: nothing to do.
      if (error instanceof AnswerNoLongerAppliesError) return { status: 200, reason: 'superseded' };
      throw error;
    }
    this.deps.logger.info({ app: `${app.metadata.namespace}/${app.metadata.name}`, installation: name, company }, 'uninstalled by the company');
    this.deps.enqueue(installationKey(app.metadata.namespace, name));
    return { status: 200, reason: 'uninstalled' };
  }

  private async authenticates(app: OAuthApp, credentials: { clientId: string; clientSecret: string }): Promise<boolean> {
    const clientSecret = await this.deps.sources.read(app.metadata.namespace, app.spec.clientSecretRef);
    const idMatches = sameSecret(credentials.clientId, app.spec.clientId);
    const current = clientSecret.found && sameSecret(credentials.clientSecret, clientSecret.value);
    if (idMatches && current) return true;
    if (!idMatches) return false;
    // Rare (a rotation moments ago): the previous secret is on the app's state, read live.
    const history = (await this.deps.states.loadLive({ namespace: app.metadata.namespace, name: app.metadata.name, uid: app.metadata.uid })).state.record.clientSecretHistory;
    if (history?.previous === undefined || history.replacedAt === undefined) return false;
    const withinGrace = Date.parse(history.replacedAt) + this.deps.previousSecretGraceMs > this.deps.now();
    return sameSecret(fingerprint(credentials.clientSecret), history.previous) && withinGrace;
  }

  /** Which company installed (users/me), and its installation, created if need be. */
  private async findInstallation(app: OAuthApp, response: TokenSet): Promise<FoundInstallation> {
    if (response.apiDomain === undefined) {
      return { ok: false, failure: refuse(502, 'company_unknown', 'The provider\'s answer named no api_domain, so the installing company cannot be looked up; nothing was stored.', app) };
    }
    let company;
    try {
      company = await this.deps.tokens.whoInstalled({ apiDomain: response.apiDomain, accessToken: response.accessToken });
    } catch (error) {
      if (!isTokenRequestError(error)) throw error;
      return { ok: false, failure: refuse(502, 'company_unknown', `The installing company could not be looked up (${error.code}: ${error.message}); nothing was stored. Install the app again.`, app) };
    }
    const installation = await this.installationFor(app, company.companyID);
    return installation.ok ? { ...installation, companyID: company.companyID, userID: company.userID } : installation;
  }

  /** The company's installation: created (owned by the app) unless it exists for this company. */
  private async installationFor(app: OAuthApp, company: string): Promise<{ ok: true; name: string; uid: string } | { ok: false; failure: Failure }> {
    const { namespace, name: appName, uid: appUID } = app.metadata;
    const name = installationName(appName, company);
    const desired: KubeObject & { spec: unknown } = {
      apiVersion: installationAPIVersion,
      kind: installationKind,
      metadata: {
        name,
        namespace,
        labels: { [appLabel]: appName, [companyLabel]: company },
        // Born with the finalizer that revokes its grant: the first reconcile need not patch it in.
        finalizers: [finalizerName],
        // No blockOwnerDeletion: the app's finalizer waits for its installations itself, and
        // setting it would need update on oauthapps/finalizers (OwnerReferencesPermissionEnforcement).
        ownerReferences: [{ apiVersion: appAPIVersion, kind: appKind, name: appName, uid: appUID, controller: true }],
      },
      spec: { app: appName, companyID: company },
    };
    // Created first: most installs are a company's first, and a second one reads what is there.
    let object: KubeObject | undefined;
    try {
      object = await this.deps.kube.createOAuthInstallation(namespace, desired);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      object = await this.deps.kube.getOAuthInstallation(namespace, name);
    }
    const found = oauthInstallation.safeParse(object);
    if (!found.success || found.data.spec.app !== appName || found.data.spec.companyID !== company) {
      return { ok: false, failure: refuse(409, 'installation_name_taken', `OAuthInstallation ${namespace}/${name} exists for another app or company; nothing was stored.`, app) };
    }
    if (found.data.metadata.deletionTimestamp) {
      return { ok: false, failure: refuse(409, 'installation_being_deleted', 'This company\'s previous installation is being removed; install again in a minute.', app) };
    }
    return { ok: true, name, uid: found.data.metadata.uid };
  }

  /** A grant the operator could not keep is handed back rather than left live at the provider. */
  private async revokeUnkept(app: OAuthApp, refreshToken: string, clientSecret: string): Promise<void> {
    const request = revocationRequest(app, clientSecret, refreshToken);
    if (!request) return;
    try {
      await this.deps.limit(new URL(request.revokeURL).host, () => this.deps.tokens.revokeToken(request));
    } catch (error) {
      if (!isTokenRequestError(error)) throw error;
    }
  }
}

/** Whether a refresh or an install stored in `state` came at or after `at`. */
function movedOnSince({ record }: AppState, at: number): boolean {
  const times = [record.lastRefreshTime, record.installation?.installedAt].filter((time): time is string => time !== undefined);
  return times.some((time) => Date.parse(time) >= at);
}

/** `Basic base64(id:secret)`; undefined when the header is anything else. */
function basicCredentials(header: string | undefined): { clientId: string; clientSecret: string } | undefined {
  const match = /^basic +([A-Za-z0-9+/=]+) *$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { clientId: decoded.slice(0, colon), clientSecret: decoded.slice(colon + 1) };
}

/** Equal, in a time that does not depend on where they differ (digests have equal lengths). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}
