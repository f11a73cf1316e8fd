// Leader election on a coordination.k8s.io/v1 Lease, with client-go's leaderelection semantics:
// - a candidate takes the Lease when it is absent, released (no holder), held by itself, or expired;
// - "expired" is judged on this process's clock only: leaseDurationSeconds after this process last
//   saw the record change. The holder's renewTime is never compared with the local clock, so clock
//   skew between nodes cannot hand the Lease to two processes;
// - every write carries the resourceVersion it read (PUT; a new Lease is a POST), so of two
//   candidates exactly one wins and the other gets Conflict / AlreadyExists;
// - the leader renews every retryPeriod. If no renewal has succeeded for renewDeadline (counted from
//   the start of the last successful attempt, which is before the apiserver stored it, so before any
//   other candidate can have seen it), leadership is lost: the signal is aborted and
//   onStoppedLeading runs at once, before a successor can take over (renewDeadline < leaseDuration);
// - when leadership ends (stop(), or lost), the leader waits for its work to settle and releases the
//   Lease by clearing its holder if the Lease still names it, so a successor takes over within one
//   retry period instead of a lease duration. A lost leader's Lease can still name it: a renewal
//   that committed but whose answer was lost (client-go releases only on a stop).
// Two differences from client-go: a leader that sees another holder in the Lease steps down at once
// instead of at its deadline, and isLeader() also checks the deadline against the clock, so it turns
// false on time even when a blocked event loop delays the deadline timer.
import { z } from 'zod';
import { systemClock, type Clock, type Timer } from '../controller/clock.ts';
import { isAlreadyExists, isConflict, isNotFound } from './errors.ts';
import type { KubeHTTP } from './http.ts';

/** The part of KubeHTTP the elector uses (tests wrap it). */
export type LeaseHTTP = Pick<KubeHTTP, 'json'>;

/** The part of pino's Logger the elector uses. */
export interface LeaderElectionLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
  debug(object: Record<string, unknown>, message: string): void;
}

export interface LeaderElectorOptions {
  http: LeaseHTTP;
  /** Where the Lease lives (the operator's namespace). */
  namespace: string;
  /** The Lease's name; default `oauthapp-operator`. */
  name?: string;
  /** This candidate, unique among replicas (e.g. the pod name). */
  identity: string;
  /** How long others wait after the last renewal they saw before taking over; default 15 s. */
  leaseDurationMs?: number;
  /** How long the leader keeps leading without a successful renewal; default 10 s. */
  renewDeadlineMs?: number;
  /** Between attempts to acquire or renew; default 2 s. */
  retryPeriodMs?: number;
  clock?: Clock;
  /** For the jitter on acquisition retries; default Math.random. */
  random?: () => number;
  logger?: LeaderElectionLogger;
}

export type StoppedLeadingReason = 'lost' | 'stopped';

export interface LeaderCallbacks {
  /**
   * Called on becoming leader. `signal` aborts when leadership ends. If this returns a promise,
   * stop() waits for it to settle (at most a lease duration) before releasing the Lease, so a
   * successor does not overlap with work this process is still finishing.
   */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Called once when leadership ends: `lost` (renewals failed, or another holder), or `stopped`. */
  onStoppedLeading(reason: StoppedLeadingReason): void;
}

export interface LeaderElector {
  /** Campaigns until leading, then renews; resolves when leadership is lost or stop() is done. Once only. */
  run(callbacks: LeaderCallbacks): Promise<void>;
  /** Stops campaigning; if leading, steps down and releases the Lease. Resolves when run() has. */
  stop(): Promise<void>;
  isLeader(): boolean;
}

export type LeaderElectionErrorCode = 'INVALID_CONFIG' | 'ALREADY_RUNNING' | 'LEADERSHIP_ENDED';

export class LeaderElectionError extends Error {
  override readonly name = 'LeaderElectionError';
  readonly code: LeaderElectionErrorCode;

  constructor(code: LeaderElectionErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

const leaseSpec = z.looseObject({
  holderIdentity: z.string().nullish(),
  leaseDurationSeconds: z.number().int().nullish(),
  acquireTime: z.string().nullish(),
  renewTime: z.string().nullish(),
  leaseTransitions: z.number().int().nullish(),
});
const leaseSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string(), resourceVersion: z.string().optional() }),
  spec: leaseSpec.optional(),
});
export type Lease = z.output<typeof leaseSchema>;
type LeaseSpec = z.output<typeof leaseSpec>;

/** client-go's wait.JitterUntil factor for acquisition retries: wait retryPeriod × [1, 2.2). */
export const acquireJitter = 1.2;

export const leasePath = (namespace: string, name?: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases${name === undefined ? '' : `/${name}`}`;

/** metav1.MicroTime: RFC 3339 with microseconds, `2006-01-02T15:04:05.000000Z`. */
export const microTime = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');

type Attempt = 'held' | 'held-by-other' | 'failed';

const silent: LeaderElectionLogger = { info() {}, warn() {}, error() {}, debug() {} };

export function createLeaderElector(options: LeaderElectorOptions): LeaderElector {
  return new Elector(options);
}

class Elector implements LeaderElector {
  private readonly http: LeaseHTTP;
  private readonly namespace: string;
  private readonly name: string;
  private readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: LeaderElectionLogger;

  /** The Lease's election fields as last seen, and when (local clock) they last changed. */
  private observedRecord = '';
  private observedHolder: string | undefined;
  private observedDurationSeconds = 0;
  private observedAt = 0;
  /** The Lease as our last successful write left it (renewal fast path, release). */
  private written: Lease | undefined;

  private callbacks: LeaderCallbacks | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private leading = false;
  private validUntil = 0;
  private deadline: Timer | undefined;
  private workAbort: AbortController | undefined;
  private work: Promise<void> | undefined;
  private attemptAbort: AbortController | undefined;
  private readonly wakers = new Set<() => void>();

  constructor(options: LeaderElectorOptions) {
    this.http = options.http;
    this.namespace = options.namespace;
    this.name = options.name ?? 'oauthapp-operator';
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? silent;
    const invalid = (message: string) => new LeaderElectionError('INVALID_CONFIG', message);
    if (!this.identity) throw invalid('identity must not be empty');
    if (!(this.retryPeriodMs > 0)) throw invalid('retryPeriodMs must be positive');
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) throw invalid('leaseDurationMs must be greater than renewDeadlineMs');
    if (!(this.renewDeadlineMs > acquireJitter * this.retryPeriodMs)) {
      throw invalid(`renewDeadlineMs must be greater than ${acquireJitter} × retryPeriodMs`);
    }
  }

  isLeader(): boolean {
    return this.leading && this.clock.now() < this.validUntil;
  }

  run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.running) return Promise.reject(new LeaderElectionError('ALREADY_RUNNING', 'run() was already called on this elector'));
    this.callbacks = callbacks;
    this.running = this.campaign();
    return this.running;
  }

  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.stepDown('stopped', 'stopping');
      this.attemptAbort?.abort();
      this.wake();
    }
    await this.running;
  }

  private async campaign(): Promise<void> {
    const lease = `${this.namespace}/${this.name}`;
    this.log.info({ lease, identity: this.identity }, 'campaigning for leadership');
    while (!this.stopped) {
      const startedAt = this.clock.now();
      const result = await this.boundedAttempt();
      if (this.stopped) break;
      if (result === 'held' && this.clock.now() < startedAt + this.renewDeadlineMs) {
        this.becomeLeader(startedAt);
        break;
      }
      // Wake at the observed expiry if it comes before the next retry: a standby takes over a dead
      // leader's Lease within the lease duration, not a retry period after it.
      const untilExpiry = this.observedAt + this.observedDurationMs() - this.clock.now() + 10;
      const retry = this.retryPeriodMs * (1 + this.random() * acquireJitter);
      await this.sleep(untilExpiry > 0 ? Math.min(retry, untilExpiry) : retry);
    }
    while (this.leading) {
      await this.sleep(this.retryPeriodMs);
      if (!this.leading) break;
      const startedAt = this.clock.now();
      const result = await this.boundedAttempt();
      if (!this.leading) break;
      if (result === 'held') this.renewed(startedAt);
      else if (result === 'held-by-other') this.stepDown('lost', `the Lease is held by ${this.observedHolder}`);
    }
    await this.release();
  }

  private becomeLeader(attemptStartedAt: number): void {
    this.leading = true;
    this.renewed(attemptStartedAt);
    this.log.info({ identity: this.identity }, 'became leader');
    const controller = new AbortController();
    this.workAbort = controller;
    try {
      this.work = Promise.resolve(this.callbacks?.onStartedLeading(controller.signal)).catch((error: unknown) => this.workFailed(error));
    } catch (error) {
      this.workFailed(error);
    }
  }

  /** A renewal that started at `attemptStartedAt` succeeded: leading until renewDeadline after it. */
  private renewed(attemptStartedAt: number): void {
    this.validUntil = Math.max(this.validUntil, attemptStartedAt + this.renewDeadlineMs);
    this.deadline?.cancel();
    this.deadline = this.clock.setTimer(() => {
      this.stepDown('lost', `no successful renewal within ${this.renewDeadlineMs} ms`);
    }, this.validUntil - this.clock.now());
  }

  private stepDown(reason: StoppedLeadingReason, why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.deadline?.cancel();
    if (reason === 'lost') this.attemptAbort?.abort();
    this.workAbort?.abort(new LeaderElectionError('LEADERSHIP_ENDED', `leadership ended: ${why}`));
    this.wake();
    if (reason === 'lost') this.log.error({ identity: this.identity, why }, 'lost leadership');
    else this.log.info({ identity: this.identity }, 'stepping down');
    try {
      this.callbacks?.onStoppedLeading(reason);
    } catch (error) {
      this.log.error({ err: error }, 'onStoppedLeading threw');
    }
  }

  private workFailed(error: unknown): void {
    this.log.error({ err: error }, 'the leader\'s work (onStartedLeading) failed');
  }

  /** One attempt, given up after renewDeadline or when stopping or losing (the request is aborted). */
  private async boundedAttempt(): Promise<Attempt> {
    const controller = new AbortController();
    this.attemptAbort = controller;
    const timer = this.clock.setTimer(() => controller.abort(), this.renewDeadlineMs);
    const aborted = new Promise<Attempt>((resolve) => controller.signal.addEventListener('abort', () => resolve('failed'), { once: true }));
    try {
      return await Promise.race([this.attempt(controller.signal).catch((): Attempt => 'failed'), aborted]);
    } finally {
      timer.cancel();
      if (this.attemptAbort === controller) this.attemptAbort = undefined;
    }
  }

  /** client-go's tryAcquireOrRenew. */
  private async attempt(signal: AbortSignal): Promise<Attempt> {
    if (this.leading && this.written) {
      // Fast path: a leader renews with the resourceVersion of its own last write, skipping the GET.
      try {
        this.record(await this.put(this.withSpec(this.written, this.renewal(this.written.spec)), signal));
        return 'held';
      } catch (error) {
        this.log.debug({ err: error }, 'renewal without a fresh read failed; reading the Lease');
        if (signal.aborted) return 'failed';
      }
    }
    let current: Lease;
    try {
      current = leaseSchema.parse(await this.http.json<unknown>({ method: 'GET', path: leasePath(this.namespace, this.name), signal }));
    } catch (error) {
      if (!isNotFound(error)) return this.failed(error, 'reading the Lease');
      return this.create(signal);
    }
    this.observe(current);
    const holder = current.spec?.holderIdentity ?? '';
    if (holder !== '' && holder !== this.identity && this.observedValid()) return 'held-by-other';
    const spec = holder === this.identity ? this.renewal(current.spec) : this.acquisition(current.spec);
    try {
      this.record(await this.put(this.withSpec(current, spec), signal));
      return 'held';
    } catch (error) {
      return this.failed(error, holder === this.identity ? 'renewing the Lease' : 'taking over the Lease');
    }
  }

  private async create(signal: AbortSignal): Promise<Attempt> {
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace },
      spec: this.acquisition(undefined),
    };
    try {
      this.record(leaseSchema.parse(await this.http.json<unknown>({ method: 'POST', path: leasePath(this.namespace), body, signal })));
      return 'held';
    } catch (error) {
      return this.failed(error, 'creating the Lease');
    }
  }

  /**
   * Clears the holder so a successor need not wait out the lease duration. Tried again every retry
   * period until the renew deadline: the faults that cost a lost leader its Lease may still last.
   */
  private async release(): Promise<void> {
    await this.settleWork();
    if (this.written?.spec?.holderIdentity !== this.identity) return;
    const controller = new AbortController();
    const timer = this.clock.setTimer(() => controller.abort(), this.renewDeadlineMs);
    try {
      for (;;) {
        try {
          if (await this.releaseOnce(this.written, controller.signal)) this.log.info({ identity: this.identity }, 'released the Lease');
          return;
        } catch (error) {
          if (controller.signal.aborted) throw error;
          await new Promise<void>((resolve) => {
            const retry = this.clock.setTimer(resolve, this.retryPeriodMs);
            controller.signal.addEventListener('abort', () => (retry.cancel(), resolve()), { once: true });
          });
        }
      }
    } catch (error) {
      this.log.warn({ err: error }, 'could not release the Lease; a successor takes over when it expires');
    } finally {
      timer.cancel();
      this.written = undefined;
    }
  }

  /** One release: false when the Lease no longer names us (released already, or taken over). */
  private async releaseOnce(written: Lease, signal: AbortSignal): Promise<boolean> {
    const released = (base: Lease) => this.withSpec(base, { ...base.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: microTime(this.clock.now()), renewTime: microTime(this.clock.now()) });
    try {
      await this.put(released(written), signal);
      return true;
    } catch (error) {
      if (!isConflict(error)) throw error;
      // A renewal (or an earlier try of this release) may have been stored after we stopped waiting for it: read again.
      const current = leaseSchema.parse(await this.http.json<unknown>({ method: 'GET', path: leasePath(this.namespace, this.name), signal }));
      if (current.spec?.holderIdentity !== this.identity) return false;
      await this.put(released(current), signal);
      return true;
    }
  }

  /** Waits for the leader's work to finish after its signal was aborted, at most a lease duration. */
  private async settleWork(): Promise<void> {
    if (!this.work) return;
    let timer: Timer | undefined;
    const timeout = new Promise<void>((resolve) => (timer = this.clock.setTimer(resolve, this.leaseDurationMs)));
    await Promise.race([this.work, timeout]);
    timer?.cancel();
  }

  private put(lease: Lease, signal: AbortSignal): Promise<Lease> {
    return this.http
      .json<unknown>({ method: 'PUT', path: leasePath(this.namespace, this.name), body: lease, signal })
      .then((answer) => leaseSchema.parse(answer));
  }

  private withSpec(lease: Lease, spec: LeaseSpec): Lease {
    return { ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', spec };
  }

  private acquisition(previous: LeaseSpec | undefined): LeaseSpec {
    const now = microTime(this.clock.now());
    return {
      ...previous,
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.leaseDurationMs / 1000)),
      acquireTime: now,
      renewTime: now,
      leaseTransitions: (previous?.leaseTransitions ?? -1) + 1,
    };
  }

  private renewal(previous: LeaseSpec | undefined): LeaseSpec {
    const acquired = this.acquisition(previous);
    return { ...acquired, acquireTime: previous?.acquireTime ?? acquired.acquireTime, leaseTransitions: previous?.leaseTransitions ?? 0 };
  }

  /** Our write succeeded: it is what we last saw, and (for the fast path) what we will renew. */
  private record(lease: Lease): void {
    this.written = lease;
    this.observe(lease);
  }

  private observe(lease: Lease): void {
    const spec = lease.spec;
    const record = JSON.stringify([spec?.holderIdentity ?? '', spec?.leaseDurationSeconds, spec?.acquireTime, spec?.renewTime, spec?.leaseTransitions]);
    if (record === this.observedRecord) return;
    this.observedRecord = record;
    // Taken after the answer arrived: later than the apiserver stored the record, never earlier.
    this.observedAt = this.clock.now();
    this.observedDurationSeconds = spec?.leaseDurationSeconds ?? 0;
    const holder = spec?.holderIdentity ?? '';
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder !== this.identity) this.log.info({ holder: holder || undefined }, holder ? 'observed a new leader' : 'the Lease was released');
    }
  }

  private observedDurationMs(): number {
    return this.observedDurationSeconds > 0 ? this.observedDurationSeconds * 1000 : this.leaseDurationMs;
  }

  private observedValid(): boolean {
    return this.clock.now() < this.observedAt + this.observedDurationMs();
  }

  private failed(error: unknown, doing: string): Attempt {
    if (isConflict(error) || isAlreadyExists(error)) this.log.debug({ doing }, 'another candidate wrote the Lease first');
    else this.log.warn({ err: error, doing }, 'leader election attempt failed');
    return 'failed';
  }

  /** Sleeps on the injected clock; stop() and losing leadership cut it short. */
  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        timer.cancel();
        this.wakers.delete(done);
        resolve();
      };
      const timer = this.clock.setTimer(done, ms);
      this.wakers.add(done);
    });
  }

  private wake(): void {
    for (const waker of [...this.wakers]) waker();
  }
}
