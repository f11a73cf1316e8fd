// Restarting the workloads in spec.rolloutRestartTargets once per actual change of the client
// secret: never for a token refresh, an operator restart or a re-sync, and never in a loop.
import type { GrantOwner } from './grant-owner.ts';
import type { KubeClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { StateStore, StoredState } from './state-store.ts';
import { fingerprint, type AppIdentity, type Bookkeeping } from './state.ts';

export type RolloutPlan =
  | { action: 'none' }
  /** Only bookkeeping changes (first sight of the secret, or a new change to roll out). */
  | { action: 'record'; record: Bookkeeping }
  | { action: 'restart'; restartedAt: string; done: Bookkeeping };

/**
 * A restartedAt for a new restart: kubectl's format (RFC 3339, whole seconds), but strictly after
 * every value we may already have written, since a value equal to the one on the pod template
 * changes nothing and restarts nothing (two secret changes within one second).
 */
export function nextRestartedAt(now: number, previous: readonly (string | undefined)[]): string {
  const second = (ms: number) => Math.floor(ms / 1000) * 1000;
  let at = second(now);
  for (const value of previous) {
    const parsed = value === undefined ? NaN : Date.parse(value);
    if (!Number.isNaN(parsed)) at = Math.max(at, second(parsed) + 1000);
  }
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Pure: what to do about rollouts for the client secret now in the source Secret. */
export function planRollout(record: Bookkeeping, clientSecretFingerprint: string, now: number): RolloutPlan {
  const { pendingRollout: pending, rolledOutClientSecretFingerprint: rolledOut } = record;
  if (pending?.clientSecretFingerprint === clientSecretFingerprint) {
    const { pendingRollout: _done, ...rest } = record;
    return {
      action: 'restart',
      restartedAt: pending.restartedAt,
      done: { ...rest, rolledOutClientSecretFingerprint: clientSecretFingerprint, rolledOutRestartedAt: pending.restartedAt },
    };
  }
  // The workloads started with whatever secret was there before the operator looked: no change seen.
  if (rolledOut === undefined && pending === undefined) {
    return { action: 'record', record: { ...record, rolledOutClientSecretFingerprint: clientSecretFingerprint } };
  }
  if (rolledOut === clientSecretFingerprint && pending === undefined) return { action: 'none' };
  // Recorded before any workload is touched, so a crash repeats this restart instead of adding one.
  // A pending restart for an older secret may be half applied: the new value must differ from it too.
  const restartedAt = nextRestartedAt(now, [record.rolledOutRestartedAt, pending?.restartedAt]);
  return { action: 'record', record: { ...record, pendingRollout: { clientSecretFingerprint, restartedAt } } };
}

export interface RolloutDependencies {
  states: StateStore;
  kube: Pick<KubeClient, 'restartWorkload'>;
  events: Pick<EventRecorder, 'record'>;
  now: () => number;
}

/** Applies planRollout: bookkeeping first, then the restarts, then "done". */
export class Rollouts {
  private readonly deps: RolloutDependencies;

  constructor(dependencies: RolloutDependencies) {
    this.deps = dependencies;
  }

  async reconcile(app: GrantOwner, identity: AppIdentity, stored: StoredState, clientSecret: string): Promise<StoredState> {
    const targets = app.spec.rolloutRestartTargets ?? [];
    if (targets.length === 0) return stored;
    const { states, kube, events, now } = this.deps;
    let plan = planRollout(stored.state.record, fingerprint(clientSecret), now());
    if (plan.action === 'record') {
      stored = await states.save(identity, { ...stored.state, record: plan.record }, stored.resourceVersion);
      plan = planRollout(stored.state.record, fingerprint(clientSecret), now());
    }
    if (plan.action !== 'restart') return stored;

    const missing: string[] = [];
    for (const target of targets) {
      if (!(await kube.restartWorkload(identity.namespace, target.kind, target.name, plan.restartedAt))) missing.push(`${target.kind} ${target.name}`);
    }
    const restarted = targets.length - missing.length;
    if (restarted > 0) {
      await events.record(app, { type: 'Normal', reason: 'RolloutRestarted', message: `the client secret changed: restarted ${restarted} workload(s)`, action: 'RolloutRestart' });
    }
    if (missing.length > 0) {
      // Not a failure of the app: the Secret is current; only these workloads could not be told.
      await events.record(app, { type: 'Warning', reason: 'RolloutRestartTargetNotFound', message: `not found, not restarted: ${missing.join(', ')}`, action: 'RolloutRestart' });
    }
    return states.save(identity, { ...stored.state, record: plan.done }, stored.resourceVersion);
  }
}
