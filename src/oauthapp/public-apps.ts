// What the reconciler does for a public app (installations: multiple) beyond what every grant
// owner gets: the app itself holds no grant (it shows where companies install, and remembers the
// client secret a rotation replaced, for uninstall callbacks), and deleting an installation, or
// the app, first revokes each grant at the provider (RFC 7009).
import type { OAuthApp } from '../api/oauthapp.ts';
import type { OAuthInstallation } from '../api/oauthinstallation.ts';
import type { ReconcileResult } from '../controller/result.ts';
import type { KubeClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { ObjectCache } from '../kube/informer.ts';
import { objectKey, type KubeObject } from '../kube/objects.ts';
import type { AppObservation } from './observation.ts';
import { isTokenRequestError } from '../oauth/errors.ts';
import type { ProviderPolicy } from '../oauth/provider-policy.ts';
import type { RevocationRequest } from '../oauth/token-request.ts';
import type { Authorizations } from './authorization.ts';
import type { CallbackPaths } from './callback-paths.ts';
import { rememberClientSecret } from './policies.ts';
import { revocationRequest } from './code-exchange.ts';
import type { SecretValue, SourceSecrets } from './source-secrets.ts';
import type { StateStore, StoredState } from './state-store.ts';
import { fingerprint, type AppIdentity } from './state.ts';
import { publicAppStatus, providerSaid } from './status.ts';
import type { StatusWriter } from './status-writer.ts';

/** An installation's grant could not be revoked: the installation stays until it can be. */
export class RevocationFailedError extends Error {
  readonly code = 'REVOCATION_FAILED';
}

/** How often a deleted public app looks whether its installations are gone yet (their deletions also wake it). */
const installationsGoneLookMs = 5_000;

export interface PublicAppsDependencies {
  installations: ObjectCache<KubeObject>;
  /** Writes OAuthInstallation status. */
  status: StatusWriter;
  /** Writes OAuthApp status. */
  appStatus: StatusWriter;
  paths: CallbackPaths;
  states: StateStore;
  sources: SourceSecrets;
  authorizations: Pick<Authorizations, 'authorizationURL'>;
  kube: Pick<KubeClient, 'deleteOAuthInstallation'>;
  /** RFC 7009 revocation, through the provider's slots. */
  revoke: (request: RevocationRequest) => Promise<void>;
  events: Pick<EventRecorder, 'record'>;
  providerPolicy?: ProviderPolicy | undefined;
  now: () => number;
  /** Sees the app's conditions after its status is written (metrics), as the reconciler's observe. */
  observe?: (appKey: string, facts: AppObservation) => void;
}

export class PublicApps {
  private readonly deps: PublicAppsDependencies;

  constructor(dependencies: PublicAppsDependencies) {
    this.deps = dependencies;
  }

  get installations(): ObjectCache<KubeObject> {
    return this.deps.installations;
  }

  get status(): StatusWriter {
    return this.deps.status;
  }

  /** The app's own reconcile: its state (client-secret history, authorization round) and status. */
  async reconcile(
    app: OAuthApp,
    identity: AppIdentity,
    leading: () => void,
    checkClientSecret: (stored: StoredState, clientSecret: SecretValue) => Promise<{ stored: StoredState; checkAgainMs?: number }>,
  ): Promise<ReconcileResult> {
    const { states, sources, now } = this.deps;
    await states.flushUnsaved(identity);
    const clientSecret = await sources.read(identity.namespace, app.spec.clientSecretRef);
    let stored = states.load(identity);
    const history = rememberClientSecret(stored.state.record.clientSecretHistory, clientSecret.found ? fingerprint(clientSecret.value) : undefined, now());
    if (history !== stored.state.record.clientSecretHistory && history !== undefined) {
      leading();
      stored = await states.save(identity, { ...stored.state, record: { ...stored.state.record, clientSecretHistory: history } }, stored.resourceVersion);
    }
    const providerNotAllowed = this.deps.providerPolicy?.refusal(app.spec);
    const checked = providerNotAllowed === undefined ? await checkClientSecret(stored, clientSecret) : { stored };
    const callbackPathTaken = this.deps.paths.takenFrom(app);
    const authorization = providerNotAllowed === undefined && callbackPathTaken === undefined ? this.deps.authorizations.authorizationURL(app, checked.stored.state) : undefined;
    const status = publicAppStatus({
      state: checked.stored.state,
      clientSecret,
      ...(authorization ? { authorizationURL: authorization.url } : {}),
      ...(providerNotAllowed !== undefined ? { providerNotAllowed } : {}),
      ...(callbackPathTaken !== undefined ? { callbackPathTaken } : {}),
    });
    leading();
    await this.deps.appStatus.write(app, status, now());
    this.deps.observe?.(objectKey(identity.namespace, identity.name), { conditions: status.conditions });
    if (checked.checkAgainMs !== undefined && (!authorization || checked.checkAgainMs < authorization.renewAt - now())) return { requeueAfterMs: checked.checkAgainMs, reason: 'client secret check again' };
    return authorization ? { requeueAfterMs: Math.max(1, authorization.renewAt - now()), reason: 'authorization URL renewal' } : {};
  }

  /**
   * A deleted public app first deletes its installations, each of which revokes its grant; the
   * app's own finalizer waits for them (it holds the client secret their revocations need).
   * undefined once none is left.
   */
  async endInstallations(app: OAuthApp, leading: () => void): Promise<ReconcileResult | undefined> {
    const { namespace, name } = app.metadata;
    const left = this.deps.installations.list().filter((installation) => installation.metadata.namespace === namespace).filter((installation) => (installation as { spec?: { app?: unknown } }).spec?.app === name);
    if (left.length === 0) return undefined;
    for (const installation of left) {
      if (installation.metadata.deletionTimestamp) continue;
      leading();
      await this.deps.kube.deleteOAuthInstallation(namespace, installation.metadata.name);
    }
    return { requeueAfterMs: installationsGoneLookMs, reason: `waiting for ${left.length} installations to revoke their grants` };
  }

  /**
   * Revokes a deleted installation's refresh token, unless the app says not to, the company
   * uninstalled it (the provider ended the grant), or there is nothing to revoke. A failure is an
   * Event and an error (the work queue retries with backoff); the installation stays meanwhile.
   */
  async revoke(installation: OAuthInstallation, app: OAuthApp | undefined, identity: AppIdentity): Promise<void> {
    const { states, sources, events } = this.deps;
    const { state } = await states.loadLive(identity);
    if (!state.refreshToken || state.record.installation?.uninstalledAt !== undefined) return;
    if (!app) {
      await events.record(installation, { type: 'Warning', reason: 'RevocationSkipped', message: `OAuthApp ${installation.spec.app} is gone, with the client secret a revocation needs: the grant was not revoked at the provider`, action: 'Revoke' });
      return;
    }
    if (!app.spec.revokeOnDelete) return;
    const fail = async (message: string): Promise<never> => {
      await events.record(installation, { type: 'Warning', reason: 'RevocationFailed', message: `${message}; the installation stays until its grant is revoked (retried with backoff)`, action: 'Revoke' });
      throw new RevocationFailedError(message);
    };
    const notAllowed = this.deps.providerPolicy?.refusal(app.spec);
    if (notAllowed !== undefined) return fail(notAllowed);
    const clientSecret = await sources.read(identity.namespace, app.spec.clientSecretRef);
    if (!clientSecret.found) return fail(`${clientSecret.problem}: the revocation request authenticates the client`);
    const request = revocationRequest(app, clientSecret.value, state.refreshToken);
    if (!request) return fail('the provider has no revocation endpoint: set spec.revokeURL, or spec.revokeOnDelete: false');
    try {
      await this.deps.revoke(request);
    } catch (error) {
      if (!isTokenRequestError(error)) throw error;
      // A token the provider no longer knows is as good as revoked.
      if (error.code !== 'invalid_grant') return fail(`the provider did not revoke the refresh token (${error.code}): ${error.message}${providerSaid(error.description)}`);
    }
    await events.record(installation, { type: 'Normal', reason: 'Revoked', message: 'the refresh token was revoked at the provider', action: 'Revoke' });
  }
}
