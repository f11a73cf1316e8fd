// Events per object, rate-limited and aggregated after client-go's EventCorrelator: each object
// (an OAuthApp) has a token bucket; what exceeds it is held back, and the same Event held back
// again (same type, reason, action and message) is counted into one instead of queued twice. When
// the bucket refills, the oldest held Event is written, carrying how often it happened (an
// events.k8s.io/v1 series) and when first and last. A flapping condition thus makes at most
// `burst` Events at once and one per `refillMs` after that, and the newest state is written last:
// nothing is lost but repetitions, which are counted.
import type { Clock, Timer } from '../controller/clock.ts';
import type { KubeObject } from './objects.ts';

export interface EventLimits {
  /** Events an object may get at once. */
  burst: number;
  /** One more Event per this many ms after that. */
  refillMs: number;
  /** Distinct Events held back per object; beyond it, the oldest held one is dropped. */
  maxHeld: number;
}

/**
 * 8 at once: one client-secret change makes three or four (ClientSecretValid twice, a rollout
 * restart, a missing target), so two real incidents in a row are told in full; then two a minute.
 */
export const defaultEventLimits: EventLimits = { burst: 8, refillMs: 30_000, maxHeld: 8 };

export interface EventNote {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  action: string;
}

/** One Event to write: a note seen `count` times between `firstAt` and `lastAt` (epoch ms). */
export interface Occurrence {
  note: EventNote;
  count: number;
  firstAt: number;
  lastAt: number;
}

interface Held extends Occurrence {
  /** The latest copy of the object the note is about (its resourceVersion goes into the Event). */
  object: KubeObject;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
  /** Held-back Events by signature, oldest first. */
  held: Map<string, Held>;
  timer?: Timer;
  /** A drain timer writes held Events; a forget timer drops the bucket once it is full again. */
  timerFor?: 'drain' | 'forget';
}

export interface EventCorrelatorOptions {
  clock: Clock;
  limits?: EventLimits;
  /** Writes one Event; failures are the writer's to report (best effort). */
  write: (object: KubeObject, occurrence: Occurrence) => Promise<void>;
  /** A held Event given up because too many distinct ones were waiting. */
  onDropped?: (object: KubeObject, occurrence: Occurrence) => void;
}

/** Tolerance for float arithmetic: a timer set for the moment a token is due finds it there. */
const epsilon = 1e-9;

export class EventCorrelator {
  private readonly clock: Clock;
  private readonly limits: EventLimits;
  private readonly writeEvent: EventCorrelatorOptions['write'];
  private readonly onDropped: EventCorrelatorOptions['onDropped'];
  private readonly buckets = new Map<string, Bucket>();

  constructor({ clock, limits = defaultEventLimits, write, onDropped }: EventCorrelatorOptions) {
    if (!(limits.burst >= 1) || !(limits.refillMs > 0) || !(limits.maxHeld >= 1)) throw new RangeError('event limits need burst >= 1, refillMs > 0 and maxHeld >= 1');
    this.clock = clock;
    this.limits = limits;
    this.writeEvent = write;
    this.onDropped = onDropped;
  }

  /** Objects with a bucket or held Events (memory: forgotten once their bucket is full again). */
  get tracked(): number {
    return this.buckets.size;
  }

  /** Records `note` about `object`: written now if its bucket allows, else held and aggregated. */
  record(object: KubeObject, note: EventNote): Promise<void> {
    const now = this.clock.now();
    const key = object.metadata.uid || `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { tokens: this.limits.burst, at: now, held: new Map() };
      this.buckets.set(key, bucket);
    }
    if (bucket.timerFor === 'forget') this.cancelTimer(bucket);

    const signature = JSON.stringify([note.type, note.reason, note.action, note.message]);
    const same = bucket.held.get(signature);
    bucket.held.delete(signature);
    // Re-inserted at the end: the newest state goes out last.
    bucket.held.set(signature, same ? { ...same, object, count: same.count + 1, lastAt: now } : { object, note, count: 1, firstAt: now, lastAt: now });
    if (bucket.held.size > this.limits.maxHeld) {
      const [oldestSignature, oldest] = bucket.held.entries().next().value as [string, Held];
      bucket.held.delete(oldestSignature);
      this.onDropped?.(oldest.object, occurrenceOf(oldest));
    }
    return this.drain(key, bucket);
  }

  /** Cancels every timer; held Events are dropped (Events are best effort). */
  stop(): void {
    for (const bucket of this.buckets.values()) this.cancelTimer(bucket);
    this.buckets.clear();
  }

  private drain(key: string, bucket: Bucket): Promise<void> {
    this.refill(bucket);
    const writes: Promise<void>[] = [];
    while (bucket.held.size > 0 && bucket.tokens >= 1 - epsilon) {
      const [signature, held] = bucket.held.entries().next().value as [string, Held];
      bucket.held.delete(signature);
      bucket.tokens = Math.max(0, bucket.tokens - 1);
      writes.push(this.writeEvent(held.object, occurrenceOf(held)));
    }
    this.arm(key, bucket);
    return Promise.all(writes).then(() => undefined);
  }

  private refill(bucket: Bucket): void {
    const now = this.clock.now();
    bucket.tokens = Math.min(this.limits.burst, bucket.tokens + Math.max(0, now - bucket.at) / this.limits.refillMs);
    bucket.at = now;
  }

  private arm(key: string, bucket: Bucket): void {
    if (bucket.timer) return;
    if (bucket.held.size > 0) {
      bucket.timerFor = 'drain';
      bucket.timer = this.clock.setTimer(() => {
        bucket.timer = undefined;
        bucket.timerFor = undefined;
        if (this.buckets.get(key) === bucket) void this.drain(key, bucket);
      }, Math.ceil((1 - bucket.tokens) * this.limits.refillMs));
      return;
    }
    bucket.timerFor = 'forget';
    bucket.timer = this.clock.setTimer(() => {
      bucket.timer = undefined;
      bucket.timerFor = undefined;
      // A full bucket and nothing held is what a new bucket would be: no need to keep it.
      if (bucket.held.size === 0 && this.buckets.get(key) === bucket) this.buckets.delete(key);
    }, Math.ceil((this.limits.burst - bucket.tokens) * this.limits.refillMs));
  }

  private cancelTimer(bucket: Bucket): void {
    bucket.timer?.cancel();
    bucket.timer = undefined;
    bucket.timerFor = undefined;
  }
}

function occurrenceOf({ note, count, firstAt, lastAt }: Held): Occurrence {
  return { note, count, firstAt, lastAt };
}
