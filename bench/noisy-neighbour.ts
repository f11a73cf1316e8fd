// Noisy neighbour: do well-behaved tenants notice a hostile one? BENCH_APPS (default 1,000)
// well-behaved OAuthApps in namespace `tenants` on a healthy provider, measured twice in one run
// on one operator (deploy's flags: 8 workers, 8 token requests per provider, 10 s token timeout),
// in three phases: alone, with the hostile tenant, alone again (its apps deleted):
//   alone     — only the well-behaved apps (twice: before and after; the ratio is against their
//               mean, so a drift of the shared machine's load is not taken for the tenant's doing);
//   hostile   — plus BENCH_HOSTILE_APPS (default 50) apps in namespace `hostile` whose provider
//               answers every other token request after 9.9 s and never answers the rest (the
//               operator gives up after its 10 s timeout). Its tokens live 1 s, so each app wants
//               a refresh every --min-refresh-interval (30 s): a demand of ≈ 50 × 10 s every
//               30–40 s, above the provider's 8 slots, for as long as the phase lasts. The provider
//               keeps refresh tokens (no rotation), so an unanswered request is retried rather than
//               given up, once the app has seen one answer; an app whose very first request went
//               unanswered is given up (RefreshInterrupted) and its tenant plants a new refresh
//               token every 30 s. Phase 2 starts once the provider's 8 slots are full and have
//               turned over once; the refreshes during the tenant's arrival are reported apart.
// Each phase lasts BENCH_PHASE_SECONDS (default 120) and measures, for the well-behaved apps only:
//   - rotation propagation: a client-secret Secret update → the target Secret carries the value
//     (one sample at a time, cycling through the apps, as bench/rotation-propagation.ts);
//   - refresh lateness: when a scheduled refresh was answered (the state Secret's lastRefreshTime)
//     minus when it was scheduled (the refreshAt the state Secret held before), over every
//     scheduled refresh in the phase. Each token lives between BENCH_LIFETIME seconds (default
//     120) and three times that, drawn per response, so refreshes come at a steady rate (≈ 7 per
//     second at 1,000 apps) instead of in waves, and the well-behaved apps do not saturate their
//     own provider's slots. The phases start after a warm-up of BENCH_WARMUP_SECONDS (default:
//     BENCH_LIFETIME) after every app is Ready.
// The healthy provider takes any client secret of its client (a portal keeping old secrets valid),
// so the propagation samples do not turn refreshes into invalid_client failures. Both providers
// run in a process of their own (bench/noisy-neighbour-providers.ts), so serving the hostile
// tenant does not share an event loop with the measurements.
// Run: npm run bench:noisy-neighbour (goal: hostile / alone ≤ 1.5 for both p99s)
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Informer } from '../src/kube/informer.ts';
import { encodeData, type Secret } from '../src/kube/objects.ts';
import { createLogger } from '../src/log.ts';
import { decodeState, roleLabel, appAnnotation } from '../src/oauthapp/state.ts';
import {
  apiserverRequests,
  controlPlanePids,
  cpuSeconds,
  createOAuthApps,
  forEachLimited,
  ms,
  operatorArgs,
  operatorMetrics,
  requestDelta,
  sleep,
  startBenchCluster,
  startOperatorProcess,
  sumOf,
  summarize,
  waitFor,
  writeVerbs,
} from './harness.ts';
import type { HostileStats, ProvidersMessage, ProvidersRequest } from './noisy-neighbour-providers.ts';

const apps = Number(process.env.BENCH_APPS ?? 1000);
const hostileApps = Number(process.env.BENCH_HOSTILE_APPS ?? 50);
const phaseSeconds = Number(process.env.BENCH_PHASE_SECONDS ?? 120);
const lifetimeSeconds = Number(process.env.BENCH_LIFETIME ?? 120);
/** Before the first phase: the initial refreshes all came at once; their successors spread out. */
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? lifetimeSeconds);
const hostileDelayMs = Number(process.env.BENCH_HOSTILE_DELAY_MS ?? 9_900);
const maxPropagationSamples = Number(process.env.BENCH_PROPAGATION_SAMPLES ?? 1_000);
const tenants = 'tenants';
const hostile = 'hostile';
const operatorNamespace = 'oauthapp-system';
const redirectUri = 'http://127.0.0.1:8081/oauth/callback';
/** BENCH_OPERATOR_LOG=FILE: the operator logs at debug level into FILE (costs it some CPU). */
const operatorLog = process.env.BENCH_OPERATOR_LOG;
const log = (line: string) => process.stdout.write(`${line}\n`);
const silent = createLogger({ level: 'silent' });

const cluster = await startBenchCluster();
const { kube, http } = cluster;
const providers = await startProviders();
const { healthy: healthyClient, hostile: hostileClient } = providers;

const secret = (name: string, namespace: string, data: Record<string, string>): Secret => ({ metadata: { name, namespace }, type: 'Opaque', data: encodeData(data) });
const createApps = (namespace: string, names: readonly string[], client: { url: string; clientId: string; clientSecret: string }, issueRefreshToken: () => Promise<string>) =>
  createOAuthApps({ cluster, namespace, names, clientId: client.clientId, clientSecret: client.clientSecret, issueRefreshToken, tokenURL: `${client.url}/oauth/token`, spec: { redirectURI: redirectUri } });

try {
  for (const namespace of [tenants, hostile, operatorNamespace]) await cluster.kubectl(['create', 'namespace', namespace]);
  const names = Array.from({ length: apps }, (_, index) => `app-${index}`);
  const hostileNames = Array.from({ length: hostileApps }, (_, index) => `noisy-${index}`);
  log(`creating ${apps} well-behaved OAuthApps on kube-apiserver ${cluster.controlPlane.version}; tokens live ${lifetimeSeconds}-${3 * lifetimeSeconds} s`);
  const setupStarted = Date.now();
  await createApps(tenants, names, healthyClient, () => providers.seed('healthy'));
  log(`created in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`);

  // Targets: each propagation sample completes when its new value shows up.
  const waiting = new Map<string, () => void>();
  const targets = new Informer<Secret>({ name: 'targets', http, path: `/api/v1/namespaces/${tenants}/secrets`, labelSelector: `${roleLabel}=credentials`, logger: silent });
  targets.on((_event, object) => {
    const value = object.data?.client_secret ? Buffer.from(object.data.client_secret, 'base64').toString('utf8') : undefined;
    if (value) waiting.get(value)?.();
  });
  // State Secrets: a scheduled refresh shows as a new lastRefreshTime after the refreshAt seen before.
  const lateness: Array<{ app: string; answeredAt: number; lateMs: number }> = [];
  const seen = new Map<string, { refreshAt?: string | undefined; lastRefreshTime?: string | undefined }>();
  const states = new Informer<Secret>({ name: 'states', http, path: `/api/v1/namespaces/${operatorNamespace}/secrets`, labelSelector: `${roleLabel}=state`, logger: silent });
  states.on((event, object) => {
    // Only the well-behaved apps' states are decoded (the hostile tenant's are skipped unread).
    const app = object.metadata.annotations?.[appAnnotation];
    if (event === 'deleted' || !app?.startsWith(`${tenants}/`)) return;
    const { record } = decodeState(object);
    const before = seen.get(app);
    seen.set(app, { refreshAt: record.refreshAt, lastRefreshTime: record.lastRefreshTime });
    if (!before?.refreshAt || !record.lastRefreshTime || record.lastRefreshTime === before.lastRefreshTime) return;
    const answeredAt = Date.parse(record.lastRefreshTime);
    const lateMs = answeredAt - Date.parse(before.refreshAt);
    // Only refreshes the schedule asked for (a rotate request or a retry may come earlier).
    if (lateMs >= 0 && !record.failure) lateness.push({ app, answeredAt, lateMs });
  });
  targets.start();
  states.start();
  await Promise.all([targets.synced, states.synced]);

  const metricsPort = 20_000 + Math.floor(Math.random() * 20_000);
  const operatorStarted = Date.now();
  const args = operatorArgs(cluster, [tenants, hostile], operatorNamespace, metricsPort);
  const operator = startOperatorProcess(args, operatorLog ? { logFile: operatorLog } : {});
  let hostileDriver: { stop(): Promise<void> } | undefined;
  try {
    await waitFor('every well-behaved target Secret holding an access token', () => targets.list().filter((target) => target.data?.access_token).length >= apps, 900_000);
    log(`operator: all ${apps} target Secrets hold an access token ${((Date.now() - operatorStarted) / 1000).toFixed(1)} s after start`);

    // What a phase cost: apiserver writes (its own counters), and CPU seconds of the operator and
    // of kube-apiserver + etcd (the machine's 2 cores are shared by all of them and this benchmark).
    const pids = await controlPlanePids(cluster);
    const controlPlaneCpu = async () => (await cpuSeconds(pids.get('kube-apiserver') ?? 0)) + (await cpuSeconds(pids.get('etcd') ?? 0));
    const loadNow = async () => ({ at: Date.now(), requests: await apiserverRequests(cluster), operatorCpu: await cpuSeconds(operator.child.pid ?? 0), controlPlaneCpu: await controlPlaneCpu() });
    const loadSince = async (start: Awaited<ReturnType<typeof loadNow>>) => {
      const end = await loadNow();
      const seconds = (end.at - start.at) / 1000;
      const writes = [...requestDelta(start.requests, end.requests)].filter(([key]) => writeVerbs.has(key.split(' ')[0] ?? '')).reduce((total, [, count]) => total + count, 0);
      return { writesPerSecond: writes / seconds, operatorCores: (end.operatorCpu - start.operatorCpu) / seconds, controlPlaneCores: (end.controlPlaneCpu - start.controlPlaneCpu) / seconds };
    };

    let sample = 0;
    const measurePropagation = async (name: string) => {
      const value = `rotated-${sample++}-${randomBytes(4).toString('hex')}`;
      const shown = new Promise<void>((resolve) => waiting.set(value, resolve));
      const started = performance.now();
      await kube.replaceSecret(tenants, secret(`${name}-client`, tenants, { client_secret: value }));
      await shown;
      waiting.delete(value);
      return performance.now() - started;
    };
    const phase = async (label: string) => {
      const startedAt = Date.now();
      const endsAt = startedAt + phaseSeconds * 1000;
      const propagation: number[] = [];
      const before = await operatorMetrics(metricsPort);
      const load = await loadNow();
      // One sample at a time, cycling through the apps, spread over the whole phase.
      const pauseMs = Math.max(0, (phaseSeconds * 1000) / maxPropagationSamples - 20);
      for (let index = 0; Date.now() < endsAt; index += 1) {
        propagation.push(await measurePropagation(names[(sample + index) % names.length] as string));
        if (propagation.length >= maxPropagationSamples) await sleep(Math.max(0, endsAt - Date.now()));
        else await sleep(pauseMs);
      }
      const after = await operatorMetrics(metricsPort);
      const used = await loadSince(load);
      const inPhase = lateness.filter((each) => each.answeredAt >= startedAt && each.answeredAt < endsAt);
      const late = inPhase.map((each) => each.lateMs);
      const latest = inPhase.toSorted((a, b) => b.lateMs - a.lateMs).slice(0, 3);
      const count = (name: string, filter?: (labels: Record<string, string>) => boolean) => sumOf(after, name, filter) - sumOf(before, name, filter);
      return {
        label,
        propagation: summarize(propagation),
        lateness: summarize(late),
        refreshes: { success: count('oauthapp_token_refresh_total', (labels) => labels.result === 'success'), failed: count('oauthapp_token_refresh_total', (labels) => labels.result !== 'success') },
        used,
        latest: latest.map((each) => `${each.app} ${each.lateMs} ms at +${((each.answeredAt - startedAt) / 1000).toFixed(1)} s`).join(', '),
      };
    };

    log(`warm-up: ${warmupSeconds} s (the initial refreshes came all at once; their successors spread out)`);
    await sleep(warmupSeconds * 1000);
    log(`phase 1: alone, ${phaseSeconds} s`);
    const alone = await phase('alone');

    log(`phase 2: with the hostile tenant (${hostileApps} apps; provider answers after ${hostileDelayMs} ms or never), ${phaseSeconds} s`);
    const seedFor = () => providers.seed('hostile');
    const arrivedAt = Date.now();
    await createApps(hostile, hostileNames, hostileClient, seedFor);
    hostileDriver = driveHostileTenant(seedFor);
    // Its steady state: the provider's 8 slots full and turned over once (≥ 10 s after the tenant
    // arrived), so the arrival itself (150 objects created, 50 new apps' first writes) is reported
    // apart, not as the cost of a slow provider.
    await waitFor('the hostile provider holding 8 token requests after answering 8', async () => {
      const { requests, inFlight } = await providers.stats();
      return requests >= 16 && inFlight >= 8;
    }, 180_000, 100);
    const arrival = summarize(lateness.filter((each) => each.answeredAt >= arrivedAt && each.answeredAt < Date.now()).map((each) => each.lateMs));
    const arrivalSeconds = (Date.now() - arrivedAt) / 1000;
    const noisy = await phase('with hostile tenant');
    const hostileStats = await providers.stats();

    // The same again without the hostile tenant: the machine's load drifts (other work shares its
    // cores), and a drift would otherwise read as the hostile tenant's doing.
    await hostileDriver.stop();
    hostileDriver = undefined;
    await cluster.kubectl(['delete', 'oauthapps', '--all', '-n', hostile, '--wait=false']);
    await waitFor('the hostile apps gone and their requests ended', async () => (await providers.stats()).inFlight === 0 && (await http.json<{ items: unknown[] }>({ method: 'GET', path: `/apis/oauthapp.dev/v1alpha1/namespaces/${hostile}/oauthapps` })).items.length === 0, 120_000);
    log(`phase 3: alone again, ${phaseSeconds} s`);
    const again = await phase('alone again');

    const mean = (a: number, b: number) => (a + b) / 2;
    const baseline = {
      propagation: { p50: mean(alone.propagation.p50, again.propagation.p50), p99: mean(alone.propagation.p99, again.propagation.p99) },
      lateness: { p50: mean(alone.lateness.p50, again.lateness.p50), p99: mean(alone.lateness.p99, again.lateness.p99) },
    };
    const ratio = (a: number, b: number) => `${(b / a).toFixed(2)}x`;
    log('');
    log(`noisy neighbour, ${apps} well-behaved apps (+ ${hostileApps} hostile), ${phaseSeconds} s per phase, tokens of ${lifetimeSeconds}-${3 * lifetimeSeconds} s`);
    log('| phase | propagation samples | p50 | p99 | max | scheduled refreshes | lateness p50 | p99 | max | token requests ok / failed (all apps) | apiserver writes / s | CPU cores: operator, apiserver + etcd |');
    log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const result of [alone, noisy, again]) {
      const { propagation: p, lateness: l, used } = result;
      log(
        `| ${result.label} | ${p.n} | ${ms(p.p50)} | ${ms(p.p99)} | ${ms(p.max)} | ${l.n} | ${ms(l.p50)} | ${ms(l.p99)} | ${ms(l.max)} | ${result.refreshes.success} / ${result.refreshes.failed} | ${used.writesPerSecond.toFixed(1)} | ${used.operatorCores.toFixed(2)}, ${used.controlPlaneCores.toFixed(2)} |`,
      );
    }
    log(`| ratio hostile / alone (mean of both alone phases) | | ${ratio(baseline.propagation.p50, noisy.propagation.p50)} | ${ratio(baseline.propagation.p99, noisy.propagation.p99)} | | | ${ratio(baseline.lateness.p50, noisy.lateness.p50)} | ${ratio(baseline.lateness.p99, noisy.lateness.p99)} | | | | |`);
    for (const result of [alone, noisy, again]) log(`latest refreshes (${result.label}): ${result.latest}`);
    log('');
    log(`the hostile tenant's arrival (${arrivalSeconds.toFixed(1)} s from creating its apps to phase 2): ${arrival.n} scheduled refreshes, lateness p50 ${ms(arrival.p50)}, p99 ${ms(arrival.p99)}, max ${ms(arrival.max)}`);
    log(`hostile provider during phase 2: ${hostileStats.answered} requests answered after ${hostileDelayMs} ms, ${hostileStats.held} never answered, at most ${hostileStats.mostAtOnce} at once`);
    log(`goal: p99 ratios ≤ 1.50 — propagation ${ratio(baseline.propagation.p99, noisy.propagation.p99)}, refresh lateness ${ratio(baseline.lateness.p99, noisy.lateness.p99)}`);
  } finally {
    await hostileDriver?.stop();
    await operator.stop();
    await Promise.all([targets.stop(), states.stop()]);
  }
} finally {
  await providers.close();
  await cluster.stop();
}

/**
 * Every 30 s (the operator's --min-refresh-interval), a fresh refresh token for each hostile app the
 * operator gave up (its first request went unanswered: Authorized=False), so it tries again.
 */
function driveHostileTenant(seedFor: () => Promise<string>): { stop(): Promise<void> } {
  let running = true;
  type AppView = { metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } };
  const loop = (async () => {
    while (running) {
      const roundStarted = Date.now();
      const { items } = await http.json<{ items: AppView[] }>({ method: 'GET', path: `/apis/oauthapp.dev/v1alpha1/namespaces/${hostile}/oauthapps` });
      const givenUp = items.filter((app) => app.status?.conditions?.some((condition) => condition.type === 'Authorized' && condition.status === 'False'));
      await forEachLimited(givenUp, 4, async (app) => {
        await kube.replaceSecret(hostile, secret(`${app.metadata.name}-bootstrap`, hostile, { refresh_token: await seedFor() }));
      });
      while (running && Date.now() - roundStarted < 30_000) await sleep(500);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** bench/noisy-neighbour-providers.ts in its own process, asked over IPC. */
async function startProviders() {
  const child = fork(fileURLToPath(new URL('./noisy-neighbour-providers.ts', import.meta.url)), [JSON.stringify({ lifetimeSeconds, hostileDelayMs, redirectUri })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const answers = new Map<number, (value: unknown) => void>();
  let nextId = 0;
  const ready = new Promise<Extract<ProvidersMessage, { type: 'ready' }>>((resolve) => {
    child.on('message', (message: ProvidersMessage) => {
      if (message.type === 'ready') resolve(message);
      else answers.get(message.id)?.(message.value);
    });
  });
  const ask = <T>(request: DistributiveOmit<ProvidersRequest, 'id'>) =>
    new Promise<T>((resolve) => {
      const id = nextId++;
      answers.set(id, (value) => {
        answers.delete(id);
        resolve(value as T);
      });
      child.send({ ...request, id });
    });
  const { healthy, hostile } = await ready;
  return {
    healthy,
    hostile,
    seed: (provider: 'healthy' | 'hostile') => ask<string>({ op: 'seed', provider }),
    stats: () => ask<HostileStats>({ op: 'stats' }),
    close: () => ask<null>({ op: 'close' }),
  };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

