// Typed writes and targeted reads against the apiserver. Reads for reconciling come from
// informers; the ones here are the live reads correctness needs.
import type { KubeHTTP } from './http.ts';
import { isNotFound } from './errors.ts';
import type { KubeObject, Secret } from './objects.ts';
import { apiVersion, group, kind, plural, version } from '../api/oauthapp.ts';
import { installationKind, installationPlural } from '../api/oauthinstallation.ts';

export const secretPath = (namespace: string, name?: string) =>
  `/api/v1/namespaces/${namespace}/secrets${name ? `/${name}` : ''}`;
export const oauthAppPath = (namespace: string, name: string) =>
  `/apis/${group}/${version}/namespaces/${namespace}/${plural}/${name}`;
export const oauthAppsPath = (namespaces?: string) =>
  namespaces ? `/apis/${group}/${version}/namespaces/${namespaces}/${plural}` : `/apis/${group}/${version}/${plural}`;
export const oauthInstallationsPath = (namespace?: string) =>
  namespace ? `/apis/${group}/${version}/namespaces/${namespace}/${installationPlural}` : `/apis/${group}/${version}/${installationPlural}`;
const oauthInstallationPath = (namespace: string, name: string) => `${oauthInstallationsPath(namespace)}/${name}`;

/** The two kinds the operator writes status and finalizers on. */
export type OwnKind = typeof kind | typeof installationKind;
const pathOf = (ownKind: OwnKind, namespace: string, name: string) => (ownKind === kind ? oauthAppPath(namespace, name) : oauthInstallationPath(namespace, name));

export const fieldManager = 'oauthapp-operator';

/** The annotation `kubectl rollout restart` sets, so both restart the same way. */
export const restartedAtAnnotation = 'kubectl.kubernetes.io/restartedAt';

export interface EventInput {
  regarding: { kind: string; apiVersion: string; namespace: string; name: string; uid: string; resourceVersion?: string };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  action: string;
  reportingInstance: string;
  /** The same Event seen `count` (at least 2) times, the last at `lastObservedTime` (events.k8s.io/v1 series). */
  series?: { count: number; lastObservedTime: Date };
}

/** MicroTime, as events.k8s.io/v1 wants it. */
const microTime = (time: Date) => time.toISOString().replace(/Z$/, '000Z');

export class KubeClient {
  private readonly http: KubeHTTP;

  constructor(http: KubeHTTP) {
    this.http = http;
  }

  getSecret(namespace: string, name: string): Promise<Secret | undefined> {
    return this.getIfFound<Secret>(secretPath(namespace, name));
  }

  createSecret(namespace: string, secret: Secret): Promise<Secret> {
    return this.http.json<Secret>({
      method: 'POST',
      path: secretPath(namespace),
      query: { fieldManager },
      body: { apiVersion: 'v1', kind: 'Secret', ...secret },
    });
  }

  /** PUT with the object's resourceVersion: fails with Conflict if anyone wrote since it was read. */
  replaceSecret(namespace: string, secret: Secret): Promise<Secret> {
    return this.http.json<Secret>({
      method: 'PUT',
      path: secretPath(namespace, secret.metadata.name),
      query: { fieldManager },
      body: { apiVersion: 'v1', kind: 'Secret', ...secret },
    });
  }

  async deleteSecret(namespace: string, name: string, preconditions?: { uid?: string; resourceVersion?: string }): Promise<void> {
    try {
      await this.http.json({
        method: 'DELETE',
        path: secretPath(namespace, name),
        body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(preconditions ? { preconditions } : {}) },
      });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /** A live read of an OAuthApp, for checks the cache may be too late for. */
  getOAuthApp(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.getIfFound<KubeObject>(oauthAppPath(namespace, name));
  }

  private async getIfFound<T>(path: string): Promise<T | undefined> {
    try {
      return await this.http.json<T>({ method: 'GET', path });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Sets the finalizer list, guarded by resourceVersion so a concurrent change is not lost. */
  setFinalizers(ownKind: OwnKind, namespace: string, name: string, finalizers: string[], resourceVersion: string): Promise<KubeObject> {
    return this.http.json<KubeObject>({
      method: 'PATCH',
      path: pathOf(ownKind, namespace, name),
      contentType: 'application/merge-patch+json',
      query: { fieldManager },
      body: { metadata: { finalizers, resourceVersion } },
    });
  }

  patchStatus(ownKind: OwnKind, namespace: string, name: string, status: Record<string, unknown>): Promise<KubeObject> {
    return this.http.json<KubeObject>({
      method: 'PATCH',
      path: `${pathOf(ownKind, namespace, name)}/status`,
      contentType: 'application/merge-patch+json',
      query: { fieldManager },
      body: { apiVersion, kind: ownKind, status },
    });
  }

  getOAuthInstallation(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.getIfFound<KubeObject>(oauthInstallationPath(namespace, name));
  }

  createOAuthInstallation(namespace: string, installation: KubeObject): Promise<KubeObject> {
    return this.http.json<KubeObject>({ method: 'POST', path: oauthInstallationsPath(namespace), query: { fieldManager }, body: installation });
  }

  /** Deletes an installation (its finalizer then revokes its grant); false when it is gone already. */
  async deleteOAuthInstallation(namespace: string, name: string): Promise<boolean> {
    try {
      await this.http.json({ method: 'DELETE', path: oauthInstallationPath(namespace, name) });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * `kubectl rollout restart`: a new pod-template annotation makes the workload controller roll
   * its pods. Patching the value it already has changes nothing, so a repeat is harmless.
   * Returns false when the workload does not exist.
   */
  async restartWorkload(namespace: string, kind: 'Deployment' | 'StatefulSet' | 'DaemonSet', name: string, restartedAt: string): Promise<boolean> {
    const resource = { Deployment: 'deployments', StatefulSet: 'statefulsets', DaemonSet: 'daemonsets' }[kind];
    try {
      await this.http.json({
        method: 'PATCH',
        path: `/apis/apps/v1/namespaces/${namespace}/${resource}/${name}`,
        contentType: 'application/merge-patch+json',
        query: { fieldManager },
        body: { spec: { template: { metadata: { annotations: { [restartedAtAnnotation]: restartedAt } } } } },
      });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** `now`: when the Event (the first of its series) was observed. */
  async createEvent(namespace: string, event: EventInput, now: Date): Promise<void> {
    const name = `${event.regarding.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    await this.http.json({
      method: 'POST',
      path: `/apis/events.k8s.io/v1/namespaces/${namespace}/events`,
      body: {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name, namespace },
        eventTime: microTime(now),
        ...(event.series ? { series: { count: event.series.count, lastObservedTime: microTime(event.series.lastObservedTime) } } : {}),
        regarding: event.regarding,
        type: event.type,
        reason: event.reason,
        note: event.message.slice(0, 1024),
        action: event.action,
        reportingController: 'oauthapp.dev/oauthapp-operator',
        reportingInstance: event.reportingInstance,
      },
    });
  }
}
