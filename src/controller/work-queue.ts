// A work queue of object keys with the semantics of client-go's workqueue (the rate-limiting,
// delaying queue under every controller-runtime controller):
// - a key is queued at most once; adding it again before a worker takes it does nothing;
// - a key being processed is never handed to a second worker: adding it meanwhile marks it dirty,
//   and `done(key)` queues it again, so the change is not lost;
// - `addAfter` schedules an add; several pending schedules for one key collapse to the earliest;
// - `addRateLimited` is `addAfter` with the key's exponential failure delay, `forget` resets it.
// - `expedite` retries at once the keys whose failure was marked expeditable (its cause, such as an
//   apiserver out of reach, is known to be over), with their failures forgotten.
// Two differences:
// - keys are handed out round-robin across their namespaces (the part before the first `/`;
//   `fairnessKey` to choose otherwise), first-in-first-out within one namespace. When the queue is
//   backed up, a namespace with thousands of queued keys gets one turn in each round like a
//   namespace with one, so one tenant's churn does not delay another tenant's work by the length of
//   its backlog (client-go's queue is one FIFO; kube-apiserver's API Priority and Fairness likewise
//   queues requests per flow and serves the flows in turn). With one namespace, or no backlog, the
//   order is plain FIFO.
// - after `shutDown`, queued keys are no longer handed out (client-go lets workers empty the queue
//   first). On SIGTERM the next leader rebuilds every key from its informers, so nothing is lost,
//   and shutdown is not held up by a long queue.
import type { Clock, Timer } from './clock.ts';
import { Fifo } from './fifo.ts';
import { createExponentialRateLimiter, type RateLimiter } from './rate-limiter.ts';

export interface WorkQueueOptions {
  clock: Clock;
  /** Default: 5 ms doubling per consecutive failure, up to 1000 s. */
  rateLimiter?: RateLimiter;
  /** Called with the number of queued keys (delayed ones not counted) whenever it changes. */
  onDepthChange?: (depth: number) => void;
  /** Called when a key is handed out, with how long it waited in the queue. */
  onLatency?: (seconds: number) => void;
  /** Called when `add` takes a key that was not already waiting (client-go's adds count). */
  onAdd?: () => void;
  /** Called when `addRateLimited` schedules a key again after a failure (client-go's retries count). */
  onRetry?: () => void;
  /** Which flow a key belongs to, served round-robin; default its namespace (`ns/name` → `ns`). */
  fairnessKey?: (key: string) => string;
}

/** `namespace/name` → `namespace`; a key without a slash is its own flow. */
export const namespaceOf = (key: string): string => {
  const slash = key.indexOf('/');
  return slash < 0 ? key : key.slice(0, slash);
};

interface Queued {
  key: string;
  queuedAt: number;
}

interface Delayed {
  readyAt: number;
  timer: Timer;
}

export class WorkQueue {
  private readonly clock: Clock;
  private readonly rateLimiter: RateLimiter;
  private readonly onDepthChange: ((depth: number) => void) | undefined;
  private readonly onLatency: ((seconds: number) => void) | undefined;
  private readonly onAdd: (() => void) | undefined;
  private readonly onRetry: (() => void) | undefined;
  private readonly fairnessKey: (key: string) => string;

  /**
   * Keys waiting for a worker, each at most once (they are exactly the dirty keys not processing),
   * one FIFO per flow; only flows with queued keys have an entry.
   */
  private readonly flows = new Map<string, Fifo<Queued>>();
  /** Flows with queued keys, in the order they are served next (each at most once). */
  private readonly turns = new Fifo<string>();
  private queued = 0;
  /** Keys that need processing: queued, or added again while processing. */
  private readonly dirty = new Set<string>();
  /** Keys handed out and not yet done. */
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, Delayed>();
  /**
   * Delayed keys waiting out a failure whose cause may end before the delay does: kept apart so
   * `expedite` does not walk every scheduled refresh (one per app).
   */
  private readonly expeditable = new Set<string>();
  /** Keys processing when `expedite` ran: a failure they end with is not waited out. */
  private readonly expeditedWhileProcessing = new Set<string>();
  private readonly getters = new Fifo<(key: string | undefined) => void>();
  private drainers: (() => void)[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions) {
    this.clock = options.clock;
    this.rateLimiter = options.rateLimiter ?? createExponentialRateLimiter();
    this.onDepthChange = options.onDepthChange;
    this.onLatency = options.onLatency;
    this.onAdd = options.onAdd;
    this.onRetry = options.onRetry;
    this.fairnessKey = options.fairnessKey ?? namespaceOf;
  }

  /** Keys queued and not yet handed out; delayed keys are not counted. */
  get length(): number {
    return this.queued;
  }

  /** Keys with a pending `addAfter`. */
  get delayedCount(): number {
    return this.delayed.size;
  }

  /** Keys handed out and not yet done. */
  get processingCount(): number {
    return this.processing.size;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Queues `key` unless it is already queued; ignored after shutDown. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.onAdd?.();
    if (this.processing.has(key)) return; // done(key) queues it again
    this.enqueue(key);
  }

  /** Adds `key` after `delayMs` (at once if not positive); an earlier pending add for it wins. */
  addAfter(key: string, delayMs: number): void {
    this.schedule(key, delayMs, false);
  }

  /**
   * Records a failure of `key` and adds it after its backoff delay, which it returns. An
   * `expeditable` failure is one whose cause may end before the delay: `expedite` retries it then.
   */
  addRateLimited(key: string, { expeditable = false }: { expeditable?: boolean } = {}): number {
    // Its cause ended while it ran (expedite): the failure came from before that.
    if (expeditable && this.expeditedWhileProcessing.delete(key)) this.rateLimiter.forget(key);
    const delayMs = this.rateLimiter.when(key);
    this.onRetry?.();
    this.schedule(key, delayMs, expeditable);
    return delayMs;
  }

  /**
   * The cause of expeditable failures is over: adds their keys now, with their failures forgotten,
   * and does the same for keys being processed if they end with such a failure. Returns how many
   * keys it added.
   */
  expedite(): number {
    if (this.shuttingDown) return 0;
    let added = 0;
    for (const key of this.expeditable) {
      this.delayed.get(key)?.timer.cancel();
      this.delayed.delete(key);
      this.rateLimiter.forget(key);
      this.add(key);
      added += 1;
    }
    this.expeditable.clear();
    for (const key of this.processing) this.expeditedWhileProcessing.add(key);
    return added;
  }

  private schedule(key: string, delayMs: number, expeditable: boolean): void {
    if (this.shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.clock.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending !== undefined) {
      if (pending.readyAt <= readyAt) return;
      pending.timer.cancel();
    }
    const timer = this.clock.setTimer(() => {
      this.delayed.delete(key);
      this.expeditable.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { readyAt, timer });
    if (expeditable) this.expeditable.add(key);
    else this.expeditable.delete(key);
  }

  /** Forgets `key`'s failures: its next `addRateLimited` waits the base delay again. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  /** Consecutive failures of `key` since it was last forgotten. */
  retries(key: string): number {
    return this.rateLimiter.retries(key);
  }

  /**
   * The next key, waiting for one if the queue is empty; `undefined` once the queue is shut down.
   * The caller owns the key until it calls `done(key)`.
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    if (this.queued > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Ends the processing of `key`; if it was added meanwhile, queues it again. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    this.expeditedWhileProcessing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.enqueue(key);
    if (this.processing.size === 0 && this.drainers.length > 0) {
      const drainers = this.drainers;
      this.drainers = [];
      for (const resolve of drainers) resolve();
    }
  }

  /**
   * Stops handing out keys: waiting and later `get()`s answer `undefined`, adds are ignored and
   * pending delayed adds are cancelled. Keys being processed may still be `done()`.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) timer.cancel();
    this.delayed.clear();
    this.expeditable.clear();
    this.expeditedWhileProcessing.clear();
    const hadQueued = this.queued > 0;
    this.flows.clear();
    this.turns.clear();
    this.queued = 0;
    this.dirty.clear();
    if (hadQueued) this.onDepthChange?.(0);
    for (let resolve = this.getters.shift(); resolve !== undefined; resolve = this.getters.shift()) resolve(undefined);
  }

  /**
   * Shuts the queue down and resolves once every key handed out is done: in-flight reconciles
   * finish, no new ones start (graceful SIGTERM).
   */
  drain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainers.push(resolve));
  }

  private enqueue(key: string): void {
    const flowKey = this.fairnessKey(key);
    let flow = this.flows.get(flowKey);
    if (flow === undefined) {
      flow = new Fifo();
      this.flows.set(flowKey, flow);
      this.turns.push(flowKey);
    }
    flow.push({ key, queuedAt: this.clock.now() });
    this.queued += 1;
    this.onDepthChange?.(this.queued);
    const getter = this.getters.shift();
    if (getter !== undefined) getter(this.take());
  }

  /**
   * Hands out the head of the flow whose turn it is; that flow goes to the back of the turns if it
   * has more keys. Only called when the queue is not empty.
   */
  private take(): string {
    const flowKey = this.turns.shift();
    const flow = flowKey === undefined ? undefined : this.flows.get(flowKey);
    const entry = flow?.shift();
    if (flowKey === undefined || flow === undefined || entry === undefined) throw new Error('work queue: take() on an empty queue');
    if (flow.length > 0) this.turns.push(flowKey);
    else this.flows.delete(flowKey);
    this.queued -= 1;
    this.dirty.delete(entry.key);
    this.processing.add(entry.key);
    this.onDepthChange?.(this.queued);
    this.onLatency?.(Math.max(0, this.clock.now() - entry.queuedAt) / 1000);
    return entry.key;
  }
}
