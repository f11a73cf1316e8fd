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
import { intern } from './intern.ts';
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
  /** Keep metadata.creationTimestamp (dropped by default: most caches never read it). */
  keepCreationTimestamp?: boolean;
  /**
   * What of each object is kept (after managedFields are dropped), for list items, watch events and
   * write-through alike: e.g. the data of Secrets that match the selector but are not ours.
   */
  keep?: (object: T) => T;
  /**
   * How the store holds an object, when smaller than the object itself: `pack` makes what is stored
   * (e.g. the resourceVersion alone), `unpack` the object handed out again from it, its namespace
   * and name. For caches of tens of thousands of objects of which only a few fields are read.
   */
  packing?: Packing<T>;
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
  private readonly options: Required<Omit<InformerOptions<T>, 'labelSelector' | 'onListed' | 'keep' | 'packing'>> & Pick<InformerOptions<T>, 'labelSelector' | 'onListed' | 'keep'>;
  private readonly store: ObjectStore<T>;
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
    const { packing, ...rest } = options;
    this.options = { stallTimeoutMs: 150_000, relistIntervalMs: 30 * 60_000, metadataOnly: false, keepCreationTimestamp: false, pageSize: 500, ...rest };
    this.store = new ObjectStore<T>(packing);
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(namespace, name);
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
        const delay = listWatchBackoffMs(failures) * (0.5 + Math.random() / 2);
        logger.warn({ informer: name, err: describe(error), retryInMs: Math.round(delay) }, 'list/watch failed; retrying');
        // A watch that failed mid-way resumes from the last resourceVersion it saw (resumeFrom
        // moves with every event); a failed list starts over.
        await sleep(delay, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  /**
   * Lists everything in pages and merges each page into the store as it arrives, telling handlers
   * what changed; once the last page is in, removes what the list no longer has. Only one page
   * and the listed keys are held besides the store: a relist of 60,000 Secrets does not build a
   * second store next to the first (which doubled the heap every 30 minutes).
   */
  private async relist(): Promise<string> {
    const { http, path, labelSelector, metadataOnly, pageSize } = this.options;
    const listed = new ObjectStore<true>();
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
      // Every page of a list is a view of one snapshot, at the first page's resourceVersion.
      resourceVersion = page.metadata.resourceVersion ?? resourceVersion;
      // An empty PartialObjectMetadataList comes with "items": null.
      for (const item of page.items ?? []) {
        listed.set(item.metadata.namespace, item.metadata.name, true);
        this.merge(item);
      }
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
    this.options.onListed?.(this.options.name);

    // The list is a snapshot at `resourceVersion`; our own writes may have put newer copies in the
    // cache meanwhile (or objects created after it). Those stay: the watch from the snapshot
    // brings their events, which then change nothing, and any later change or delete.
    this.deletedUids.clear();
    // Deleting from the store's maps while iterating them is safe: no copy of 60,000 objects.
    for (const old of this.store.values()) {
      const { namespace, name } = old.metadata;
      if (!listed.get(namespace, name) && !isOlder(resourceVersion, old.metadata.resourceVersion)) {
        this.store.delete(namespace, name);
        this.emit('deleted', old);
      }
    }
    if (!this.isSynced) {
      this.isSynced = true;
      this.syncedResolve();
    }
    return resourceVersion;
  }

  /** A listed item: replaces the cached copy unless that is newer (our write), and says what changed. */
  private merge(listedItem: T): void {
    const old = this.store.get(listedItem.metadata.namespace, listedItem.metadata.name);
    if (old && sameUid(old, listedItem) && isOlder(listedItem.metadata.resourceVersion, old.metadata.resourceVersion)) return;
    if (old && old.metadata.resourceVersion === listedItem.metadata.resourceVersion && sameUid(old, listedItem)) return;
    const item = this.kept(listedItem);
    this.store.set(item.metadata.namespace, item.metadata.name, item);
    if (!old) this.emit('added', item);
    else this.emit('updated', item, old);
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
    const cached = this.store.get(object.metadata.namespace, object.metadata.name);
    if (cached ? !isNewer(object.metadata.resourceVersion, cached.metadata.resourceVersion) : this.seenDeleted(key, object)) return;
    const written = this.kept(object);
    this.store.set(written.metadata.namespace, written.metadata.name, written);
    this.deletedUids.delete(key);
    this.emit(cached ? 'updated' : 'added', written, cached);
  }

  observeDelete(namespace: string | undefined, name: string): void {
    const key = objectKey(namespace, name);
    const uid = this.store.get(namespace, name)?.metadata.uid;
    this.store.delete(namespace, name);
    if (uid) this.deletedUids.set(key, uid);
  }

  private apply(event: WatchEvent<T>): void {
    const { namespace, name } = event.object.metadata;
    const key = objectKey(namespace, name);
    const old = this.store.get(namespace, name);
    if (event.type === 'DELETED') {
      // The cached copy may be newer: our write re-created the object (another uid) or wrote it
      // after the version this event removes.
      if (old && (!sameUid(old, event.object) || isOlder(event.object.metadata.resourceVersion, old.metadata.resourceVersion))) return;
      this.store.delete(namespace, name);
      if (event.object.metadata.uid) this.deletedUids.set(key, event.object.metadata.uid);
      // What the cache would have kept: handlers never see more of an object than the cache holds.
      this.emit('deleted', this.kept(event.object));
      return;
    }
    if (old && !isNewer(event.object.metadata.resourceVersion, old.metadata.resourceVersion)) return;
    const object = this.kept(event.object);
    this.store.set(object.metadata.namespace, object.metadata.name, object);
    this.deletedUids.delete(key);
    this.emit(old ? 'updated' : 'added', object, old);
  }

  private kept(object: T): T {
    const { keep, keepCreationTimestamp } = this.options;
    const trim = trimmed(object, keepCreationTimestamp);
    return keep ? keep(trim) : trim;
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

/**
 * Before the next list/watch after `failures` in a row: doubling from 1 s, at most 4 s (before
 * jitter). A cache is one connection, not one per app, so retrying every few seconds through an
 * outage costs the apiserver little, while a cache still backing off after the apiserver is back
 * keeps every reconcile that reads it behind (client-go's reflector waits up to 30 s; the
 * randomized run saw user changes acted on 14 s after the faults ended).
 */
export const listWatchBackoffMs = (failures: number): number => Math.min(4_000, 500 * 2 ** Math.min(Math.max(failures, 1), 3));

/**
 * Objects by namespace, then name. The inner maps' keys are the objects' own name strings, so the
 * store holds no key strings of its own (a "namespace/name" key per object is ~70 bytes, at 60,000
 * Secrets 4 MiB).
 */
export interface Packing<T> {
  pack(object: T): unknown;
  unpack(namespace: string | undefined, name: string, packed: unknown): T;
}

class ObjectStore<T> {
  private readonly byNamespace = new Map<string, Map<string, unknown>>();
  private readonly packing: Packing<T> | undefined;
  private count = 0;

  constructor(packing?: Packing<T>) {
    this.packing = packing;
  }

  get size(): number {
    return this.count;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    const stored = this.byNamespace.get(namespace ?? '')?.get(name);
    return stored === undefined || !this.packing ? (stored as T | undefined) : this.packing.unpack(namespace, name, stored);
  }

  set(namespace: string | undefined, name: string, value: T): void {
    let names = this.byNamespace.get(namespace ?? '');
    if (!names) this.byNamespace.set(namespace ?? '', (names = new Map()));
    if (!names.has(name)) this.count += 1;
    names.set(name, this.packing ? this.packing.pack(value) : value);
  }

  delete(namespace: string | undefined, name: string): void {
    const names = this.byNamespace.get(namespace ?? '');
    if (!names?.delete(name)) return;
    this.count -= 1;
    if (names.size === 0) this.byNamespace.delete(namespace ?? '');
  }

  *values(): IterableIterator<T> {
    const { packing } = this;
    for (const [namespace, names] of this.byNamespace) {
      if (!packing) yield* names.values() as IterableIterator<T>;
      else for (const [name, stored] of names) yield packing.unpack(namespace || undefined, name, stored);
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
 * reads it; controller-runtime drops it from its caches for the same reason. creationTimestamp is
 * read only where a cache asks for it. Values that repeat across objects (namespace, apiVersion, kind, type, label
 * values other than uids, finalizers, owners' apiVersion and kind) are interned.
 */
function trimmed<T extends KubeObject>(object: T, keepCreationTimestamp: boolean): T {
  const { managedFields: _dropped, creationTimestamp, ...metadata } = object.metadata as KubeObject['metadata'] & { managedFields?: unknown };
  if (keepCreationTimestamp && creationTimestamp !== undefined) (metadata as KubeObject['metadata']).creationTimestamp = creationTimestamp;
  if (metadata.namespace !== undefined) metadata.namespace = intern(metadata.namespace);
  if (metadata.labels) {
    for (const [key, value] of Object.entries(metadata.labels)) if (!key.endsWith('uid')) metadata.labels[key] = intern(value);
  }
  if (metadata.finalizers) metadata.finalizers = metadata.finalizers.map(intern);
  for (const owner of metadata.ownerReferences ?? []) {
    owner.apiVersion = intern(owner.apiVersion);
    owner.kind = intern(owner.kind);
  }
  const kept = { ...object, metadata };
  if (kept.apiVersion !== undefined) kept.apiVersion = intern(kept.apiVersion);
  if (kept.kind !== undefined) kept.kind = intern(kept.kind);
  if ('type' in kept && typeof kept.type === 'string') (kept as { type: string }).type = intern(kept.type);
  return kept;
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
