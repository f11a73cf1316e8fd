// Promises of README that had no end-to-end test (issue 10, "Test-suite honesty"): spec.renewBefore
// is honoured; an access token that expires while the provider is down is reported as
// Ready=False TokenExpired and recovers; a restart refreshes nothing early; StatefulSets and
// DaemonSets in rolloutRestartTargets are restarted once per client-secret change and never for a
// refresh. The real operator runs in-process against the shared control plane, with sandbox
// providers. (The per-provider concurrency limit: end-to-end-concurrency.test.ts.)
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Secret } from '../../src/kube/objects.ts';
import { jitterShare } from '../../src/oauthapp/schedule.ts';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { appList } from '../support/app-list.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { apply, condition, opaqueSecret } from '../support/resources.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('guarantees');
const apps = appList(testbed);
const figure = (line: string) => process.stdout.write(`[guarantees] ${line}\n`);
const providers: TestProvider[] = [];
const newProvider = async (options: Parameters<typeof testbed.newProvider>[0] = {}) => {
  const provider = await testbed.newProvider(options);
  providers.push(provider);
  return provider;
};

const target = async (name: string) => (await testbed.admin.secretData(testbed.namespace, `${name}-credentials`)) ?? {};
const secretObject = (namespace: string, name: string) => testbed.admin.kube.getSecret(namespace, name);
const okRefreshes = (provider: TestProvider) => provider.sandbox.stats().presentedRefreshTokens.filter((presentation) => presentation.outcome === 'ok');
const eventReasons = async (name: string) =>
  (await kubectlOK(['get', 'events.events.k8s.io', '-n', testbed.namespace, '--field-selector', `regarding.name=${name}`, '-o', 'jsonpath={range .items[*]}{.type}/{.reason}{"\\n"}{end}']))
    .split('\n')
    .filter(Boolean);
const deleteApps = (names: readonly string[]) => kubectlOK(['delete', 'oauthapp', ...names, '-n', testbed.namespace, '--wait=false']);

describe('spec.renewBefore', () => {
  const lifetimeSeconds = 60;
  const renewBeforeSeconds = 45;
  /** The default margin: a third of the lifetime. */
  const defaultRenewBeforeSeconds = lifetimeSeconds / 3;
  /** Refreshes are moved earlier by up to this share of the time between issue and the renewal point. */
  const jitterMs = (renewBefore: number) => jitterShare * (lifetimeSeconds - renewBefore) * 1000;
  /** How late a refresh may come on a loaded machine; far below the gap between the two margins. */
  const lateMs = 10_000;

  interface Cycle {
    /** When the provider answered this refresh (its clock is the operator's: one process). */
    answeredAt: number;
    /** status right after this refresh was stored (RFC 3339 to the second, rounded down). */
    expiresAt: number;
    nextRefreshTime: number;
    /** When the provider answered the next refresh. */
    nextAnsweredAt: number;
  }

  /** Follows `count` successful refreshes of `name` at its own provider, reading status after each. */
  async function followRefreshes(name: string, provider: TestProvider, count: number): Promise<Cycle[]> {
    const answered: number[] = [];
    const seen: Array<Omit<Cycle, 'nextAnsweredAt'>> = [];
    for (let index = 0; index < count; index += 1) {
      const answeredAt = await eventually(`${name}: refresh ${index + 1} at the provider`, () => okRefreshes(provider)[index]?.at, (lifetimeSeconds + 30) * 1000);
      answered.push(answeredAt);
      if (index === count - 1) break;
      const [app] = await apps.allWith([name], (current) => current.status?.lastRefreshTime !== undefined && Date.parse(current.status.lastRefreshTime) >= Math.floor(answeredAt / 1000) * 1000, `status after refresh ${index + 1}`);
      const status = app?.status;
      seen.push({ answeredAt, expiresAt: Date.parse(status?.accessTokenExpiresAt ?? ''), nextRefreshTime: Date.parse(status?.nextRefreshTime ?? '') });
    }
    return seen.map((cycle, index) => ({ ...cycle, nextAnsweredAt: answered[index + 1] ?? NaN }));
  }

  const describeCycles = (cycles: readonly Cycle[]) =>
    cycles
      .map((cycle) => `issued→next ${cycle.nextAnsweredAt - cycle.answeredAt} ms, expires_at−nextRefreshTime ${cycle.expiresAt - cycle.nextRefreshTime} ms, next request ${cycle.nextAnsweredAt - cycle.nextRefreshTime} ms after nextRefreshTime, ${cycle.expiresAt - cycle.nextAnsweredAt} ms before expires_at`)
      .join('; ');

  it('refreshes at expires_at − renewBefore (within the jitter window before it), not at the default third of the lifetime', async () => {
    const withMargin = await newProvider({ expiresIn: lifetimeSeconds });
    const byDefault = await newProvider({ expiresIn: lifetimeSeconds });
    await testbed.applyApp('renew-before', withMargin, { spec: { renewBefore: `${renewBeforeSeconds}s` } });
    await testbed.applyApp('default-margin', byDefault);

    const [cycles, control] = await Promise.all([followRefreshes('renew-before', withMargin, 3), followRefreshes('default-margin', byDefault, 2)]);
    figure(`renewBefore ${renewBeforeSeconds}s of ${lifetimeSeconds}s tokens: ${describeCycles(cycles)}`);
    figure(`no renewBefore (control): ${describeCycles(control)}`);
    await deleteApps(['renew-before', 'default-margin']);

    const renewBeforeMs = renewBeforeSeconds * 1000;
    for (const cycle of cycles) {
      // Planned: expires_at − renewBefore, moved earlier by at most the jitter window (status
      // times are rounded down to the second, hence the 1 s either way).
      expect(cycle.expiresAt - cycle.nextRefreshTime).toBeGreaterThanOrEqual(renewBeforeMs - 1000);
      expect(cycle.expiresAt - cycle.nextRefreshTime).toBeLessThanOrEqual(renewBeforeMs + jitterMs(renewBeforeSeconds) + 1000);
      // Done then: not before the planned time, and not much after it.
      expect(cycle.nextAnsweredAt).toBeGreaterThanOrEqual(cycle.nextRefreshTime);
      expect(cycle.nextAnsweredAt - cycle.nextRefreshTime).toBeLessThanOrEqual(lateMs);
      // As the provider saw it: lifetime − renewBefore after the previous token was issued.
      const sinceIssue = cycle.nextAnsweredAt - cycle.answeredAt;
      expect(sinceIssue).toBeGreaterThanOrEqual((lifetimeSeconds - renewBeforeSeconds) * 1000 - jitterMs(renewBeforeSeconds));
      expect(sinceIssue).toBeLessThanOrEqual((lifetimeSeconds - renewBeforeSeconds) * 1000 + lateMs);
    }
    // The control shows what the bounds above rule out: without renewBefore the refresh comes a
    // third of the lifetime before expiry, far later than the latest time allowed above.
    for (const cycle of control) {
      const sinceIssue = cycle.nextAnsweredAt - cycle.answeredAt;
      expect(sinceIssue).toBeGreaterThanOrEqual((lifetimeSeconds - defaultRenewBeforeSeconds) * 1000 - jitterMs(defaultRenewBeforeSeconds));
      expect(sinceIssue).toBeGreaterThan((lifetimeSeconds - renewBeforeSeconds) * 1000 + lateMs);
    }
  }, 180_000);
});

describe('an access token that expires while the provider is down', () => {
  it('is Ready=False TokenExpired with an Event, the target Secret keeps the last token, and the app recovers when the provider is back', async () => {
    // A provider that keeps refresh tokens, so a 503 is retried (one that rotates them would make
    // the token possibly consumed: RefreshInterrupted, a different promise).
    const provider = await newProvider({ expiresIn: 9, rotateRefreshTokens: false });
    await testbed.readyApp('outage', provider);
    provider.sandbox.faults = { status5xx: { count: 1_000_000, status: 503 } };
    const failed = () => provider.sandbox.stats().presentedRefreshTokens.filter((presentation) => presentation.outcome === 'status5xx');
    await eventually('a refresh refused with 503', () => (failed().length > 0 ? true : undefined), 30_000);
    // Every refresh from here fails, so this is the last token the operator got.
    const last = await target('outage');

    const expired = await testbed.appWith('outage', (app) => condition(app, 'Ready')?.reason === 'TokenExpired', 'Ready=False TokenExpired', 60_000);
    const observedAt = Date.now();
    const whileDown = await target('outage');
    const reasons = await eventReasons('outage');
    const attempts = failed().map((presentation) => presentation.at - Date.parse(last.expires_at ?? ''));
    figure(`outage: 503 answers at ${attempts.join(', ')} ms from expires_at; TokenExpired seen ${observedAt - Date.parse(last.expires_at ?? '')} ms after it; Events ${reasons.join(' ')}`);

    // The scenario: the provider was asked again and again and refused, and the token expired.
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(Date.parse(last.expires_at ?? '')).toBeLessThanOrEqual(observedAt);
    expect(condition(expired, 'Ready')).toMatchObject({ status: 'False', reason: 'TokenExpired' });
    expect(condition(expired, 'Ready')?.message).toContain(`expired at ${last.expires_at}`);
    expect(condition(expired, 'Authorized')?.status).toBe('True');
    expect(reasons).toContain('Warning/TokenExpired');
    expect(whileDown.access_token).toBe(last.access_token);
    expect(whileDown.expires_at).toBe(last.expires_at);
    testbed.canaries.push(last.access_token ?? '');

    provider.sandbox.faults = {};
    const recovered = await testbed.appWith('outage', (app) => condition(app, 'Ready')?.reason === 'TokenValid', 'Ready=True again', 120_000);
    const after = await target('outage');
    testbed.canaries.push(after.access_token ?? '');
    figure(`outage: recovered ${Date.now() - observedAt} ms after TokenExpired was seen; Events ${(await eventReasons('outage')).join(' ')}`);
    await deleteApps(['outage']);

    expect(condition(recovered, 'Ready')?.status).toBe('True');
    expect(after.access_token).not.toBe(last.access_token);
    expect(Date.parse(after.expires_at ?? '')).toBeGreaterThan(observedAt);
    expect(await provider.whoAmI(after.access_token ?? '')).toBe(200);
    expect((await eventReasons('outage')).filter((reason) => reason === 'Normal/TokenValid').length).toBeGreaterThan(reasons.filter((reason) => reason === 'Normal/TokenValid').length);
  }, 240_000);
});

describe('an operator restart', () => {
  it('refreshes nothing early: no token request, the target Secrets and the rollout target unchanged', async () => {
    const provider = await newProvider(); // 1-hour tokens
    const names = ['steady-1', 'steady-2', 'steady-3'];
    await kubectlOK(['create', 'deployment', 'steady-worker', '-n', testbed.namespace, '--image=registry.invalid/worker:1']);
    await testbed.readyApp('steady-1', provider, { spec: { rolloutRestartTargets: [{ kind: 'Deployment', name: 'steady-worker' }] } });
    await testbed.readyApp('steady-2', provider);
    await testbed.readyApp('steady-3', provider, { spec: { renewBefore: '10m' } });
    const uids = new Map((await apps.allWith(names, (app) => Boolean(app.status?.nextRefreshTime), 'a planned refresh')).map((app) => [app.metadata.name, app.metadata.uid]));

    const snapshot = async () => {
      const views = await apps.allWith(names, () => true, 'listed');
      const deployment = await testbed.admin.http.json<{ metadata: { generation: number }; spec: { template: { metadata: { annotations?: Record<string, string> } } } }>({
        method: 'GET',
        path: `/apis/apps/v1/namespaces/${testbed.namespace}/deployments/steady-worker`,
      });
      const version = (secret: Secret | undefined) => secret?.metadata.resourceVersion;
      return {
        requests: provider.sandbox.stats().tokenRequests,
        targets: await Promise.all(names.map(async (name) => version(await secretObject(testbed.namespace, `${name}-credentials`)))),
        states: await Promise.all(names.map(async (name) => version(await secretObject(testbed.operatorNamespace, stateSecretName(uids.get(name) ?? ''))))),
        nextRefreshTimes: views.map((app) => app.status?.nextRefreshTime),
        deployment: { generation: deployment.metadata.generation, restartedAt: deployment.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt'] },
        restartEvents: (await eventReasons('steady-1')).filter((reason) => reason.endsWith('/RolloutRestarted')).length,
      };
    };
    const before = await snapshot();

    await testbed.restartOperator();
    const restartedAt = Date.now();
    // The new operator has looked at every app: each reconciled and requeued for its stored time.
    const planned = await eventually('the restarted operator reconciled every app', () => {
      const lines = testbed.operator
        .logs()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { msg?: string; key?: string; requeueAfterMs?: number; reason?: string; time?: string });
      const requeued = names.map((name) => lines.find((line) => line.msg === 'reconciled, requeued' && line.key === `${testbed.namespace}/${name}`));
      return requeued.every(Boolean) ? requeued : undefined;
    });
    await sleep(5_000);
    const after = await snapshot();
    figure(`restart: requeued for ${planned.map((line) => `${line?.reason} in ${Math.round((line?.requeueAfterMs ?? 0) / 60_000)} min`).join(', ')}; looked ${Math.max(...planned.map((line) => Date.parse(line?.time ?? '') - restartedAt))} ms after the restart; token requests ${before.requests} → ${after.requests}; state Secrets ${after.states.every((version, index) => version === before.states[index]) ? 'unchanged' : 'rewritten'}`);
    await deleteApps(names);

    // The scenario: the new operator planned each app's next refresh for its stored time, tens of minutes away.
    for (const [index, line] of planned.entries()) {
      expect(['scheduled', 'scheduled refresh']).toContain(line?.reason);
      // status.nextRefreshTime is rounded down to the second.
      const plannedFor = Date.parse(line?.time ?? '') + (line?.requeueAfterMs ?? 0);
      expect(plannedFor - Date.parse(before.nextRefreshTimes[index] ?? '')).toBeGreaterThanOrEqual(-1_000);
      expect(plannedFor - Date.parse(before.nextRefreshTimes[index] ?? '')).toBeLessThanOrEqual(2_000);
      expect(line?.requeueAfterMs).toBeGreaterThan(10 * 60_000);
    }
    expect(after.requests).toBe(before.requests);
    expect(after.targets).toEqual(before.targets);
    expect(after.nextRefreshTimes).toEqual(before.nextRefreshTimes);
    expect(after.deployment).toEqual(before.deployment);
    expect(after.restartEvents).toBe(before.restartEvents);
  }, 180_000);
});

describe('rolloutRestartTargets with a StatefulSet and a DaemonSet', () => {
  interface Workload {
    metadata: { generation: number };
    spec: { template: { metadata: { annotations?: Record<string, string> } } };
  }
  const workloads = [
    { kind: 'StatefulSet', name: 'db', resource: 'statefulsets' },
    { kind: 'DaemonSet', name: 'agent', resource: 'daemonsets' },
  ] as const;
  const manifest = ({ kind, name }: (typeof workloads)[number]) => ({
    apiVersion: 'apps/v1',
    kind,
    metadata: { name },
    spec: {
      ...(kind === 'StatefulSet' ? { replicas: 0, serviceName: name } : {}),
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: `registry.invalid/${name}:1` }] } },
    },
  });
  const observe = () =>
    Promise.all(
      workloads.map(async ({ name, resource }) => {
        const workload = await testbed.admin.http.json<Workload>({ method: 'GET', path: `/apis/apps/v1/namespaces/${testbed.namespace}/${resource}/${name}` });
        return { generation: workload.metadata.generation, restartedAt: workload.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt'] };
      }),
    );

  it('restarts both once for a client-secret change, and neither for a refresh', async () => {
    const provider = await newProvider();
    await apply(testbed.namespace, { apiVersion: 'v1', kind: 'List', items: workloads.map(manifest) });
    await testbed.readyApp('stateful', provider, { spec: { rolloutRestartTargets: workloads.map(({ kind, name }) => ({ kind, name })) } });
    const initial = await observe();
    expect(initial.map((workload) => workload.restartedAt)).toEqual([undefined, undefined]);

    const secret = provider.sandbox.rotateClientSecret(provider.clientId);
    testbed.canaries.push(secret);
    await apply(testbed.namespace, opaqueSecret('stateful-client', { client_secret: secret }));
    const restarted = await eventually('both restarted', async () => {
      const current = await observe();
      return current.every((workload) => workload.restartedAt !== undefined) ? current : undefined;
    });
    await sleep(3_000);
    const settled = await observe();
    const restartEvents = async () => (await eventReasons('stateful')).filter((reason) => reason.endsWith('/RolloutRestarted'));
    figure(`StatefulSet/DaemonSet: generations ${initial.map((w) => w.generation).join('/')} → ${settled.map((w) => w.generation).join('/')}, restartedAt ${settled.map((w) => w.restartedAt).join(' / ')}`);

    expect(restarted[0]?.restartedAt).toBe(restarted[1]?.restartedAt);
    expect(settled).toEqual(restarted);
    expect(settled.map((workload) => workload.generation)).toEqual(initial.map((workload) => workload.generation + 1));
    expect(await restartEvents()).toEqual(['Normal/RolloutRestarted']);
    expect(await eventReasons('stateful')).not.toContain('Warning/RolloutRestartTargetNotFound');

    // A refresh (on demand) changes the tokens and restarts nothing.
    const tokenBefore = (await target('stateful')).access_token;
    await kubectlOK(['annotate', 'oauthapp', 'stateful', '-n', testbed.namespace, 'oauthapp.dev/rotate=after-secret-change', '--overwrite']);
    await testbed.appWith('stateful', (app) => app.status?.lastRotateRequest === 'after-secret-change', 'the rotate request handled');
    const tokenAfter = (await target('stateful')).access_token;
    await sleep(3_000);
    testbed.canaries.push(tokenBefore ?? '', tokenAfter ?? '');

    expect(tokenAfter).not.toBe(tokenBefore);
    expect(await observe()).toEqual(settled);
    expect(await restartEvents()).toEqual(['Normal/RolloutRestarted']);
  }, 120_000);
});

describe('all of the above', () => {
  it('leaked no client secret or token into logs, Events or status', async () => {
    const refreshTokens = providers.flatMap((provider) => provider.sandbox.stats().presentedRefreshTokens.map((presentation) => presentation.value));
    await expectNoSecretValuesLeaked([...testbed.canaries, ...refreshTokens], { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
