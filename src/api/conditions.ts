// metav1.Condition handling as apimachinery's meta.SetStatusCondition does it: the transition time
// moves only when the status flips.
import type { Condition, ConditionType } from './oauthapp.ts';

export type ConditionStatus = Condition['status'];

export interface ConditionInput {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function setCondition(existing: readonly Condition[], input: ConditionInput, observedGeneration: number, now: Date): Condition[] {
  const previous = existing.find((condition) => condition.type === input.type);
  const next: Condition = {
    ...input,
    observedGeneration,
    lastTransitionTime: previous && previous.status === input.status ? previous.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  return [...existing.filter((condition) => condition.type !== input.type), next];
}

export function findCondition(conditions: readonly Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

/** A change a person would care about: status or reason differs. */
export function conditionChanged(before: Condition | undefined, after: ConditionInput): boolean {
  return before?.status !== after.status || before.reason !== after.reason;
}
