// Leader election on a real coordination.k8s.io/v1 Lease: the apiserver's optimistic concurrency
// decides between candidates. Short durations (lease 2 s, renew deadline 1.5 s, retry 300 ms) keep
// it quick; a sampler polls every candidate's isLeader() every 50 ms and fails the test if two ever
// lead at once.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { loadKubeConfigFile } from '../../src/kube/kubeconfig.ts';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeAPIError } from '../../src/kube/errors.ts';
import { KubeHTTP, type KubeRequest } from '../../src/kube/http.ts';
import {
  createLeaderElector,
  leasePath,
  microTime,
  type Lease,
  type LeaderElector,
  type LeaseHTTP,
  type StoppedLeadingReason,
} from '../../src/kube/leader-election.ts';
import { requiredEnvironment } from '../support/environment.ts';
import { eventually } from '../support/eventually.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';

const leaseDurationMs = 2_000;
const renewDeadlineMs = 1_500;
const retryPeriodMs = 300;
/** Timers on a busy machine fire late; this much lateness is tolerated in timing assertions. */
const slackMs = 400;

let http: KubeHTTP;
let namespace: string;

beforeAll(async () => {
  const kubeConfig = loadKubeConfigFile(requiredEnvironment('kubeconfig'));
  http = await KubeHTTP.fromKubeConfig(kubeConfig);
  namespace = await createTestNamespace('leader-election');
});

afterAll(async () => {
  await deleteTestNamespace(namespace);
  await http.close();
});

/**
 * The real apiserver, until `failing` is set: then every call fails as a lost network would. With
 * `losingAnswers`, every call reaches the apiserver and its answer is lost (a reset stream).
 */
class SwitchableHTTP implements LeaseHTTP {
  failing = false;
  losingAnswers = false;
  private readonly inner: LeaseHTTP;

  constructor(inner: LeaseHTTP) {
    this.inner = inner;
  }

  async json<T>(request: KubeRequest): Promise<T> {
    const lost = () => new KubeAPIError(request.method, request.path, 0, 'NetworkError', 'simulated network failure');
    if (this.failing) throw lost();
    const answer = await this.inner.json<T>(request);
    if (this.losingAnswers) throw lost();
    return answer;
  }
}

interface Candidate {
  identity: string;
  elector: LeaderElector;
  http: SwitchableHTTP;
  started: number;
  /** Date.now() at the last onStartedLeading. */
  startedAt: number;
  stopped: StoppedLeadingReason[];
  signal: AbortSignal | undefined;
  /** run()'s promise, settled when the candidate is done. */
  done: Promise<void>;
}

let candidates: Candidate[] = [];
let sampler: ReturnType<typeof setInterval> | undefined;
const overlaps: string[] = [];

function startCandidate(identity: string, leaseName: string, work?: (signal: AbortSignal) => Promise<void>): Candidate {
  const candidateHTTP = new SwitchableHTTP(http);
  const elector = createLeaderElector({ http: candidateHTTP, namespace, name: leaseName, identity, leaseDurationMs, renewDeadlineMs, retryPeriodMs });
  const candidate: Candidate = { identity, elector, http: candidateHTTP, started: 0, startedAt: 0, stopped: [], signal: undefined, done: Promise.resolve() };
  candidate.done = elector.run({
    onStartedLeading: (signal) => {
      candidate.started += 1;
      candidate.startedAt = Date.now();
      candidate.signal = signal;
      return work?.(signal);
    },
    onStoppedLeading: (reason) => candidate.stopped.push(reason),
  });
  candidates.push(candidate);
  return candidate;
}

function startSampling(): void {
  sampler = setInterval(() => {
    const now = Date.now();
    const leaders = candidates.filter((candidate) => candidate.elector.isLeader()).map((candidate) => candidate.identity);
    if (leaders.length > 1) overlaps.push(`${new Date(now).toISOString()}: ${leaders.join(' and ')} both lead`);
  }, 50);
}

const leaders = () => candidates.filter((candidate) => candidate.elector.isLeader());

const readLease = (leaseName: string) => http.json<Lease>({ method: 'GET', path: leasePath(namespace, leaseName) });

const uniqueLeaseName = () => `election-${randomBytes(3).toString('hex')}`;

/** Waits until exactly one candidate leads; returns it. */
const oneLeader = () =>
  eventually('a leader', () => {
    const current = leaders();
    return current.length === 1 ? current[0] : undefined;
  }, 15_000, 20);

afterEach(async () => {
  clearInterval(sampler);
  await Promise.all(candidates.map((candidate) => candidate.elector.stop()));
  candidates = [];
  expect(overlaps.splice(0)).toEqual([]);
});

describe('leader election on a Lease', () => {
  it('lets exactly one of two candidates lead, and records it in the Lease', async () => {
    const leaseName = uniqueLeaseName();
    const a = startCandidate('candidate-a', leaseName);
    const b = startCandidate('candidate-b', leaseName);
    startSampling();

    const leader = await oneLeader();
    const follower = leader === a ? b : a;
    // Several renewals later, nothing has changed hands.
    await sleep(4 * retryPeriodMs);
    expect(leaders()).toEqual([leader]);
    expect(leader.started).toBe(1);
    expect(follower.started).toBe(0);
    expect(leader.signal?.aborted).toBe(false);

    const lease = await readLease(leaseName);
    expect(lease.spec).toMatchObject({ holderIdentity: leader.identity, leaseDurationSeconds: 2, leaseTransitions: 0 });
    expect(lease.spec?.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(Date.parse(lease.spec?.renewTime ?? '')).toBeGreaterThan(Date.parse(lease.spec?.acquireTime ?? ''));
  });

  it('hands over at once when the leader stops: the Lease is released, not left to expire', async () => {
    const leaseName = uniqueLeaseName();
    const a = startCandidate('candidate-a', leaseName);
    const b = startCandidate('candidate-b', leaseName);
    startSampling();
    const leader = await oneLeader();
    const follower = leader === a ? b : a;

    const stopping = Date.now();
    await leader.elector.stop();
    expect(leader.elector.isLeader()).toBe(false);
    expect(leader.stopped).toEqual(['stopped']);
    expect(leader.signal?.aborted).toBe(true);
    const afterRelease = await readLease(leaseName);
    // Released (no holder), unless the follower was quicker than this read.
    expect(['', follower.identity]).toContain(afterRelease.spec?.holderIdentity);

    await eventually('the follower to lead', () => (follower.elector.isLeader() ? true : undefined), 10_000, 20);
    const handover = Date.now() - stopping;
    // One acquisition retry (300 ms × up to 2.2) plus requests: far less than waiting out the lease.
    expect(handover).toBeLessThan(leaseDurationMs);
    const lease = await readLease(leaseName);
    expect(lease.spec).toMatchObject({ holderIdentity: follower.identity, leaseTransitions: 1 });
  });

  it('lets the leader\'s work finish after stop() before releasing, so the successor never overlaps it', async () => {
    const leaseName = uniqueLeaseName();
    const drainMs = 600;
    let workEnded = 0;
    // Work that takes a while to wind down once its signal aborts (in-flight reconciles).
    const work = (signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => setTimeout(() => {
          workEnded = Date.now();
          resolve();
        }, drainMs), { once: true });
      });
    const a = startCandidate('candidate-a', leaseName, work);
    const b = startCandidate('candidate-b', leaseName, work);
    startSampling();
    const leader = await oneLeader();
    const follower = leader === a ? b : a;

    const stopping = Date.now();
    const stopped = leader.elector.stop();
    expect(leader.elector.isLeader()).toBe(false);
    expect(leader.signal?.aborted).toBe(true);
    await sleep(drainMs / 2);
    expect((await readLease(leaseName)).spec?.holderIdentity).toBe(leader.identity);
    await stopped;
    expect(Date.now() - stopping).toBeGreaterThanOrEqual(drainMs);

    await eventually('the follower to lead', () => (follower.elector.isLeader() ? true : undefined), 10_000, 20);
    expect(workEnded).toBeGreaterThan(0);
    expect(follower.startedAt).toBeGreaterThanOrEqual(workEnded);
  });

  it('stops a leader whose renewals fail within the renew deadline; the other takes over only after the lease expires', async () => {
    const leaseName = uniqueLeaseName();
    const a = startCandidate('candidate-a', leaseName);
    const b = startCandidate('candidate-b', leaseName);
    startSampling();
    const leader = await oneLeader();
    const follower = leader === a ? b : a;

    leader.http.failing = true;
    const cutOff = Date.now();
    await eventually('the leader to step down', () => (leader.elector.isLeader() ? undefined : true), 10_000, 10);
    const lostAfter = Date.now() - cutOff;
    expect(lostAfter).toBeLessThanOrEqual(renewDeadlineMs + slackMs);
    await eventually('onStoppedLeading', () => (leader.stopped.length > 0 ? true : undefined), 5_000, 10);
    expect(leader.stopped).toEqual(['lost']);
    expect(leader.signal?.aborted).toBe(true);
    await leader.done; // run() is over: a lost leader does not campaign again

    await eventually('the follower to lead', () => (follower.elector.isLeader() ? true : undefined), 10_000, 20);
    const takeoverAfter = Date.now() - cutOff;
    // The last renewal the follower saw was at most one retry period (plus an in-flight renewal)
    // before the cut-off; the follower waits a full lease duration after seeing it.
    expect(takeoverAfter).toBeGreaterThanOrEqual(leaseDurationMs - retryPeriodMs - slackMs);
    expect(takeoverAfter).toBeGreaterThan(lostAfter);
    expect(follower.startedAt).toBeGreaterThan(cutOff + lostAfter - 50);
    const lease = await readLease(leaseName);
    expect(lease.spec).toMatchObject({ holderIdentity: follower.identity, leaseTransitions: 1 });
  });

  it('releases the Lease after losing it to renewals whose answers were lost, though they committed', async () => {
    const leaseName = uniqueLeaseName();
    const leader = startCandidate('candidate-a', leaseName);
    await oneLeader();

    leader.http.losingAnswers = true;
    await eventually('the leader to step down', () => (leader.elector.isLeader() ? undefined : true), 10_000, 10);
    // Its renewals went on committing: the Lease still names it, fresh, as it steps down.
    expect((await readLease(leaseName)).spec?.holderIdentity).toBe(leader.identity);
    leader.http.losingAnswers = false;
    await leader.done;

    expect(leader.stopped).toEqual(['lost']);
    // Released (a successor need not wait out the lease duration), not left to expire.
    expect((await readLease(leaseName)).spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
  });

  it('judges expiry by when it saw the Lease change, not by the holder\'s renewTime (clock skew)', async () => {
    const leaseName = uniqueLeaseName();
    // Someone else holds it, and by its renewTime it expired an hour ago: on this clock, only its
    // lease duration after we first saw it may it be taken.
    const anHourAgo = microTime(Date.now() - 3_600_000);
    await http.json({
      method: 'POST',
      path: leasePath(namespace),
      body: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: leaseName },
        spec: { holderIdentity: 'ghost', leaseDurationSeconds: 2, acquireTime: anHourAgo, renewTime: anHourAgo, leaseTransitions: 4 },
      },
    });
    const starting = Date.now();
    const candidate = startCandidate('candidate-a', leaseName);
    startSampling();

    await sleep(leaseDurationMs - slackMs);
    expect(candidate.elector.isLeader()).toBe(false);
    await eventually('the candidate to lead', () => (candidate.elector.isLeader() ? true : undefined), 10_000, 20);
    expect(Date.now() - starting).toBeGreaterThanOrEqual(leaseDurationMs);
    const lease = await readLease(leaseName);
    expect(lease.spec).toMatchObject({ holderIdentity: 'candidate-a', leaseTransitions: 5 });
  });

  it('takes its own Lease back at once after a restart with the same identity', async () => {
    const leaseName = uniqueLeaseName();
    const first = startCandidate('candidate-a', leaseName);
    startSampling();
    await oneLeader();
    // A crash: the old process simply stops writing (no release).
    first.http.failing = true;
    await eventually('the crashed process to step down', () => (first.elector.isLeader() ? undefined : true), 10_000, 10);
    const before = await readLease(leaseName);

    const restarting = Date.now();
    const second = startCandidate('candidate-a', leaseName);
    await eventually('the restarted process to lead', () => (second.elector.isLeader() ? true : undefined), 10_000, 20);
    expect(Date.now() - restarting).toBeLessThan(leaseDurationMs);
    const lease = await readLease(leaseName);
    expect(lease.spec).toMatchObject({ holderIdentity: 'candidate-a', leaseTransitions: 0, acquireTime: before.spec?.acquireTime });
  });
});
