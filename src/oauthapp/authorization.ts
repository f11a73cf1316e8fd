// First authorization: the authorize URL shown in status, and what the callback does with the
// provider's answer. A `state` names one OAuthApp (by uid) and one authorization round; the
// round is bumped (a write guarded by resourceVersion) before the code is exchanged, so a state
// works once, across all replicas, even if the exchange or the process fails half way.
// RFC 9700 throughout: the state is encrypted (it names nothing in clear), every authorize URL
// carries a PKCE S256 challenge whose verifier is derived from the signing key, the app's uid and
// the round (so nothing is stored for it), and where the provider is known to send `iss`
// (RFC 9207) a response with a missing or different one is refused before any code exchange.
import { oauthApp, type OAuthApp } from '../api/oauthapp.ts';
import type { CallbackOutcome } from '../http/callback-server.ts';
import type { EventRecorder } from '../kube/events.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.ts';
import type { ObjectCache } from '../kube/informer.ts';
import { objectKey, type KubeObject } from '../kube/objects.ts';
import { buildAuthorizeURL } from '../oauth/authorize-url.ts';
import { codeChallengeS256 } from '../oauth/pkce.ts';
import { resolveProvider } from '../oauth/providers.ts';
import type { ProviderPolicy } from '../oauth/provider-policy.ts';
import type { StateSigner } from '../oauth/state-token.ts';
import type { TokenClient } from '../oauth/token-client.ts';
import type { Installations } from './installations.ts';
import type { GrantOwner } from './grant-owner.ts';
import { exchangeCode, recordExchange } from './code-exchange.ts';
import type { SourceSecrets } from './source-secrets.ts';
import { AnswerNoLongerAppliesError, type StateStore, type StoredState } from './state-store.ts';
import type { KubeClient } from '../kube/client.ts';
import type { AppIdentity, AppState } from './state.ts';

/** A state handed out in status is replaced this long before it expires. */
const stateRenewalMarginMs = 60_000;

/**
 * An exchanged code's tokens that the apiserver could not take are retried this long (about a
 * state's lifetime): later, the person has long since tried again or gone.
 */
const heldExchangeAnswerMs = 10 * 60_000;

export interface AuthorizationDependencies {
  signer: StateSigner;
  apps: ObjectCache<KubeObject>;
  states: StateStore;
  sources: SourceSecrets;
  tokens: TokenClient;
  /** Which providers the admin allows; a code is never sent to one it refuses. Default: any. */
  providerPolicy?: ProviderPolicy | undefined;
  /** The same per-provider cap on concurrent token requests as refreshes. */
  limit: <T>(providerKey: string, task: () => Promise<T>) => Promise<T>;
  kube: Pick<KubeClient, 'getOAuthApp' | 'deleteSecret'>;
  events: Pick<EventRecorder, 'record'>;
  enqueue: (appKey: string) => void;
  now: () => number;
  random: () => number;
  /** Where in its jitter window the next refresh goes (evenly spread across apps). */
  pickRefreshTime?: (earliest: number, latest: number) => number;
  /** Where a public app's (installations: multiple) new grants go. */
  installations?: Pick<Installations, 'install'>;
}

type Failure = Extract<CallbackOutcome, { ok: false }>;

export class Authorizations {
  private readonly deps: AuthorizationDependencies;

  constructor(dependencies: AuthorizationDependencies) {
    this.deps = dependencies;
  }

  /**
   * The provider's authorize URL for this app's current round. The one already in status is kept
   * while it stays valid for a while, so status is not rewritten on every reconcile. One sealed
   * with the key a rotation replaced is renewed at once (the operator reconciles such apps when
   * the keys change): status shows only current-key URLs, while the old URL, wherever it was
   * copied to, keeps working in the callback until the previous key's grace ends.
   */
  authorizationURL(app: GrantOwner, state: AppState): { url: string; renewAt: number } {
    const { signer, now } = this.deps;
    const round = state.record.authorizationRound ?? 0;
    const codeChallenge = codeChallengeS256(signer.codeVerifier({ uid: app.metadata.uid, round }));
    const build = (stateToken: string) => {
      const provider = resolveProvider(app.spec);
      return buildAuthorizeURL({
        authorizeURL: provider.authorizeURL,
        clientId: app.spec.clientId,
        redirectURI: app.spec.redirectURI,
        state: stateToken,
        codeChallenge,
        ...(app.spec.scopes ? { scopes: app.spec.scopes } : {}),
        ...(app.spec.authorizeParams ? { extraParams: app.spec.authorizeParams } : {}),
      });
    };
    const shown = app.status?.authorizationURL;
    const shownState = shown ? stateParameter(shown) : undefined;
    if (shown && shownState) {
      const verified = signer.verify(shownState);
      if (
        verified.ok &&
        verified.key === 'current' &&
        verified.claims.uid === app.metadata.uid &&
        verified.claims.round === round &&
        verified.expiresAt - stateRenewalMarginMs > now() &&
        build(shownState) === shown
      ) {
        return { url: shown, renewAt: verified.expiresAt - stateRenewalMarginMs };
      }
    }
    const token = signer.sign({ namespace: app.metadata.namespace, name: app.metadata.name, uid: app.metadata.uid, round });
    const verified = signer.verify(token);
    const expiresAt = verified.ok ? verified.expiresAt : now();
    return { url: build(token), renewAt: expiresAt - stateRenewalMarginMs };
  }

  /** The provider sent the person back with a code: exchange it and store the tokens. */
  async complete({ state, code, iss }: { state: string; code: string; iss?: string | undefined }): Promise<CallbackOutcome> {
    const claimed = await this.claimRound(state);
    if (!claimed.ok) return claimed.failure;
    const { app, identity, stored, clientSecret } = claimed;
    const provider = resolveProvider(app.spec);
    // The spec may have changed since the URL was shown: the code and secret go nowhere not allowed.
    const notAllowed = this.deps.providerPolicy?.refusal(app.spec);
    if (notAllowed !== undefined) {
      await this.recordFailure(app, identity, stored, 'ProviderNotAllowed', notAllowed);
      return { ok: false, status: 403, reason: 'provider_not_allowed', message: `The operator may not send this app's code to its provider: ${notAllowed}. No code was exchanged.`, app: identity };
    }
    const wrongIssuer = issuerProblem(provider.issuer, iss);
    if (wrongIssuer) return this.refuseIssuer(app, identity, stored, wrongIssuer);
    const round = stored.state.record.authorizationRound;
    const { codeVerifier } = claimed;
    const exchanged = await exchangeCode(this.deps, app, clientSecret, code, codeVerifier);
    if (!exchanged.ok) {
      await this.recordFailure(app, identity, stored, 'ExchangeFailed', exchanged.message);
      return { ok: false, status: 502, reason: 'exchange_failed', message: `${exchanged.message}. Start again from the OAuthApp's status.authorizationURL.`, app: identity };
    }
    const { response } = exchanged;
    // A public app's own authorization URL installs it for the person's company.
    if (app.spec.installations === 'multiple' && this.deps.installations) return this.deps.installations.install(app, response, clientSecret);
    const answeredAt = this.deps.now();
    // Our round must still be the current one, and nothing newer stored since the answer came.
    const authorized = (current: AppState): AppState | undefined => {
      const { authorizationRound, lastRefreshTime } = current.record;
      if (authorizationRound !== round || (lastRefreshTime !== undefined && Date.parse(lastRefreshTime) > answeredAt)) return undefined;
      const next = recordExchange(this.deps, app, current, response, clientSecret, answeredAt);
      const { authorizationFailure: _cleared, ...record } = next.record;
      return { ...next, record };
    };
    try {
      await this.deps.states.saveAnswer(identity, stored, authorized, heldExchangeAnswerMs);
    } catch (error) {
      if (error instanceof AnswerNoLongerAppliesError) {
        return { ok: false, status: 409, reason: 'state_used', message: 'The OAuthApp was authorized again or deleted meanwhile; nothing was stored. Use its current status.authorizationURL.', app: identity };
      }
      throw error;
    }
    if (!(await this.appStillExists(identity))) {
      // Deleted while the code was exchanged: its finalizer may have removed the state already.
      await this.deps.states.delete(identity);
      return { ok: false, status: 404, reason: 'app_not_found', message: `OAuthApp ${identity.namespace}/${identity.name} was deleted; nothing was kept.`, app: identity };
    }
    await this.deps.events.record(app, { type: 'Normal', reason: 'Authorized', message: 'authorized through the OAuth callback; the operator now holds a refresh token', action: 'Authorize' });
    this.deps.enqueue(objectKey(identity.namespace, identity.name));
    return { ok: true, app: identity };
  }

  private async appStillExists(identity: AppIdentity): Promise<boolean> {
    const live = await this.deps.kube.getOAuthApp(identity.namespace, identity.name);
    return live !== undefined && live.metadata.uid === identity.uid && !live.metadata.deletionTimestamp;
  }

  /** The provider sent the person back with an error such as access_denied. */
  async refused({ state, error, description, iss }: { state: string; error: string; description?: string; iss?: string | undefined }): Promise<CallbackOutcome> {
    const claimed = await this.claimRound(state);
    if (!claimed.ok) return claimed.failure;
    // RFC 9207 §2.4 covers error responses too: a refusal from another issuer is not this provider's word.
    const wrongIssuer = issuerProblem(resolveProvider(claimed.app.spec).issuer, iss);
    if (wrongIssuer) return this.refuseIssuer(claimed.app, claimed.identity, claimed.stored, wrongIssuer);
    const reason = error === 'access_denied' ? 'AccessDenied' : 'AuthorizationRefused';
    const message = `the provider answered ${error}${description ? `: ${description}` : ''}`;
    await this.recordFailure(claimed.app, claimed.identity, claimed.stored, reason, message);
    return {
      ok: false,
      status: 403,
      reason: error === 'access_denied' ? 'access_denied' : 'authorization_refused',
      message: `The authorization was not granted (${message}). Nothing was stored.`,
      app: claimed.identity,
    };
  }

  /** A response from another issuer than the app's provider (RFC 9207): nothing is exchanged. */
  private async refuseIssuer(app: OAuthApp, identity: AppIdentity, stored: StoredState, problem: IssuerProblem): Promise<CallbackOutcome> {
    await this.recordFailure(app, identity, stored, 'IssuerMismatch', problem.message);
    return {
      ok: false,
      status: 403,
      reason: problem.reason,
      message: `This authorization response cannot be trusted: ${problem.message}. No code was exchanged; start again from the OAuthApp's status.authorizationURL.`,
      app: identity,
    };
  }

  private async recordFailure(app: OAuthApp, identity: AppIdentity, stored: StoredState, reason: string, message: string): Promise<void> {
    const round = stored.state.record.authorizationRound;
    const at = new Date(this.deps.now()).toISOString();
    const failed = (current: AppState): AppState | undefined =>
      current.record.authorizationRound === round ? { ...current, record: { ...current.record, authorizationFailure: { reason, message, at } } } : undefined;
    try {
      await this.deps.states.saveAnswer(identity, stored, failed, heldExchangeAnswerMs);
    } catch (error) {
      // Another round started meanwhile: this failure is old news.
      if (!(error instanceof AnswerNoLongerAppliesError)) throw error;
    }
    await this.deps.events.record(app, { type: 'Warning', reason, message, action: 'Authorize' });
    this.deps.enqueue(objectKey(identity.namespace, identity.name));
  }

  /** Checks the state and consumes its round; every refusal here means no code exchange. */
  private async claimRound(
    state: string,
  ): Promise<{ ok: true; app: OAuthApp; identity: AppIdentity; stored: StoredState; clientSecret: string; round: number; codeVerifier: string } | { ok: false; failure: Failure }> {
    const verified = this.deps.signer.verify(state);
    if (!verified.ok) {
      return verified.code === 'expired'
        ? refuse(410, 'state_expired', 'This authorization link has expired. Open the OAuthApp\'s current status.authorizationURL and try again.')
        : refuse(403, 'state_invalid', 'This authorization link was not issued by this operator.');
    }
    const { namespace, name, uid, round } = verified.claims;
    // The PKCE verifier of the round the state was issued for (the claim below bumps the stored
    // one), from the key that opened the state: after a rotation, the authorize request of a
    // previous-key state carried the previous key's challenge. Derived in the same turn as verify,
    // so that no key change comes between them.
    const codeVerifier = this.deps.signer.codeVerifier({ uid, round, key: verified.key });
    const parsed = oauthApp.safeParse(this.deps.apps.get(namespace, name));
    if (!parsed.success || parsed.data.metadata.uid !== uid || parsed.data.metadata.deletionTimestamp) {
      return refuse(404, 'app_not_found', `OAuthApp ${namespace}/${name} no longer exists or was re-created; use its current status.authorizationURL.`);
    }
    const app = parsed.data;
    const identity: AppIdentity = { namespace, name, uid };
    const clientSecret = await this.deps.sources.read(namespace, app.spec.clientSecretRef);
    if (!clientSecret.found) return refuse(409, 'client_secret_missing', `${clientSecret.problem}: the code cannot be exchanged without it.`, identity);
    const live = await this.deps.states.loadLive(identity);
    if ((live.state.record.authorizationRound ?? 0) !== round) {
      return refuse(409, 'state_used', 'This authorization link was already used. Open the OAuthApp\'s current status.authorizationURL to authorize again.', identity);
    }
    try {
      const next: AppState = { ...live.state, record: { ...live.state.record, authorizationRound: round + 1 } };
      const stored = await this.deps.states.save(identity, next, live.resourceVersion);
      return { ok: true, app, identity, stored, clientSecret: clientSecret.value, round, codeVerifier };
    } catch (error) {
      if (isConflict(error) || isAlreadyExists(error) || isNotFound(error)) {
        return refuse(409, 'state_used', 'This authorization link is being used by another request.', identity);
      }
      throw error;
    }
  }
}

function refuse(status: Failure['status'], reason: string, message: string, app?: AppIdentity): { ok: false; failure: Failure } {
  return { ok: false, failure: { ok: false, status, reason, message, ...(app ? { app: { namespace: app.namespace, name: app.name } } : {}) } };
}

interface IssuerProblem {
  reason: 'issuer_missing' | 'issuer_mismatch';
  message: string;
}

/**
 * RFC 9207 §2.4: with a known issuer, `iss` must be there and equal it (simple string comparison,
 * RFC 3986 §6.2.1). Without one, `iss` is ignored: most providers do not send it.
 */
export function issuerProblem(expected: string | undefined, iss: string | undefined): IssuerProblem | undefined {
  if (expected === undefined || iss === expected) return undefined;
  if (iss === undefined) {
    return { reason: 'issuer_missing', message: `the provider is known to send iss (RFC 9207) as ${expected}, but the authorization response had no iss parameter` };
  }
  return { reason: 'issuer_mismatch', message: `the authorization response came from issuer ${shownIssuer(iss)}, not ${expected} (RFC 9207: a mix-up of providers)` };
}

/** A provider-sent value fit for a condition message: quoted, one line, capped. */
function shownIssuer(iss: string): string {
  const flat = iss.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  return JSON.stringify(flat.length > 200 ? `${flat.slice(0, 200)}…` : flat);
}

function stateParameter(url: string): string | undefined {
  try {
    return new URL(url).searchParams.get('state') ?? undefined;
  } catch {
    return undefined;
  }
}
