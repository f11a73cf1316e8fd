// Kubernetes Events (events.k8s.io/v1) about an object. Recording is best effort: a failed Event
// is logged, never a reason to fail or repeat a reconcile. Each object's Events are rate-limited
// and aggregated (event-correlator.ts), so a flapping condition cannot flood etcd.
import type { KubeClient } from './client.ts';
import type { KubeObject } from './objects.ts';
import type { Logger } from '../log.ts';
import { systemClock, type Clock } from '../controller/clock.ts';
import { EventCorrelator, type EventLimits, type EventNote, type Occurrence } from './event-correlator.ts';

export type { EventNote } from './event-correlator.ts';

export interface EventRecorderOptions {
  /** Timers for held-back Events; default the system clock's, with `now` as time. */
  clock?: Clock;
  limits?: EventLimits;
}

export class EventRecorder {
  private readonly kube: Pick<KubeClient, 'createEvent'>;
  private readonly instance: string;
  private readonly logger: Logger;
  private readonly correlator: EventCorrelator;

  constructor(kube: Pick<KubeClient, 'createEvent'>, instance: string, logger: Logger, now: () => number, options: EventRecorderOptions = {}) {
    this.kube = kube;
    this.instance = instance;
    this.logger = logger;
    this.correlator = new EventCorrelator({
      clock: options.clock ?? { now, setTimer: (callback, delayMs) => systemClock.setTimer(callback, delayMs) },
      ...(options.limits ? { limits: options.limits } : {}),
      write: (object, occurrence) => this.write(object, occurrence),
      onDropped: (object, { note, count }) =>
        logger.debug({ object: `${object.metadata.namespace ?? ''}/${object.metadata.name}`, reason: note.reason, count }, 'Event dropped: too many distinct Events held back for this object'),
    });
  }

  /** Written now, or held back and aggregated when the object has had many Events lately. */
  record(object: KubeObject, note: EventNote): Promise<void> {
    return this.correlator.record(object, note);
  }

  /** Drops held-back Events and their timers. */
  stop(): void {
    this.correlator.stop();
  }

  private async write(object: KubeObject, { note, count, firstAt, lastAt }: Occurrence): Promise<void> {
    const { namespace = '', name, uid = '', resourceVersion } = object.metadata;
    try {
      await this.kube.createEvent(
        namespace,
        {
          regarding: { kind: object.kind ?? '', apiVersion: object.apiVersion ?? '', namespace, name, uid, ...(resourceVersion ? { resourceVersion } : {}) },
          ...note,
          reportingInstance: this.instance,
          ...(count > 1 ? { series: { count, lastObservedTime: new Date(lastAt) } } : {}),
        },
        new Date(firstAt),
      );
    } catch (error) {
      this.logger.warn({ object: `${namespace}/${name}`, reason: note.reason, err: error instanceof Error ? error.message : String(error) }, 'could not record an Event');
    }
  }
}
