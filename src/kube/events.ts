// Kubernetes Events (events.k8s.io/v1) about an object. Recording is best effort: a failed Event
// is logged, never a reason to fail or repeat a reconcile.
import type { KubeClient } from './client.ts';
import type { KubeObject } from './objects.ts';
import type { Logger } from '../log.ts';

export interface EventNote {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  action: string;
}

export class EventRecorder {
  private readonly kube: KubeClient;
  private readonly instance: string;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(kube: KubeClient, instance: string, logger: Logger, now: () => number) {
    this.kube = kube;
    this.instance = instance;
    this.logger = logger;
    this.now = now;
  }

  async record(object: KubeObject, note: EventNote): Promise<void> {
    const { namespace = '', name, uid = '', resourceVersion } = object.metadata;
    try {
      await this.kube.createEvent(
        namespace,
        {
          regarding: { kind: object.kind ?? '', apiVersion: object.apiVersion ?? '', namespace, name, uid, ...(resourceVersion ? { resourceVersion } : {}) },
          ...note,
          reportingInstance: this.instance,
        },
        new Date(this.now()),
      );
    } catch (error) {
      this.logger.warn({ object: `${namespace}/${name}`, reason: note.reason, err: error instanceof Error ? error.message : String(error) }, 'could not record an Event');
    }
  }
}
