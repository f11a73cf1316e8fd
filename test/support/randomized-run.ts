// One seed of the randomized chaos run (test/integration/chaos-randomized.test.ts): fresh
// namespaces and a fresh fault proxy on the run's control plane, two operator replicas talking to
// the apiserver only through the proxy, apps seeded with real grants of the strict provider, then
// the seed's plan (randomized-plan.ts): the proxy's fault schedule, the user's changes and maybe a
// stopped or killed replica; then calm. What is checked (each a list of violations, none allowed):
// 1. no refresh-token value sent twice (again after invalid_client is no replay: the provider
//    refused the client before it looked at the token);
// 2. no grant revoked;
// 3. no target Secret serving an expired access_token while the state Secret held a valid one
//    (expires_at in the future) for more than 5 s while a replica led: the target is written after
//    the state by design, so a refresh made after the old token expired leaves a short gap; 5 s is
//    the same allowance as for user changes. Time when no replica could lead is not counted: a
//    Lease that names a replica which died or stepped down (its renewal committed but the answer
//    was lost, so it gave up) lets nobody write until it runs out, leader election's failover gap
//    (seconds-long tokens make it visible here; real tokens outlive it by far);
// 4. every user change acted on within 5 s of the fault schedule ending: rotate → the value (or a
//    later one) in status.lastRotateRequest; spec edit → status.observedGeneration; client secret
//    → the target Secret carries it; delete → the OAuthApp and its state Secret gone; re-create →
//    the new app's status written and its target Secret made. For both of the last and a client
//    secret, TargetConflict reported while the garbage collector has not yet removed an earlier
//    app's target Secret counts too (the operator may not write a Secret someone else owns). The schedule ends at calm or,
//    when the Lease holder at calm never renewed again (killed, or it had lost the Lease to the
//    faults), when the next leader took over (see faultScheduleEnd: no later than the election
//    protocol allows, or that is a violation of its own); a change made after that counts from
//    when it was made;
// 5. every grant kept (the state Secret holds the provider's latest refresh token, Authorized)
//    unless a replica was SIGKILLed while holding a claim on it (a send window: from the claim
//    until the answer is stored) or the provider's answer never reached the operator; such an
//    app must then report Authorized=False, reason RefreshInterrupted.
// Evidence comes from the provider (every token request) and from watches of the apps, the state
// and target Secrets and the Lease, read straight from the apiserver.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeAPIError } from '../../src/kube/errors.ts';
import { clientCheckTokenPrefix } from '../../src/oauth/client-check.ts';
import { fingerprint } from '../../src/oauthapp/state.ts';
import { startAPIServerProxy, type ChaosSchedule, type FaultKind } from './apiserver-proxy.ts';
import type { AdminClient } from './kube.ts';
import { planRun, type ChangeKind, type Plan, type PlannedAction } from './randomized-plan.ts';
import { Mirror, type ChangeType, type MirroredObject } from './randomized-mirror.ts';
import type { RandomizedProvider, TokenExchange } from './randomized-provider.ts';
import { Replicas } from './randomized-replicas.ts';

/** Seconds; a claim runs out 2 × this + 5 s after it was written. */
const tokenRequestTimeoutSeconds = 5;
/** The operator's Lease duration (src/kube/leader-election.ts). */
const leaseDurationMs = 15_000;
const actAllowanceMs = 5_000;
const staleAllowanceMs = 5_000;
const group = '/apis/oauthapp.dev/v1alpha1';

export interface RunContext {
  /** The control plane's admin kubeconfig: the proxy forwards to it. */
  kubeconfig: string;
  admin: AdminClient;
  provider: RandomizedProvider;
  /** Where a failing seed's evidence is written. */
  evidenceDir: string;
  /** Write the evidence of passing seeds too. */
  keepEvidence?: boolean;
}

export interface RunFigures {
  seed: number;
  apps: number;
  faultMs: number;
  totalMs: number;
  /** Refresh-token requests the provider received, and those it answered with new tokens. */
  sends: number;
  refreshes: number;
  invalidClient: number;
  /** Client checks: refresh requests with a token no provider issued (oauth/client-check.ts), not counted as sends. */
  clientChecks: number;
  /** Token requests whose answer the client never got. */
  lostAnswers: number;
  proxyRequests: number;
  faults: Record<FaultKind, number>;
  /** Writes the apiserver committed whose answer the proxy dropped. */
  committedWritesLost: number;
  changes: Record<ChangeKind, number>;
  skippedChanges: number;
  disruption: string;
  /** Replica exits nobody asked for (a lost Lease ends the process). */
  replicaExits: number;
  leaderChanges: number;
  claims: number;
  staleEpisodes: number;
  staleMaxMs: number;
  /** The longest a change took past the end of the fault schedule (0: all before). */
  maxActLagMs: number;
  lostGrants: number;
}

export interface RunResult {
  figures: RunFigures;
  violations: string[];
  /** The directory with logs, timeline, provider record and proxy decisions (failing seeds only). */
  evidence?: string;
  plan: Plan;
  /** The seed's namespaces, left for the caller to delete (all at once, after the seeds). */
  namespaces: string[];
}

type SecretObject = MirroredObject & { data?: Record<string, string> };
interface Condition {
  type: string;
  status: string;
  reason?: string;
}
type AppObject = MirroredObject & {
  metadata: { annotations?: Record<string, string> };
  status?: { observedGeneration?: number; lastRotateRequest?: string; conditions?: Condition[] };
};
type LeaseObject = MirroredObject & { spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number } };

interface Instance {
  uid: string;
  grantId: string;
  seedRefreshToken: string;
  createdAt: number;
  deletedAt?: number;
}

interface Slot {
  name: string;
  clientId: string;
  redirectURI: string;
  /** Every client secret this app had, in order. */
  clientSecrets: string[];
  renewBefore: string | undefined;
  instances: Instance[];
  /** A re-create is under way (the old app may still be finalizing). */
  recreating: boolean;
}

interface Change {
  n: number;
  kind: ChangeKind;
  slot: Slot;
  uid: string;
  at: number;
  value?: string;
  generation?: number;
  actedAt?: number;
  superseded?: boolean;
}

interface ClaimWindow {
  uid: string;
  holder: string;
  openedAt: number;
  closedAt?: number;
}

const decode = (secret: SecretObject | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(secret?.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));

const condition = (app: AppObject | undefined, type: string) => app?.status?.conditions?.find((each) => each.type === type);

const ownedBy = (object: MirroredObject | undefined, uid: string) => object?.metadata.ownerReferences?.some((owner) => owner.uid === uid && owner.controller === true) ?? false;

export async function runSeed(seed: number, context: RunContext): Promise<RunResult> {
  const plan = planRun(seed);
  const { admin, provider } = context;
  const http = admin.http;
  const started = Date.now();
  const timeline: string[] = [];
  const note = (text: string, at = Date.now()) => timeline.push(`+${((at - started) / 1000).toFixed(3)}s ${text}`);
  const violations: string[] = [];
  const suffix = randomBytes(2).toString('hex');
  const namespace = `chaos-rand-${seed}-${suffix}`;
  const operatorNamespace = `chaos-rand-op-${seed}-${suffix}`;

  for (const name of [namespace, operatorNamespace]) await http.json({ method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name } } });
  const proxy = await startAPIServerProxy({ upstreamKubeconfig: context.kubeconfig });
  const replicas = new Replicas(['a', 'b'], [
    `--kubeconfig=${proxy.kubeconfigPath}`,
    `--namespaces=${namespace}`,
    `--operator-namespace=${operatorNamespace}`,
    '--leader-elect',
    '--metrics-addr=127.0.0.1:0',
    '--callback-addr=127.0.0.1:0',
    `--token-request-timeout=${tokenRequestTimeoutSeconds}`,
    '--log-level=debug',
  ], {
    // The provider is on loopback, and its 15 s tokens refresh more often than the default floor.
    OAUTHAPP_ALLOW_LOOPBACK_PROVIDERS: 'true',
    OAUTHAPP_MIN_REFRESH_INTERVAL: '1',
  });

  // --- what the watches see ---------------------------------------------------------------
  const slots: Slot[] = [];
  const changes: Change[] = [];
  const tokenStoredAt = new Map<string, number>(); // `${uid} ${access_token}` → first seen in the state Secret
  const claimWindows: ClaimWindow[] = [];
  const openClaims = new Map<string, ClaimWindow & { claimedAt: string }>();
  const claimWatchers = new Set<(holder: string) => void>();
  const leaseHistory: Array<{ at: number; holder: string; renewTime: number }> = [];
  const staleEpisodes = new Map<string, { uid: string; app: string; start: number; last: number; storedAt: number; expiredAt: number }>();
  const lastConditions = new Map<string, string>();

  const instanceOf = (uid: string) => {
    for (const slot of slots) {
      const instance = slot.instances.find((each) => each.uid === uid);
      if (instance) return { slot, instance };
    }
    return undefined;
  };

  const onState = (type: ChangeType, secret: SecretObject, at: number) => {
    if (!secret.metadata.name.startsWith('oauthapp-state-')) return;
    const uid = secret.metadata.name.slice('oauthapp-state-'.length);
    const data = type === 'DELETED' ? {} : decode(secret);
    if (data.access_token && !tokenStoredAt.has(`${uid} ${data.access_token}`)) tokenStoredAt.set(`${uid} ${data.access_token}`, at);
    let claim: { holder: string; claimedAt: string } | undefined;
    try {
      claim = (JSON.parse(data['record.json'] ?? '{}') as { claim?: { holder: string; claimedAt: string } }).claim;
    } catch {
      claim = undefined;
    }
    const open = openClaims.get(uid);
    if (open && (!claim || claim.claimedAt !== open.claimedAt || claim.holder !== open.holder)) {
      open.closedAt = at;
      openClaims.delete(uid);
      note(`claim on ${instanceOf(uid)?.slot.name ?? uid} by ${open.holder} closed`, at);
    }
    if (claim && !openClaims.has(uid)) {
      const window = { uid, holder: claim.holder, claimedAt: claim.claimedAt, openedAt: Math.min(at, Date.parse(claim.claimedAt)) };
      openClaims.set(uid, window);
      claimWindows.push(window);
      for (const watcher of claimWatchers) watcher(claim.holder);
      note(`claim on ${instanceOf(uid)?.slot.name ?? uid} by ${claim.holder}`, at);
    }
    if (type === 'DELETED') note(`state Secret of ${instanceOf(uid)?.slot.name ?? uid} deleted`, at);
    evaluate(at);
  };
  const onApp = (type: ChangeType, app: AppObject, at: number) => {
    const key = app.metadata.uid ?? app.metadata.name;
    const summary =
      type === 'DELETED'
        ? 'deleted'
        : ['Ready', 'Authorized', 'ClientSecretValid'].map((type) => `${type}=${condition(app, type)?.status ?? '?'}/${condition(app, type)?.reason ?? '?'}`).join(' ') +
          ` gen ${app.metadata.generation ?? '?'} observed ${app.status?.observedGeneration ?? '?'} rotate ${app.status?.lastRotateRequest ?? '-'}${app.metadata.deletionTimestamp ? ' terminating' : ''}`;
    if (lastConditions.get(key) !== summary) {
      lastConditions.set(key, summary);
      note(`app ${app.metadata.name} (${(app.metadata.uid ?? '').slice(0, 8)}): ${summary}`, at);
    }
    evaluate(at);
  };
  const targetSeen = new Map<string, string>();
  const onTarget = (type: ChangeType, secret: SecretObject, at: number) => {
    if (secret.metadata.name.endsWith('-credentials')) {
      const owner = secret.metadata.ownerReferences?.find((reference) => reference.controller)?.uid?.slice(0, 8) ?? 'none';
      const data = decode(secret);
      const summary = type === 'DELETED' ? 'deleted' : `owner ${owner}, token ${data.access_token ? fingerprint(data.access_token) : 'none'} expiring ${data.expires_at ?? '-'}`;
      if (targetSeen.get(secret.metadata.name) !== summary) {
        targetSeen.set(secret.metadata.name, summary);
        note(`target ${secret.metadata.name}: ${summary}`, at);
      }
    }
    evaluate(at);
  };
  const onLease = (_type: ChangeType, lease: LeaseObject, at: number) => {
    const holder = lease.spec?.holderIdentity ?? '';
    const renewTime = lease.spec?.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const last = leaseHistory.at(-1);
    if (last?.holder !== holder) note(`Lease held by ${holder || 'nobody'}`, at);
    leaseHistory.push({ at, holder, renewTime });
  };

  const apps = new Mirror<AppObject>(http, `${group}/namespaces/${namespace}/oauthapps`, onApp);
  const appSecrets = new Mirror<SecretObject>(http, `/api/v1/namespaces/${namespace}/secrets`, onTarget);
  const states = new Mirror<SecretObject>(http, `/api/v1/namespaces/${operatorNamespace}/secrets`, onState);
  const leases = new Mirror<LeaseObject>(http, `/apis/coordination.k8s.io/v1/namespaces/${operatorNamespace}/leases`, onLease);
  const mirrors = [apps, appSecrets, states, leases];

  /** Marks changes acted on, and tracks target Secrets serving an expired token (check 3). */
  function evaluate(now: number) {
    for (const change of changes) {
      if (change.actedAt !== undefined || change.superseded) continue;
      if (change.kind !== 'delete' && change.kind !== 'recreate' && changes.some((later) => later.kind === 'delete' && later.uid === change.uid && later.n > change.n)) {
        change.superseded = true;
        continue;
      }
      if (actedOn(change)) change.actedAt = now;
    }
    const live = new Set<string>();
    for (const app of apps.values()) {
      const uid = app.metadata.uid ?? '';
      const target = appSecrets.get(`${app.metadata.name}-credentials`);
      const state = states.get(`oauthapp-state-${uid}`);
      if (!ownedBy(target, uid) || !state) continue;
      const [targetData, stateData] = [decode(target), decode(state)];
      const targetExpiry = Date.parse(targetData.expires_at ?? '');
      const stateExpiry = Date.parse(stateData.expires_at ?? '');
      if (!(targetExpiry <= now && stateExpiry > now && stateData.access_token && stateData.access_token !== targetData.access_token)) continue;
      const key = `${uid} ${stateData.access_token}`;
      live.add(key);
      const storedAt = tokenStoredAt.get(key) ?? now;
      const episode = staleEpisodes.get(key) ?? { uid, app: app.metadata.name, start: Math.max(storedAt, targetExpiry), last: now, storedAt, expiredAt: targetExpiry };
      episode.last = now;
      staleEpisodes.set(key, episode);
    }
  }

  /** TargetConflict reported while the target Secret still belongs to an earlier app of the slot. */
  function conflictWithPredecessor(slot: Slot, uid: string, app: AppObject | undefined, target: SecretObject | undefined): boolean {
    const previousOwner = slot.instances.some((instance) => instance.uid !== uid && ownedBy(target, instance.uid));
    return previousOwner && app?.metadata.uid === uid && condition(app, 'Ready')?.reason === 'TargetConflict';
  }

  function actedOn(change: Change): boolean {
    const { slot, uid } = change;
    const app = apps.get(slot.name);
    const sameApp = app?.metadata.uid === uid;
    const laterValues = (kind: ChangeKind) => changes.filter((other) => other.kind === kind && other.slot === slot && other.n >= change.n).map((other) => other.value);
    switch (change.kind) {
      case 'rotate':
        return sameApp && laterValues('rotate').includes(app?.status?.lastRotateRequest);
      case 'specEdit':
        return sameApp && (app?.status?.observedGeneration ?? 0) >= (change.generation ?? Infinity);
      case 'clientSecret': {
        const target = appSecrets.get(`${slot.name}-credentials`);
        // While a re-created app's target still belongs to its predecessor (the garbage collector
        // has not removed it), TargetConflict is the operator's answer: it may not write there.
        return (ownedBy(target, uid) && laterValues('clientSecret').includes(decode(target).client_secret)) || conflictWithPredecessor(slot, uid, app, target);
      }
      case 'delete':
        return !sameApp && !states.get(`oauthapp-state-${uid}`);
      case 'recreate': {
        // Picked up: its status written and its target Secret made, or TargetConflict reported while
        // the deleted app's target Secret still waits for the garbage collector (whether the new
        // grant works is check 5).
        const target = appSecrets.get(`${slot.name}-credentials`);
        return sameApp && (app?.status?.observedGeneration ?? 0) >= 1 && (ownedBy(target, uid) || conflictWithPredecessor(slot, uid, app, target));
      }
    }
  }

  // --- the user's side: objects, changes ----------------------------------------------------
  const secretBody = (name: string, data: Record<string, string>) => ({ metadata: { name }, type: 'Opaque', stringData: data });
  const createApp = async (slot: Slot, refreshTokenRef: string) =>
    http.json<AppObject>({
      method: 'POST',
      path: `${group}/namespaces/${namespace}/oauthapps`,
      body: {
        apiVersion: 'oauthapp.dev/v1alpha1',
        kind: 'OAuthApp',
        metadata: { name: slot.name },
        spec: {
          provider: 'custom',
          authorizeURL: provider.authorizeURL,
          tokenURL: provider.tokenURL,
          clientAuthentication: 'client_secret_basic',
          clientId: slot.clientId,
          clientSecretRef: { name: `${slot.name}-client`, key: 'client_secret' },
          redirectURI: slot.redirectURI,
          scopes: ['openid', 'offline_access'],
          refreshTokenRef: { name: refreshTokenRef, key: 'refresh_token' },
          ...(slot.renewBefore ? { renewBefore: slot.renewBefore } : {}),
        },
      },
    });
  const newInstance = async (slot: Slot): Promise<Instance> => {
    const grant = await provider.seedGrant(slot.clientId);
    const bootstrap = `${slot.name}-bootstrap-${slot.instances.length}`;
    await http.json({ method: 'POST', path: `/api/v1/namespaces/${namespace}/secrets`, body: secretBody(bootstrap, { refresh_token: grant.refreshToken }) });
    for (;;) {
      try {
        const created = await createApp(slot, bootstrap);
        const instance = { uid: created.metadata.uid ?? '', grantId: grant.grantId, seedRefreshToken: grant.refreshToken, createdAt: Date.now() };
        slot.instances.push(instance);
        return instance;
      } catch (error) {
        // The deleted app may still be finalizing: its name is taken until then.
        if (!(error instanceof KubeAPIError && error.status === 409) || Date.now() - started > 600_000) throw error;
        await sleep(250);
      }
    }
  };
  const liveInstance = (slot: Slot) => {
    const last = slot.instances.at(-1);
    return last && last.deletedAt === undefined && !slot.recreating ? last : undefined;
  };
  let changeCount = 0;
  let skipped = 0;
  const record = (kind: ChangeKind, slot: Slot, uid: string, extra: { value?: string; generation?: number } = {}) => {
    const change: Change = { n: ++changeCount, kind, slot, uid, at: Date.now(), ...extra };
    changes.push(change);
    note(`user: ${kind} ${slot.name}${extra.value ? ` ${kind === 'clientSecret' ? fingerprint(extra.value) : extra.value}` : ''}${extra.generation ? ` (generation ${extra.generation})` : ''}`, change.at);
    evaluate(change.at);
  };
  const recreations = new Set<Promise<void>>();

  async function act(action: PlannedAction) {
    const slot = slots[action.app];
    if (!slot) return;
    const instance = liveInstance(slot);
    if (action.kind === 'recreate') {
      if (instance || slot.recreating) return void (skipped += 1);
      slot.recreating = true;
      const recreation = newInstance(slot).then((created) => {
        slot.recreating = false;
        record('recreate', slot, created.uid);
      });
      recreations.add(recreation);
      return;
    }
    if (!instance) {
      skipped += 1;
      note(`user: ${action.kind} ${slot.name} skipped (the app is being re-created)`);
      return;
    }
    const appPath = `${group}/namespaces/${namespace}/oauthapps/${slot.name}`;
    switch (action.kind) {
      case 'rotate': {
        const value = `s${seed}-${changeCount + 1}`;
        await http.json({ method: 'PATCH', path: appPath, contentType: 'application/merge-patch+json', body: { metadata: { annotations: { 'oauthapp.dev/rotate': value } } } });
        record('rotate', slot, instance.uid, { value });
        return;
      }
      case 'specEdit': {
        const edit = action.edit ?? { label: 'edit' };
        const spec = 'label' in edit ? { target: { labels: { 'chaos.oauthapp.dev/edit': edit.label } } } : { renewBefore: edit.renewBefore };
        const written = await http.json<AppObject>({ method: 'PATCH', path: appPath, contentType: 'application/merge-patch+json', body: { spec } });
        record('specEdit', slot, instance.uid, { generation: written.metadata.generation ?? 0 });
        return;
      }
      case 'clientSecret': {
        const secret = provider.newClientSecret();
        slot.clientSecrets.push(secret);
        const updateSecret = () =>
          http.json({ method: 'PATCH', path: `/api/v1/namespaces/${namespace}/secrets/${slot.name}-client`, contentType: 'application/merge-patch+json', body: { stringData: { client_secret: secret } } });
        const updateProvider = () => {
          provider.setClientSecret(slot.clientId, secret);
          note(`provider: ${slot.name}'s client secret is now ${fingerprint(secret)}`);
        };
        if (action.secretFirst) {
          await updateSecret();
          record('clientSecret', slot, instance.uid, { value: secret });
          await sleep(action.gapMs ?? 0);
          updateProvider();
        } else {
          updateProvider();
          await sleep(action.gapMs ?? 0);
          await updateSecret();
          record('clientSecret', slot, instance.uid, { value: secret });
        }
        return;
      }
      case 'delete': {
        await http.json({ method: 'DELETE', path: appPath, body: { preconditions: { uid: instance.uid } } });
        instance.deletedAt = Date.now();
        record('delete', slot, instance.uid);
        return;
      }
    }
  }

  // --- the run ------------------------------------------------------------------------------
  const kills: Array<{ at: number; signal: string; identity: string | undefined; replica: string; atClaim: boolean }> = [];
  const ticker = setInterval(() => evaluate(Date.now()), 250);
  let calmAt = 0;
  let schedule: ChaosSchedule | undefined;
  let evidence: string | undefined;
  const exchangesOfRun = () => provider.exchanges().filter((exchange) => slots.some((slot) => slot.clientId === exchange.clientId));
  let figures: RunFigures | undefined;
  try {
    for (const mirror of mirrors) await mirror.start();
    replicas.startAll();
    await replicas.ready(90_000);

    for (let index = 0; index < plan.appCount; index += 1) {
      const client = provider.registerClient();
      const slot: Slot = {
        name: `app-${index}`,
        clientId: client.clientId,
        redirectURI: client.redirectURI,
        clientSecrets: [client.clientSecret],
        renewBefore: plan.renewBefore[index],
        instances: [],
        recreating: false,
      };
      slots.push(slot);
      await http.json({ method: 'POST', path: `/api/v1/namespaces/${namespace}/secrets`, body: secretBody(`${slot.name}-client`, { client_secret: client.clientSecret }) });
      await newInstance(slot);
    }
    await until('every app Ready before the faults', 90_000, () =>
      slots.every((slot) => {
        const app = apps.get(slot.name);
        return condition(app, 'Ready')?.status === 'True' && ownedBy(appSecrets.get(`${slot.name}-credentials`), app?.metadata.uid ?? '');
      }),
    );

    // Faults, the user's changes and maybe a kill, all from the seed.
    const faultsFrom = Date.now();
    note(`faults on (seed ${seed})`, faultsFrom);
    schedule = proxy.chaos({ seed, rates: plan.rates, durations: plan.durations });
    const driver = (async () => {
      for (const action of plan.actions) {
        await sleep(Math.max(0, faultsFrom + action.atMs - Date.now()));
        await act(action);
      }
    })();
    const disruption = (async () => {
      const planned = plan.disruption;
      if (!planned) return;
      await sleep(Math.max(0, faultsFrom + planned.atMs - Date.now()));
      const leaderIdentity = () => [...leaseHistory].reverse().find((entry) => entry.holder)?.holder;
      if (planned.atClaim) {
        // The leader's next claim, as soon as the watch shows it (or give up near the end). The
        // claim's answer is held back 3 s (the write itself commits), so the kill lands while the
        // claim stands and before its token request: a crash inside a send window.
        const claimWrite = proxy.inject(
          { kind: 'delayResponse', ms: 3_000 },
          { match: (request) => request.method === 'PUT' && request.path.startsWith(`/api/v1/namespaces/${operatorNamespace}/secrets/oauthapp-state-`) && writesClaim(request.body) },
        );
        note('holding back the answer to the next claim');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.max(0, faultsFrom + plan.faultMs - 2_000 - Date.now()));
          function done() {
            clearTimeout(timer);
            claimWatchers.delete(watcher);
            resolve();
          }
          function watcher(holder: string) {
            if (holder === leaderIdentity()) done();
          }
          claimWatchers.add(watcher);
        });
        if (claimWrite.hits === 0) claimWrite.cancel();
      }
      const holder = leaderIdentity();
      const byIdentity = replicas.identities();
      const leader = holder ? byIdentity.get(holder) : undefined;
      const name = planned.target === 'leader' ? (leader ?? 'a') : replicas.names.find((each) => each !== leader) ?? 'b';
      const identity = replicas.identityOf(name);
      kills.push({ at: Date.now(), signal: planned.signal, identity, replica: name, atClaim: planned.atClaim });
      note(`${planned.signal} replica ${name} (${planned.target}${planned.atClaim ? ', at its claim' : ''}, ${identity ?? 'identity unknown'})`);
      await replicas.kill(name, planned.signal, 1_000);
    })();
    await sleep(Math.max(0, faultsFrom + plan.faultMs - Date.now()));
    await driver;
    proxy.calm();
    calmAt = Date.now();
    note(`calm: ${schedule.decisions.filter((decision) => decision.fault).length} faults in ${schedule.decisions.length} requests`, calmAt);
    await disruption;
    await Promise.all([...recreations]);

    // Check 4: every change acted on (waiting well past the allowance, to report the real lag).
    await until('every change acted on', 90_000, () => changes.every((change) => change.actedAt !== undefined || change.superseded)).catch(() => undefined);
    const { end: scheduleEnd, lateTakeover } = faultScheduleEnd(calmAt, leaseHistory);
    if (scheduleEnd > calmAt) note(`the fault schedule ends when the next leader took over from the Lease holder at calm`, scheduleEnd);
    if (lateTakeover !== undefined) violations.push(`4: ${lateTakeover}`);
    let maxActLagMs = 0;
    for (const change of changes) {
      if (change.superseded) continue;
      const deadline = Math.max(scheduleEnd, change.at) + actAllowanceMs;
      const what = `${change.kind} of ${change.slot.name} (change ${change.n}, made at +${((change.at - started) / 1000).toFixed(1)}s${change.value && change.kind === 'rotate' ? `, ${change.value}` : ''}${change.generation ? `, generation ${change.generation}` : ''})`;
      if (change.actedAt === undefined) violations.push(`4: ${what} never acted on (waited until +${((Date.now() - started) / 1000).toFixed(1)}s)`);
      else {
        maxActLagMs = Math.max(maxActLagMs, change.actedAt - Math.max(scheduleEnd, change.at));
        if (change.actedAt > deadline) violations.push(`4: ${what} acted on ${((change.actedAt - deadline + actAllowanceMs) / 1000).toFixed(1)}s after the fault schedule ended (allowed ${actAllowanceMs / 1000}s)`);
      }
    }

    // Check 5: every grant of a live app kept, or lost only where the plan allows, and reported.
    const liveInstances = slots.flatMap((slot) => {
      const instance = liveInstance(slot);
      return instance ? [{ slot, instance }] : [];
    });
    const headOf = (instance: Instance) =>
      exchangesOfRun()
        .filter((exchange) => exchange.grantId === instance.grantId && exchange.outcome === 'ok' && exchange.grantType === 'refresh_token')
        .at(-1)?.issuedRefreshToken ?? instance.seedRefreshToken;
    const grantState = (instance: Instance, name: string): 'kept' | 'reported' | 'unsettled' => {
      const state = decode(states.get(`oauthapp-state-${instance.uid}`));
      const app = apps.get(name);
      const record = JSON.parse(state['record.json'] ?? '{}') as { claim?: unknown; deadRefreshTokenFingerprint?: string };
      const authorized = condition(app, 'Authorized');
      if (record.claim) return 'unsettled';
      if (state.refresh_token === headOf(instance) && record.deadRefreshTokenFingerprint !== fingerprint(state.refresh_token ?? '') && authorized?.status === 'True') return 'kept';
      // Lost for good (a person must authorize again); anything else may still change.
      if (authorized?.status === 'False' && (authorized.reason === 'RefreshInterrupted' || authorized.reason === 'InvalidGrant')) return 'reported';
      return 'unsettled';
    };
    await until('every grant kept or reported lost', 2 * tokenRequestTimeoutSeconds * 1000 + 5_000 + 60_000, () =>
      liveInstances.every(({ slot, instance }) => grantState(instance, slot.name) !== 'unsettled'),
    ).catch(() => undefined);
    let lostGrants = 0;
    for (const { slot, instance } of liveInstances) {
      const result = grantState(instance, slot.name);
      if (result === 'kept') continue;
      const app = apps.get(slot.name);
      const authorized = condition(app, 'Authorized');
      const state = decode(states.get(`oauthapp-state-${instance.uid}`));
      const lostAnswer = exchangesOfRun().find((exchange) => exchange.grantId === instance.grantId && exchange.lost);
      const killedHolder = kills.find((kill) => kill.signal === 'SIGKILL' && claimWindows.some((window) => window.uid === instance.uid && window.holder === kill.identity && window.openedAt <= kill.at && (window.closedAt ?? Infinity) > kill.at));
      const why = lostAnswer ? `the provider's answer to request ${lostAnswer.seq} never reached the operator` : killedHolder ? `replica ${killedHolder.replica} was SIGKILLed holding a claim on it` : undefined;
      // The claim that ran out, and whether any request followed it (none: the token never left).
      const lastClaim = claimWindows.filter((window) => window.uid === instance.uid).at(-1);
      const sentInClaim = lastClaim && exchangesOfRun().filter((exchange) => exchange.grantId === instance.grantId && exchange.arrivedAt >= lastClaim.openedAt && exchange.arrivedAt <= (lastClaim.closedAt ?? Infinity));
      const claimLine = lastClaim
        ? `; last claim by ${lastClaim.holder} from +${((lastClaim.openedAt - started) / 1000).toFixed(3)}s to ${lastClaim.closedAt ? `+${((lastClaim.closedAt - started) / 1000).toFixed(3)}s` : 'the end'}, followed by ${sentInClaim?.length ?? 0} token requests`
        : '';
      const evidenceLine = `state refresh token ${fingerprint(state.refresh_token ?? '')}, provider's latest ${fingerprint(headOf(instance))}, Authorized=${authorized?.status ?? '?'}/${authorized?.reason ?? '?'}${claimLine}`;
      if (result === 'unsettled') {
        violations.push(`5: ${slot.name}'s grant neither kept nor reported lost (${evidenceLine})`);
      } else if (!why) {
        violations.push(`5: ${slot.name}'s grant lost with no crash or lost answer in a send window (${evidenceLine})`);
      } else if (authorized?.reason !== 'RefreshInterrupted') {
        violations.push(`5: ${slot.name}'s grant lost (${why}) but reported as ${authorized?.reason ?? 'nothing'}, not RefreshInterrupted`);
      } else {
        lostGrants += 1;
        note(`${slot.name}'s grant lost, allowed: ${why}; reported RefreshInterrupted`);
      }
    }

    // Checks 1 and 2, from the provider's side.
    const exchanges = exchangesOfRun();
    const isClientCheck = (exchange: TokenExchange) => exchange.presented?.startsWith(clientCheckTokenPrefix) === true;
    const refreshRequests = exchanges.filter((exchange) => exchange.grantType === 'refresh_token' && !isClientCheck(exchange));
    const byValue = new Map<string, TokenExchange[]>();
    for (const exchange of refreshRequests) {
      if (!exchange.presented) continue;
      byValue.set(exchange.presented, [...(byValue.get(exchange.presented) ?? []), exchange]);
    }
    for (const [value, sent] of byValue) {
      if (sent.length < 2) continue;
      const processed = sent.slice(0, -1).filter((exchange) => exchange.outcome !== 'invalid_client');
      if (processed.length > 0) {
        violations.push(`1: refresh token ${fingerprint(value)} sent ${sent.length} times: ${sent.map((exchange) => `request ${exchange.seq} at +${((exchange.arrivedAt - started) / 1000).toFixed(3)}s → ${exchange.outcome}${exchange.lost ? ' (answer lost)' : ''}`).join(', ')}`);
      }
    }
    const grants = new Set(slots.flatMap((slot) => slot.instances.map((instance) => instance.grantId)));
    for (const revocation of provider.revocations().filter((each) => grants.has(each.grantId))) {
      const owner = slots.find((slot) => slot.instances.some((instance) => instance.grantId === revocation.grantId));
      violations.push(`2: ${owner?.name ?? '?'}'s grant revoked by the provider at +${((revocation.at - started) / 1000).toFixed(3)}s`);
    }

    // Check 3.
    let staleMaxMs = 0;
    const leading = leadingSpans(leaseHistory, replicas.events, Date.now());
    for (const episode of staleEpisodes.values()) {
      const duration = episode.last - episode.start;
      const whileLed = overlapMs(episode.start, episode.last, leading);
      staleMaxMs = Math.max(staleMaxMs, whileLed);
      if (whileLed > staleAllowanceMs) {
        violations.push(
          `3: ${episode.app}'s target Secret served an expired access token (expired at +${((episode.expiredAt - started) / 1000).toFixed(1)}s) for ${(whileLed / 1000).toFixed(1)}s while a replica led (${(duration / 1000).toFixed(1)}s in all) and the state Secret held a valid one (stored at +${((episode.storedAt - started) / 1000).toFixed(1)}s)`,
        );
      }
    }

    // No secret value in logs, Events or OAuthApp objects.
    const canaries = [
      ...slots.flatMap((slot) => [...slot.clientSecrets, ...slot.instances.map((instance) => instance.seedRefreshToken)]),
      ...exchanges.flatMap((exchange) => [exchange.presented ?? '', exchange.issuedAccessToken ?? '', exchange.issuedRefreshToken ?? '']),
    ].filter((value) => value.length >= 8);
    const [events, appList] = await Promise.all([
      http.json<unknown>({ method: 'GET', path: `/apis/events.k8s.io/v1/namespaces/${namespace}/events` }),
      http.json<unknown>({ method: 'GET', path: `${group}/namespaces/${namespace}/oauthapps` }),
    ]);
    const places: Record<string, string> = { 'operator logs': replicas.logs(), Events: JSON.stringify(events), 'OAuthApp objects': JSON.stringify(appList) };
    for (const [place, text] of Object.entries(places)) {
      const leaked = canaries.filter((value) => text.includes(value)).length;
      if (leaked > 0) violations.push(`leak: ${leaked} secret values in ${place}`);
    }

    const stats = proxy.stats;
    const holders = leaseHistory.map((entry) => entry.holder).filter((holder, index, all) => holder && holder !== all[index - 1]);
    const tally = Object.fromEntries((['rotate', 'specEdit', 'clientSecret', 'delete', 'recreate'] as const).map((kind) => [kind, changes.filter((change) => change.kind === kind).length])) as Record<ChangeKind, number>;
    figures = {
      seed,
      apps: plan.appCount,
      faultMs: plan.faultMs,
      totalMs: 0,
      sends: refreshRequests.length,
      refreshes: refreshRequests.filter((exchange) => exchange.outcome === 'ok').length,
      invalidClient: refreshRequests.filter((exchange) => exchange.outcome === 'invalid_client').length,
      clientChecks: exchanges.filter(isClientCheck).length,
      lostAnswers: exchanges.filter((exchange) => exchange.lost).length,
      proxyRequests: stats.requests,
      faults: stats.faults,
      committedWritesLost: stats.droppedWriteResponses.filter((write) => write.committed).length,
      changes: tally,
      skippedChanges: skipped,
      disruption: kills.map((kill) => `${kill.signal}${kill.atClaim ? ' at a claim' : ''} ${kill.replica}`).join(', ') || 'none',
      replicaExits: replicas.events.filter((event) => event.what === 'exited' && event.detail.startsWith('on its own')).length,
      leaderChanges: Math.max(0, holders.length - 1),
      claims: claimWindows.length,
      staleEpisodes: staleEpisodes.size,
      staleMaxMs,
      maxActLagMs,
      lostGrants,
    };
    if (violations.length > 0 || context.keepEvidence) evidence = await writeEvidence();
  } catch (error) {
    violations.push(`the run itself failed: ${error instanceof Error ? error.message : String(error)}`);
    evidence = await writeEvidence().catch(() => undefined);
  } finally {
    clearInterval(ticker);
    await replicas.stopAll();
    await proxy.close();
    await Promise.all(mirrors.map((mirror) => mirror.stop()));
    // Nothing finalizes the apps now: drop the finalizers so the namespaces can go. (They are
    // deleted after all seeds: deleting them now would keep the garbage collector busy while the
    // next seed needs it for its re-created apps' old target Secrets.)
    for (const app of (await http.json<{ items: AppObject[] }>({ method: 'GET', path: `${group}/namespaces/${namespace}/oauthapps` }).catch(() => ({ items: [] }))).items) {
      await http
        .json({ method: 'PATCH', path: `${group}/namespaces/${namespace}/oauthapps/${app.metadata.name}`, contentType: 'application/merge-patch+json', body: { metadata: { finalizers: null } } })
        .catch(() => undefined);
    }
  }

  const empty = Object.fromEntries(Object.keys(proxy.stats.faults).map((kind) => [kind, 0])) as Record<FaultKind, number>;
  const result: RunFigures = figures ?? {
    seed, apps: plan.appCount, faultMs: plan.faultMs, totalMs: 0, sends: 0, refreshes: 0, invalidClient: 0, clientChecks: 0, lostAnswers: 0, proxyRequests: 0, faults: empty, committedWritesLost: 0,
    changes: { rotate: 0, specEdit: 0, clientSecret: 0, delete: 0, recreate: 0 }, skippedChanges: 0, disruption: 'none', replicaExits: 0, leaderChanges: 0, claims: 0, staleEpisodes: 0, staleMaxMs: 0, maxActLagMs: 0, lostGrants: 0,
  };
  result.totalMs = Date.now() - started;
  return { figures: result, violations, plan, namespaces: [namespace, operatorNamespace], ...(evidence ? { evidence } : {}) };

  async function writeEvidence(): Promise<string> {
    const dir = join(context.evidenceDir, `seed-${seed}`);
    await mkdir(dir, { recursive: true });
    const replicaEvents = replicas.events.map((event) => `+${((event.at - started) / 1000).toFixed(3)}s replica ${event.what} ${event.replica} ${event.detail} ${event.identity ?? ''}`);
    const lines = [...timeline, ...replicaEvents].sort((a, b) => parseFloat(a.slice(1)) - parseFloat(b.slice(1)));
    await writeFile(join(dir, 'timeline.txt'), `${lines.join('\n')}\n`);
    await writeFile(join(dir, 'replicas.log'), replicas.logs());
    await writeFile(
      join(dir, 'token-requests.json'),
      JSON.stringify(
        exchangesOfRun().map((exchange) => ({
          ...exchange,
          arrivedAt: `+${((exchange.arrivedAt - started) / 1000).toFixed(3)}s`,
          answeredAt: `+${((exchange.answeredAt - started) / 1000).toFixed(3)}s`,
          app: slots.find((slot) => slot.instances.some((instance) => instance.grantId === exchange.grantId))?.name,
          presented: exchange.presented && fingerprint(exchange.presented),
          issuedRefreshToken: exchange.issuedRefreshToken && fingerprint(exchange.issuedRefreshToken),
          issuedAccessToken: exchange.issuedAccessToken && fingerprint(exchange.issuedAccessToken),
        })),
        null,
        1,
      ),
    );
    const faults = (schedule?.decisions ?? []).filter((decision) => decision.fault).map((decision) => `${decision.seq} ${decision.method} ${decision.path} ${decision.fault}`);
    await writeFile(join(dir, 'proxy.json'), JSON.stringify({ stats: proxy.stats, faults }, null, 1));
    return dir;
  }
}

/** Whether a state Secret write (its JSON body) carries a refresh claim in record.json. */
function writesClaim(body: string | undefined): boolean {
  try {
    const secret = JSON.parse(body ?? '') as { data?: Record<string, string> };
    const record = Buffer.from(secret.data?.['record.json'] ?? '', 'base64').toString('utf8');
    return (JSON.parse(record || '{}') as { claim?: unknown }).claim !== undefined;
  } catch {
    return false;
  }
}

/** The replicas' leader-election retry period (the operator's default) and client-go's jitter. */
const retryPeriodMs = 2_000;
const retryJitter = 1.2;

/**
 * When the faults' effects end: at calm, unless the Lease holder at calm never renewed after it
 * and another replica took over: then at that takeover. A standby counts the lease duration from
 * when it saw the holder's last renewal (never from the renewTime written by another node's
 * clock, as in client-go), and the faults may have kept it from reading the Lease until calm
 * (seed 800025: the last renewal at +9 s, first read by the standby at +14.7 s, taken over at
 * +29.7 s). So the takeover may come as late as one jittered retry period after calm (the first
 * read), plus the lease duration, plus one more retry period (the next attempt to take it); a
 * later one is reported as a violation, and the schedule then ends at that bound.
 */
export function faultScheduleEnd(calmAt: number, history: ReadonlyArray<{ at: number; holder: string; renewTime: number }>): { end: number; lateTakeover?: string } {
  const atCalm = [...history].reverse().find((entry) => entry.at <= calmAt);
  if (!atCalm?.holder) return { end: calmAt };
  const renewedLater = history.some((entry) => entry.at > calmAt && entry.holder === atCalm.holder && entry.renewTime > atCalm.renewTime);
  const takeover = history.find((entry) => entry.at > calmAt && entry.holder && entry.holder !== atCalm.holder);
  if (renewedLater || !takeover) return { end: calmAt };
  const latest = Math.max(calmAt + retryPeriodMs * retryJitter, atCalm.renewTime) + leaseDurationMs + retryPeriodMs * retryJitter;
  if (takeover.at <= latest) return { end: Math.max(calmAt, takeover.at) };
  return { end: latest, lateTakeover: `the next leader took over ${((takeover.at - latest) / 1000).toFixed(1)}s later than the election protocol allows after calm` };
}

/**
 * When some replica could act as leader: from the Lease first naming it until it exited or was
 * killed, or the Lease named another.
 */
export function leadingSpans(
  history: ReadonlyArray<{ at: number; holder: string }>,
  events: ReadonlyArray<{ at: number; what: string; identity?: string }>,
  end: number,
): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  history.forEach(({ at, holder }, index) => {
    if (!holder || history[index - 1]?.holder === holder) return;
    const replaced = history.slice(index + 1).find((entry) => entry.holder !== holder)?.at ?? end;
    const gone = events.find((event) => event.identity === holder && (event.what === 'exited' || event.what === 'killed') && event.at >= at)?.at ?? end;
    spans.push([at, Math.min(replaced, gone)]);
  });
  return spans;
}

/** How much of [from, to] the spans cover (they do not overlap: one Lease holder at a time). */
export function overlapMs(from: number, to: number, spans: ReadonlyArray<[number, number]>): number {
  return spans.reduce((sum, [start, stop]) => sum + Math.max(0, Math.min(to, stop) - Math.max(from, start)), 0);
}

/** Deletes namespaces runSeed left behind (their apps hold no finalizers any more). */
export async function deleteNamespaces(admin: AdminClient, names: readonly string[]): Promise<void> {
  for (const name of names) await admin.http.json({ method: 'DELETE', path: `/api/v1/namespaces/${name}` }).catch(() => undefined);
}

async function until(what: string, timeoutMs: number, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
