// A cache of one kind of object kept current by list + watch, like client-go's reflector:
// resumes watches from the last resourceVersion seen (bookmarks included, also after a watch
// error), relists on 410 Gone and periodically, restarts a watch that goes silent, and backs off
// on errors instead of stopping. Our own writes go into the cache at once (write-through) and are
// told to handlers like any other change; nothing older (a list item, a late watch event or
// response) replaces a newer copy of the same object (same uid).
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
  /**
   * Write-through: puts an object one of our writes (or live reads) returned into the cache and,
   * when it is newer than the cached copy, tells handlers ('added' or 'updated', old = cached).
   * The response may carry other people's changes made just before the write: their watch events
   * are then not newer than the cache, so this event is the only news of them.
   */
  observeWrite(object: T): void;
  observeDelete(namespace: string | undefined, name: string): void;
  hasSynced(): boolean;
  /** Resolves once the first list is in the cache. */
  readonly synced: Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export interface InformerOptions<T extends KubeObject = KubeObject> {
  /** For logs and metrics: "oauthapps", "source-secrets", … */
  name: string;
  http: Pick<KubeHTTP, 'json' | 'stream'>;
  /** Collection path, e.g. /api/v1/secrets or /api/v1/namespaces/x/secrets. */
  path: string;
  labelSelector?: string;
  /** Cache metadata only (PartialObjectMetadata): for objects whose data is none of our business. */
  metadataOnly?: boolean;
  /**
   * What of each object is kept (after managedFields are dropped), for list items, watch events and
   * write-through alike: e.g. the data of Secrets that match the selector but are not ours.
   */
  keep?: (object: T) => T;
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
  private readonly options: Required<Omit<InformerOptions<T>, 'labelSelector' | 'onListed' | 'keep'>> & Pick<InformerOptions<T>, 'labelSelector' | 'onListed' | 'keep'>;
  private readonly store = new Map<string, T>();
  /**
   * uids of objects seen deleted since the last list, by key: a late response to a write made
   * just before the delete must not bring the object back.
   */
  private readonly deletedUids = new Map<string, string>();
  /** Where the next watch starts: the last resourceVersion listed or seen; undefined: relist. */
  private resumeFrom: string | undefined;
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private syncedResolve!: () => void;
  readonly synced: Promise<void> = new Promise((resolve) => (this.syncedResolve = resolve));
  private isSynced = false;

  constructor(options: InformerOptions<T>) {
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
    while (!this.abort.signal.aborted) {
      try {
        if (this.resumeFrom === undefined) {
          this.resumeFrom = await this.relist();
          failures = 0;
        }
        // A watch the apiserver accepted ends the run of failures: backoff is for a cluster that
        // keeps refusing, not for one whose connections drop now and then.
        await this.watch(() => (failures = 0));
      } catch (error) {
        if (this.abort.signal.aborted) break;
        if (isGone(error)) {
          logger.info({ informer: name }, 'watch resourceVersion expired; relisting');
          this.resumeFrom = undefined;
          continue;
        }
        failures += 1;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
        logger.warn({ informer: name, err: describe(error), retryInMs: Math.round(delay) }, 'list/watch failed; retrying');
        // A watch that failed mid-way resumes from the last resourceVersion it saw (resumeFrom
        // moves with every event); a failed list starts over.
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
      for (const item of page.items ?? []) listed.set(objectKey(item.metadata.namespace, item.metadata.name), this.kept(item));
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion ?? resourceVersion;
    } while (continueToken);
    this.options.onListed?.(this.options.name);

    // The list is a snapshot at `resourceVersion`; our own writes may have put newer copies in the
    // cache meanwhile (or objects created after it). Those stay: the watch from the snapshot
    // brings their events, which then change nothing, and any later change or delete.
    this.deletedUids.clear();
    for (const [key, old] of this.store) {
      if (!listed.has(key) && !isOlder(resourceVersion, old.metadata.resourceVersion)) {
        this.store.delete(key);
        this.emit('deleted', old);
      }
    }
    for (const [key, item] of listed) {
      const old = this.store.get(key);
      if (old && sameUid(old, item) && isOlder(item.metadata.resourceVersion, old.metadata.resourceVersion)) continue;
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
   * Watches from `resumeFrom` until the server ends the watch, it stalls, or a relist is due (then
   * clears `resumeFrom`). `resumeFrom` follows every event, so a watch that throws is resumed from
   * the last one seen rather than from where it started (which the apiserver may have compacted
   * away by then: a 410 and a full relist).
   */
  private async watch(onEstablished: () => void): Promise<void> {
    const { http, path, labelSelector, metadataOnly, stallTimeoutMs, relistIntervalMs, logger, name } = this.options;
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
            resourceVersion: this.resumeFrom,
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
          if (event.type !== 'BOOKMARK') this.apply(event);
          this.resumeFrom = event.object.metadata.resourceVersion ?? this.resumeFrom;
        }
      } catch (error) {
        if (!stalled) throw error;
      } finally {
        clearTimeout(stallTimer);
        this.abort.signal.removeEventListener('abort', onStop);
      }
      if (stalled) logger.warn({ informer: name, stallTimeoutMs }, 'watch stalled; restarting it');
    }
    if (!this.abort.signal.aborted) this.resumeFrom = undefined;
  }

  /**
   * Write-through: the object our own write returned goes into the cache at once, so the next
   * reconcile does not act on the version before it. Handlers hear of it as of any change: the
   * response can carry someone else's change made while our write was in flight (an unguarded
   * patch applies on top of it), and that change's watch event, older than our write, will be
   * dropped. Handlers decide whether the difference matters (our own echo usually does not).
   * Handlers run inside the write's call: they must only take note (enqueue), not do I/O.
   */
  observeWrite(object: T): void {
    const key = objectKey(object.metadata.namespace, object.metadata.name);
    const cached = this.store.get(key);
    if (cached ? !isNewer(object.metadata.resourceVersion, cached.metadata.resourceVersion) : this.seenDeleted(key, object)) return;
    const written = this.kept(object);
    this.store.set(key, written);
    this.deletedUids.delete(key);
    this.emit(cached ? 'updated' : 'added', written, cached);
  }

  observeDelete(namespace: string | undefined, name: string): void {
    const key = objectKey(namespace, name);
    const uid = this.store.get(key)?.metadata.uid;
    this.store.delete(key);
    if (uid) this.deletedUids.set(key, uid);
  }

  private apply(event: WatchEvent<T>): void {
    const key = objectKey(event.object.metadata.namespace, event.object.metadata.name);
    const old = this.store.get(key);
    if (event.type === 'DELETED') {
      // The cached copy may be newer: our write re-created the object (another uid) or wrote it
      // after the version this event removes.
      if (old && (!sameUid(old, event.object) || isOlder(event.object.metadata.resourceVersion, old.metadata.resourceVersion))) return;
      this.store.delete(key);
      if (event.object.metadata.uid) this.deletedUids.set(key, event.object.metadata.uid);
      this.emit('deleted', event.object);
      return;
    }
    if (old && !isNewer(event.object.metadata.resourceVersion, old.metadata.resourceVersion)) return;
    const object = this.kept(event.object);
    this.store.set(key, object);
    this.deletedUids.delete(key);
    this.emit(old ? 'updated' : 'added', object, old);
  }

  private kept(object: T): T {
    const { keep } = this.options;
    return keep ? keep(trimmed(object)) : trimmed(object);
  }

  /** Whether `object` is a copy of one the cache has seen deleted (a write response arriving late). */
  private seenDeleted(key: string, object: T): boolean {
    const uid = this.deletedUids.get(key);
    return uid !== undefined && uid === object.metadata.uid;
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

/** Only where both parse as integers: whether `candidate` is strictly older than `current`. */
function isOlder(candidate: string | undefined, current: string | undefined): boolean {
  return !!candidate && !!current && /^\d+$/.test(candidate) && /^\d+$/.test(current) && BigInt(candidate) < BigInt(current);
}

/** Two copies of the same object, not of a deleted one and its re-creation under the same name. */
function sameUid(a: KubeObject, b: KubeObject): boolean {
  return a.metadata.uid === undefined || b.metadata.uid === undefined || a.metadata.uid === b.metadata.uid;
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

/**
 * A cache that keeps nothing: for a process that writes objects of a kind without watching them
 * (the callback component's state Secrets: it reads each one live and may not list them).
 */
export function noCache<T extends KubeObject>(): ObjectCache<T> {
  return {
    get: () => undefined,
    list: () => [],
    on: () => undefined,
    observeWrite: () => undefined,
    observeDelete: () => undefined,
    hasSynced: () => true,
    synced: Promise.resolve(),
    start: () => undefined,
    stop: async () => undefined,
  };
}
