// Writes status only when it differs, and turns every condition transition into an Event.
import { conditionChanged, findCondition, setCondition, type ConditionInput } from '../api/conditions.ts';
import type { Condition, OAuthAppStatus } from '../api/oauthapp.ts';
import type { KubeClient, OwnKind } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { ObjectCache } from '../kube/informer.ts';
import type { KubeObject } from '../kube/objects.ts';
import { reasons, type DerivedStatus } from './status.ts';

type AppObject = KubeObject & { status?: OAuthAppStatus | undefined };

/** Writes the status of one kind, OAuthApps or OAuthInstallations, and keeps that kind's cache current. */
export class StatusWriter {
  private readonly kube: Pick<KubeClient, 'patchStatus'>;
  private readonly apps: Pick<ObjectCache<KubeObject>, 'observeWrite'>;
  private readonly events: Pick<EventRecorder, 'record'>;
  private readonly ownKind: OwnKind;

  constructor(kube: Pick<KubeClient, 'patchStatus'>, apps: Pick<ObjectCache<KubeObject>, 'observeWrite'>, events: Pick<EventRecorder, 'record'>, ownKind: OwnKind = 'OAuthApp') {
    this.kube = kube;
    this.apps = apps;
    this.events = events;
    this.ownKind = ownKind;
  }

  async write(app: AppObject, derived: DerivedStatus, now: number): Promise<void> {
    const generation = app.metadata.generation ?? 0;
    const previous = app.status?.conditions ?? [];
    let conditions: Condition[] = previous;
    for (const input of derived.conditions) conditions = setCondition(conditions, input, generation, new Date(now));
    const next: OAuthAppStatus & DerivedStatus['fields'] = { observedGeneration: generation, conditions, ...derived.fields };
    if (sameStatus(app.status, next)) return;

    // A merge patch: fields the derived status no longer has are cleared with null.
    const cleared = Object.fromEntries(Object.keys(app.status ?? {}).filter((key) => !(key in next)).map((key) => [key, null]));
    const { namespace = '', name } = app.metadata;
    const written = await this.kube.patchStatus(this.ownKind, namespace, name, { ...cleared, ...next });
    this.apps.observeWrite(written);

    for (const input of derived.conditions) {
      if (worthAnEvent(findCondition(previous, input.type), input)) {
        await this.events.record(app, {
          type: input.status === 'False' ? 'Warning' : 'Normal',
          reason: input.reason,
          message: `${input.type}=${input.status}: ${input.message}`,
          action: 'Reconcile',
        });
      }
    }
  }
}

/**
 * A change of an existing condition; and, for a new app, only a problem (at 10,000 apps an Event
 * for every "Pending" and "not verified yet" would be noise in etcd, not news).
 */
function worthAnEvent(before: Condition | undefined, after: ConditionInput): boolean {
  if (before) return conditionChanged(before, after);
  return after.status === 'False' && after.reason !== reasons.pending;
}

function sameStatus(before: OAuthAppStatus | undefined, after: OAuthAppStatus): boolean {
  if (!before) return false;
  const order = (conditions: Condition[] | undefined) => [...(conditions ?? [])].sort((a, b) => a.type.localeCompare(b.type));
  return JSON.stringify(canonical({ ...before, conditions: order(before.conditions) })) === JSON.stringify(canonical({ ...after, conditions: order(after.conditions) }));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, canonical(v)]));
  }
  return value;
}
