// What one seed of the randomized chaos run does, drawn from the seed alone (mulberry32): how
// many apps, how long the faults last and how dense they are, whether and when a replica is
// stopped or killed, and the user's changes (rotate annotations, spec edits, client-secret
// rotations, deletes and re-creates) with their times. The apiserver proxy's fault schedule is
// seeded with the same number; which request draws which fault depends on the order requests
// arrive in, so a replay repeats the plan exactly and the faults closely.
import type { ChaosRates } from './apiserver-proxy.ts';
import { mulberry32 } from './prng.ts';

export type ChangeKind = 'rotate' | 'specEdit' | 'clientSecret' | 'delete' | 'recreate';

export interface PlannedAction {
  /** Milliseconds after the faults start. */
  atMs: number;
  kind: ChangeKind;
  /** Index of the app (0 … appCount-1). */
  app: number;
  /** specEdit: the new spec.renewBefore (null: remove it), or a label for the target Secret. */
  edit?: { renewBefore: string | null } | { label: string };
  /** clientSecret: the Secret is updated before the provider takes the new secret (else after), `gapMs` apart. */
  secretFirst?: boolean;
  gapMs?: number;
}

export interface Disruption {
  signal: 'SIGKILL' | 'SIGTERM';
  target: 'leader' | 'standby';
  /** Milliseconds after the faults start. */
  atMs: number;
  /** SIGKILL the leader the moment its next claim is seen (inside a send window), not at atMs itself. */
  atClaim: boolean;
}

export interface Plan {
  seed: number;
  appCount: number;
  /** How long the proxy's fault schedule runs. */
  faultMs: number;
  rates: ChaosRates;
  durations: { delayMs: number; stallWatchMs: number; refuseMs: number };
  /** spec.renewBefore of each app when created (undefined: the default, a third of the lifetime). */
  renewBefore: Array<string | undefined>;
  disruption: Disruption | undefined;
  actions: PlannedAction[];
}

const renewBeforeChoices = ['3s', '5s', '7s', undefined] as const;

/** Per-request fault rates at intensity 1 (a seed runs at 1, 2 or 3): about one request in six gets a fault. */
const baseRates: Required<ChaosRates> = {
  dropWriteResponse: 0.04,
  delayResponse: 0.04,
  reset: 0.015,
  stallWatches: 0.01,
  refuse: 0.005,
  status429: 0.02,
  status5xx: 0.03,
};

export function planRun(seed: number): Plan {
  // Not the proxy's sequence (seeded with `seed` itself): the plan must not shift the faults.
  const random = mulberry32((seed ^ 0x5bd1e995) >>> 0);
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  const pick = <T>(choices: readonly T[]): T => choices[Math.floor(random() * choices.length)] as T;

  const appCount = between(3, 5);
  const faultMs = between(18, 26) * 1000;
  const intensity = pick([1, 1, 2, 3]);
  const rates = Object.fromEntries(Object.entries(baseRates).map(([kind, rate]) => [kind, Number((rate * intensity * (0.5 + random())).toFixed(4))])) as Required<ChaosRates>;
  const durations = { delayMs: between(500, 3000), stallWatchMs: between(1000, 5000), refuseMs: between(300, 1500) };
  const renewBefore = Array.from({ length: appCount }, () => pick(renewBeforeChoices));

  // Half the seeds stop or kill a replica: SIGTERM (a rolling update), SIGKILL at a random moment,
  // or SIGKILL of the leader right as it claims a refresh (where a crash can cost a grant).
  const roll = random();
  let disruption: Disruption | undefined;
  if (roll >= 0.5) {
    const signal = roll < 0.7 ? 'SIGTERM' : 'SIGKILL';
    const atClaim = signal === 'SIGKILL' && random() < 0.5;
    disruption = { signal, target: atClaim || random() < 0.7 ? 'leader' : 'standby', atMs: between(1500, Math.max(2000, Math.floor(faultMs / 3))), atClaim };
  }

  // The driver's model of the apps: which exist, and each one's renewBefore.
  const live = Array.from({ length: appCount }, () => true);
  const deletedOnce = Array.from({ length: appCount }, () => false);
  const currentRenewBefore = [...renewBefore];
  const actions: PlannedAction[] = [];
  let labels = 0;
  for (let atMs = between(300, 1500); atMs < faultMs - 800; atMs += between(1000, 3500)) {
    const deleted = live.flatMap((isLive, index) => (isLive ? [] : [index]));
    if (deleted.length > 0 && random() < 0.5) {
      const app = pick(deleted);
      live[app] = true;
      currentRenewBefore[app] = renewBefore[app];
      actions.push({ atMs, kind: 'recreate', app });
      continue;
    }
    const candidates = live.flatMap((isLive, index) => (isLive ? [index] : []));
    if (candidates.length === 0) continue;
    const app = pick(candidates);
    const draw = random();
    if (draw < 0.35) {
      actions.push({ atMs, kind: 'rotate', app });
    } else if (draw < 0.6) {
      if (random() < 0.7) {
        const next = pick(renewBeforeChoices.filter((choice) => choice !== currentRenewBefore[app]));
        currentRenewBefore[app] = next;
        actions.push({ atMs, kind: 'specEdit', app, edit: { renewBefore: next ?? null } });
      } else {
        labels += 1;
        actions.push({ atMs, kind: 'specEdit', app, edit: { label: `edit-${labels}` } });
      }
    } else if (draw < 0.85 || deletedOnce[app] || candidates.length <= 2) {
      actions.push({ atMs, kind: 'clientSecret', app, secretFirst: random() < 0.4, gapMs: between(200, 2000) });
    } else {
      live[app] = false;
      deletedOnce[app] = true;
      actions.push({ atMs, kind: 'delete', app });
    }
  }
  return { seed, appCount, faultMs, rates, durations, renewBefore, disruption, actions };
}

export function describePlan(plan: Plan): string {
  const rates = Object.entries(plan.rates)
    .map(([kind, rate]) => `${kind} ${rate}`)
    .join(', ');
  const disruption = plan.disruption
    ? `${plan.disruption.signal} the ${plan.disruption.target} ${plan.disruption.atClaim ? 'at its first claim after' : 'at'} +${(plan.disruption.atMs / 1000).toFixed(1)}s`
    : 'no kill';
  const actions = plan.actions.map((action) => `+${(action.atMs / 1000).toFixed(1)}s ${action.kind} app-${action.app}${detail(action)}`).join('; ');
  return `${plan.appCount} apps, faults for ${plan.faultMs / 1000}s (${rates}; delay ≤${plan.durations.delayMs}ms, stall ≤${plan.durations.stallWatchMs}ms, refuse ≤${plan.durations.refuseMs}ms), ${disruption}; renewBefore ${plan.renewBefore.map((value) => value ?? 'default').join('/')}; changes: ${actions}`;
}

function detail(action: PlannedAction): string {
  if (action.kind === 'specEdit' && action.edit) return 'label' in action.edit ? ` (label ${action.edit.label})` : ` (renewBefore ${action.edit.renewBefore ?? 'removed'})`;
  if (action.kind === 'clientSecret') return action.secretFirst ? ` (Secret first, provider ${action.gapMs}ms later)` : ` (provider first, Secret ${action.gapMs}ms later)`;
  return '';
}
