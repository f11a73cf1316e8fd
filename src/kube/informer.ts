// A cache of one kind of object kept current by list + watch, like client-go's reflector:
// resumes watches from the last resourceVersion (bookmarks included), relists on 410 Gone and
// periodically, restarts a watch that goes silent, and backs off on errors instead of stopping.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeHTTP } from './http.ts';
import { isGone, KubeAPIError } from './errors.ts';
import type { KubeObject, ObjectList, WatchEvent } from './objects.ts';
import { objectKey } from './objects.ts';
import type { Logger } from '../log.ts';

export type InformerHandler<T extends KubeObject> = (event: 'added' | 'updated' | 'deleted', object: T, old?: T) => void;

/** What reconcilers need of a cache: lookups, change notifications and write-through. */
export interface ObjectCache<T extends KubeObject> {
  get(namespace: string | undefined, name: string): T | undefined;
  list(): T[];
  on(handler: InformerHandler<T>): void;
  observeWrite(object: T): void;
  observeDelete(namespace: string | undefined, name: string): void;
  hasSynced(): boolean;
  /** Resolves once the first list is in the cache. */
  readonly synced: Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export interface InformerOptions {
  /** For logs and metrics: "oauthapps", "source-secrets", … */
  name: string;
  http: KubeHTTP;
  /** Collection path, e.g. /api/v1/secrets or /api/v1/namespaces/x/secrets. */
  path: string;
  labelSelector?: string;
  /** Cache metadata only (PartialObjectMetadata): for objects whose data is none of our business. */
  metadataOnly?: boolean;
  logger: Logger;
  /** A watch with no event and no bookmark for this long is assumed stalled and restarted. */
  stallTimeoutMs?: number;
  /** Full relist period, a guard against missed events; 0 disables it. */
  relistIntervalMs?: number;
  pageSize?: number;
  onListed?: (name: string) => void;
}

const metadataListAccept = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
const metadataWatchAccept = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

export class Informer<T extends KubeObject> implements ObjectCache<T> {
  private readonly options: Required<Omit<InformerOptions, 'labelSelector' | 'onListed'>> & Pick<InformerOptions, 'labelSelector' | 'onListed'>;
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private syncedResolve!: () => void;
  readonly synced: Promise<void> = new Promise((resolve) => (this.syncedResolve = resolve));
  private isSynced = false;

  constructor(options: InformerOptions) {
    this.options = { stallTimeoutMs: 150_000, relistIntervalMs: 30 * 60_000, metadataOnly: false, pageSize: 500, ...options };
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(objectKey(namespace, name));
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get size(): number {
    return this.store.size;
  }

  hasSynced(): boolean {
    return this.isSynced;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const { logger, name } = this.options;
    let failures = 0;
    let resourceVersion: string | undefined;
    while (!this.abort.signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.relist();
          failures = 0;
        }
        // A watch the apiserver accepted ends the run of failures: backoff is for a cluster that
        // keeps refusing, not for one whose connections drop now and then.
        resourceVersion = await this.watch(resourceVersion, () => (failures = 0));
      } catch (error) {
        if (this.abort.signal.aborted) break;
        if (isGone(error)) {
          logger.info({ informer: name }, 'watch resourceVersion expired; relisting');
          resourceVersion = undefined;
          continue;
        }
        failures += 1;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
        logger.warn({ informer: name, err: describe(error), retryInMs: Math.round(delay) }, 'list/watch failed; retrying');
        // A watch that failed mid-way resumes from where it was; a failed list starts over.
        await sleep(delay, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  /** Lists everything (in pages), replaces the store and tells handlers what changed. */
  private async relist(): Promise<string> {
    const { http, path, labelSelector, metadataOnly, pageSize } = this.options;
    const listed = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await http.json<ObjectList<T>>({
        method: 'GET',
        path,
        query: { labelSelector, limit: pageSize, continue: continueToken },
        ...(metadataOnly ? { accept: metadataListAccept } : {}),
        signal: this.abort.signal,
      });
      // An empty PartialObjectMetadataList comes with "items": null.
      for (const item of page.items ?? []) listed.set(objectKey(item.metadata.namespace, item.metadata.name), trimmed(item));
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion ?? resourceVersion;
    } while (continueToken);
    this.options.onListed?.(this.options.name);

    for (const [key, old] of this.store) {
      if (!listed.has(key)) {
        this.store.delete(key);
        this.emit('deleted', old);
      }
    }
    for (const [key, item] of listed) {
      const old = this.store.get(key);
      this.store.set(key, item);
      if (!old) this.emit('added', item);
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit('updated', item, old);
    }
    if (!this.isSynced) {
      this.isSynced = true;
      this.syncedResolve();
    }
    return resourceVersion;
  }

  /**
   * Watches from resourceVersion until the server ends the watch, it stalls, or a relist is due.
   * Returns the resourceVersion to resume from (undefined: relist).
   */
  private async watch(fromResourceVersion: string, onEstablished: () => void): Promise<string | undefined> {
    const { http, path, labelSelector, metadataOnly, stallTimeoutMs, relistIntervalMs, logger, name } = this.options;
    let resourceVersion = fromResourceVersion;
    const relistAt = relistIntervalMs > 0 ? Date.now() + relistIntervalMs * (0.9 + Math.random() * 0.2) : Infinity;
    while (!this.abort.signal.aborted && Date.now() < relistAt) {
      const watchAbort = new AbortController();
      const onStop = () => watchAbort.abort();
      this.abort.signal.addEventListener('abort', onStop, { once: true });
      let stalled = false;
      let stallTimer = setTimeout(() => undefined, 0);
      const armStallTimer = () => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(() => {
          stalled = true;
          watchAbort.abort();
        }, stallTimeoutMs);
      };
      try {
        armStallTimer();
        const response = await http.stream({
          method: 'GET',
          path,
          query: {
            watch: true,
            resourceVersion,
            allowWatchBookmarks: true,
            labelSelector,
            // The server closes the watch after this long; we resume from the last resourceVersion.
            timeoutSeconds: Math.round(240 + Math.random() * 120),
          },
          ...(metadataOnly ? { accept: metadataWatchAccept } : {}),
          signal: watchAbort.signal,
        });
        onEstablished();
        for await (const event of watchEvents<T>(response.body)) {
          armStallTimer();
          if (event.type === 'ERROR') {
            const status = event.object as unknown as { code?: number; reason?: string; message?: string };
            throw new KubeAPIError('WATCH', path, status.code ?? 500, status.code === 410 ? 'Gone' : 'Unknown', status.message ?? 'watch error');
          }
          resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
          if (event.type !== 'BOOKMARK') this.apply(event);
        }
      } catch (error) {
        if (!stalled) throw error;
      } finally {
        clearTimeout(stallTimer);
        this.abort.signal.removeEventListener('abort', onStop);
      }
      if (stalled) logger.warn({ informer: name, stallTimeoutMs }, 'watch stalled; restarting it');
    }
    return this.abort.signal.aborted ? resourceVersion : undefined;
  }

  /**
   * Write-through: the object our own write returned goes into the cache at once, so the next
   * reconcile does not act on the version before it; its watch event then changes nothing.
   */
  observeWrite(object: T): void {
    const key = objectKey(object.metadata.namespace, object.metadata.name);
    const cached = this.store.get(key);
    if (!cached || isNewer(object.metadata.resourceVersion, cached.metadata.resourceVersion)) this.store.set(key, trimmed(object));
  }

  observeDelete(namespace: string | undefined, name: string): void {
    this.store.delete(objectKey(namespace, name));
  }

  private apply(event: WatchEvent<T>): void {
    const key = objectKey(event.object.metadata.namespace, event.object.metadata.name);
    const old = this.store.get(key);
    if (event.type === 'DELETED') {
      this.store.delete(key);
      this.emit('deleted', event.object);
      return;
    }
    if (old && !isNewer(event.object.metadata.resourceVersion, old.metadata.resourceVersion)) return;
    const object = trimmed(event.object);
    this.store.set(key, object);
    this.emit(old ? 'updated' : 'added', object, old);
  }

  private emit(event: 'added' | 'updated' | 'deleted', object: T, old?: T): void {
    for (const handler of this.handlers) {
      try {
        handler(event, object, old);
      } catch (error) {
        this.options.logger.error({ informer: this.options.name, err: describe(error) }, 'informer handler failed');
      }
    }
  }
}

async function* watchEvents<T extends KubeObject>(body: ReadableStream<Uint8Array> | null): AsyncGenerator<WatchEvent<T>> {
  if (!body) return;
  let buffered = '';
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) yield JSON.parse(line) as WatchEvent<T>;
      newline = buffered.indexOf('\n');
    }
  }
}

/**
 * managedFields (server-side apply bookkeeping) is about 40% of a cached object and nothing here
 * reads it; controller-runtime drops it from its caches for the same reason.
 */
function trimmed<T extends KubeObject>(object: T): T {
  if (!('managedFields' in object.metadata)) return object;
  const { managedFields: _dropped, ...metadata } = object.metadata as KubeObject['metadata'] & { managedFields?: unknown };
  return { ...object, metadata };
}

/**
 * resourceVersions are opaque to clients in general, but etcd's are increasing integers; where
 * both parse as integers the larger is newer, otherwise any difference counts as newer.
 */
function isNewer(candidate: string | undefined, current: string | undefined): boolean {
  if (candidate === current) return false;
  if (candidate && current && /^\d+$/.test(candidate) && /^\d+$/.test(current)) return BigInt(candidate) > BigInt(current);
  return true;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One cache over several namespaces (the --namespaces flag): an informer per namespace. */
export class NamespacedInformers<T extends KubeObject> implements ObjectCache<T> {
  private readonly byNamespace: Map<string, Informer<T>>;

  readonly synced: Promise<void>;

  constructor(namespaces: readonly string[], make: (namespace: string) => Informer<T>) {
    this.byNamespace = new Map(namespaces.map((namespace) => [namespace, make(namespace)]));
    this.synced = Promise.all([...this.byNamespace.values()].map((informer) => informer.synced)).then(() => undefined);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return namespace === undefined ? undefined : this.byNamespace.get(namespace)?.get(namespace, name);
  }

  list(): T[] {
    return [...this.byNamespace.values()].flatMap((informer) => informer.list());
  }

  on(handler: InformerHandler<T>): void {
    for (const informer of this.byNamespace.values()) informer.on(handler);
  }

  observeWrite(object: T): void {
    const namespace = object.metadata.namespace;
    if (namespace !== undefined) this.byNamespace.get(namespace)?.observeWrite(object);
  }

  observeDelete(namespace: string | undefined, name: string): void {
    if (namespace !== undefined) this.byNamespace.get(namespace)?.observeDelete(namespace, name);
  }

  hasSynced(): boolean {
    return [...this.byNamespace.values()].every((informer) => informer.hasSynced());
  }

  start(): void {
    for (const informer of this.byNamespace.values()) informer.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((informer) => informer.stop()));
  }
}
