// The informer against a fake apiserver whose lists and watch streams the test hands out: what
// reaches the cache and the handlers from write-through, watch events and relists, and where a
// watch resumes after an error.
import { afterEach, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { Response } from 'undici';
import type { KubeRequest } from '../../../src/kube/http.ts';
import { Informer, NamespacedInformers } from '../../../src/kube/informer.ts';
import type { KubeObject, ObjectList, WatchEvent } from '../../../src/kube/objects.ts';
import { createLogger } from '../../../src/log.ts';
import { appEssentials, enqueueOnChanges, identityOnly, resourceVersionOnly, type Caches } from '../../../src/oauthapp/controller.ts';

type Obj = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

/** One watch the informer opened; the test writes its events and ends or breaks it. */
class WatchStream {
  readonly resourceVersion: string | undefined;
  private readonly controller: ReadableStreamDefaultController<Uint8Array>;

  constructor(resourceVersion: string | undefined, controller: ReadableStreamDefaultController<Uint8Array>) {
    this.resourceVersion = resourceVersion;
    this.controller = controller;
  }

  send(type: WatchEvent<Obj>['type'], object: unknown): void {
    this.controller.enqueue(new TextEncoder().encode(`${JSON.stringify({ type, object })}\n`));
  }

  /** The apiserver ends the watch (its timeoutSeconds ran out). */
  end(): void {
    this.controller.close();
  }

  /** The connection breaks mid-stream (a reset, a dead HTTP/2 connection). */
  fail(): void {
    this.controller.error(new Error('connection reset by peer'));
  }
}

/** The two calls the informer makes: list (json) and watch (stream). */
class FakeAPIServer {
  listCalls = 0;
  /** The continue token of each list request (undefined: a first page). */
  readonly listContinues: Array<string | undefined> = [];
  private readonly lists: Array<ObjectList<Obj>> = [];
  private readonly watches: WatchStream[] = [];
  private wake: () => void = () => undefined;

  queueList(list: ObjectList<Obj>): void {
    this.lists.push(list);
    this.wake();
  }

  readonly json = async <T>(request: KubeRequest): Promise<T> => {
    this.listCalls += 1;
    this.listContinues.push(request.query?.continue === undefined ? undefined : String(request.query.continue));
    for (;;) {
      const list = this.lists.shift();
      if (list) return list as T;
      if (request.signal?.aborted) throw new Error('aborted');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        request.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  };

  readonly stream = async (request: KubeRequest): Promise<Response> => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (started) => void (controller = started) });
    request.signal?.addEventListener('abort', () => {
      try {
        controller.error(new Error('aborted'));
      } catch {
        // already closed
      }
    });
    const resourceVersion = request.query?.resourceVersion;
    this.watches.push(new WatchStream(resourceVersion === undefined ? undefined : String(resourceVersion), controller));
    this.wake();
    return new Response(body);
  };

  /** The n-th watch the informer opened (0-based), once it has. */
  async watch(n: number): Promise<WatchStream> {
    await until(`watch #${n} opened`, () => this.watches.length > n);
    return this.watches[n] as WatchStream;
  }

  get watchCount(): number {
    return this.watches.length;
  }
}

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const object = (name: string, resourceVersion: string, { uid = `uid-${name}`, namespace = 'ns', generation = 1, status = {} } = {}): Obj => ({
  metadata: { name, namespace, uid, resourceVersion, generation },
  status,
});

const list = (resourceVersion: string, ...items: Obj[]): ObjectList<Obj> => ({ metadata: { resourceVersion }, items });
/** One page of a paged list: `next` is the continue token of the page after it. */
const page = (resourceVersion: string, next: string | undefined, ...items: Obj[]): ObjectList<Obj> => ({ metadata: { resourceVersion, ...(next ? { continue: next } : {}) }, items });

const silent = createLogger({ level: 'silent' });
const running: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((informer) => informer.stop()));
});

/** A started, synced informer with its first watch open; `told` lists what handlers heard since. */
async function startInformer(initial: ObjectList<Obj>, namespace = 'ns') {
  const server = new FakeAPIServer();
  server.queueList(initial);
  const informer = new Informer<Obj>({ name: 'test', http: server, path: `/api/v1/namespaces/${namespace}/things`, logger: silent });
  running.push(informer);
  const told: string[] = [];
  informer.on((event, changed, old) => told.push(`${event} ${changed.metadata.name} ${old?.metadata.resourceVersion ?? '-'}→${changed.metadata.resourceVersion}`));
  informer.start();
  await informer.synced;
  const watch = await server.watch(0);
  told.length = 0;
  return { server, informer, told, watch };
}

/** Events are applied in order: once `marker` is in the cache, everything sent before it was seen. */
async function drain(informer: Informer<Obj>, watch: WatchStream, resourceVersion: string): Promise<void> {
  const name = `marker-${resourceVersion}`;
  watch.send('ADDED', object(name, resourceVersion));
  await until(`${name} applied`, () => informer.get('ns', name) !== undefined);
}

const rv = (informer: Informer<Obj>, name: string) => informer.get('ns', name)?.metadata.resourceVersion;

describe('Informer write-through (observeWrite)', () => {
  it('tells handlers of a written object newer than the cached copy, as updated with the cached copy as old', async () => {
    const { informer, told } = await startInformer(list('10', object('a', '5')));

    informer.observeWrite(object('a', '12', { generation: 2 }));

    expect(told).toEqual(['updated a 5→12']);
    expect(rv(informer, 'a')).toBe('12');
  });

  it('tells handlers of a written object it had no copy of, as added', async () => {
    const { informer, told } = await startInformer(list('10'));

    informer.observeWrite(object('b', '12'));

    expect(told).toEqual(['added b -→12']);
  });

  it('tells handlers nothing of a written object that is not newer than the cached copy', async () => {
    const { informer, told } = await startInformer(list('10', object('a', '5')));

    informer.observeWrite(object('a', '5'));
    informer.observeWrite(object('a', '4'));

    expect(told).toEqual([]);
    expect(rv(informer, 'a')).toBe('5');
  });

  it('tells handlers nothing more when the watch event of an observed write arrives', async () => {
    const { informer, told, watch } = await startInformer(list('10', object('a', '5')));
    informer.observeWrite(object('a', '12'));
    told.length = 0;

    watch.send('MODIFIED', object('a', '12'));
    await drain(informer, watch, '13');

    expect(told).toEqual(['added marker-13 -→13']);
  });

  it('does not bring back an object the watch has seen deleted when a write to it answers late', async () => {
    const { informer, told, watch } = await startInformer(list('10', object('a', '5')));
    watch.send('DELETED', object('a', '12'));
    await drain(informer, watch, '13');

    informer.observeWrite(object('a', '11'));

    expect(informer.get('ns', 'a')).toBeUndefined();
    expect(told).toEqual(['deleted a -→12', 'added marker-13 -→13']);
  });

  it('NamespacedInformers hands a write to the namespace informer, whose handlers hear of it', async () => {
    const servers = new Map([['ns', new FakeAPIServer()], ['other', new FakeAPIServer()]]);
    servers.get('ns')?.queueList(list('10', object('a', '5')));
    servers.get('other')?.queueList(list('10'));
    const informers = new NamespacedInformers<Obj>(['ns', 'other'], (namespace) =>
      new Informer<Obj>({ name: namespace, http: servers.get(namespace) as FakeAPIServer, path: `/api/v1/namespaces/${namespace}/things`, logger: silent }),
    );
    running.push(informers);
    const told: string[] = [];
    informers.on((event, changed, old) => told.push(`${event} ${changed.metadata.name} ${old?.metadata.resourceVersion ?? '-'}→${changed.metadata.resourceVersion}`));
    informers.start();
    await informers.synced;
    told.length = 0;

    informers.observeWrite(object('a', '12'));

    expect(told).toEqual(['updated a 5→12']);
  });
});

describe('Informer watch progress', () => {
  it('resumes a watch that broke from the last resourceVersion it saw, without relisting', async () => {
    const { server, informer, watch } = await startInformer(list('10', object('a', '5')));
    expect(watch.resourceVersion).toBe('10');
    watch.send('MODIFIED', object('a', '11'));
    watch.send('BOOKMARK', { metadata: { resourceVersion: '15' } });
    await drain(informer, watch, '16');

    watch.fail();
    const resumed = await server.watch(1);

    expect(resumed.resourceVersion).toBe('16');
    expect(server.listCalls).toBe(1);
  });

  it('relists when the apiserver says the resourceVersion is gone (410), and watches from the new list', async () => {
    const { server, informer, watch } = await startInformer(list('10', object('a', '5')));
    server.queueList(list('40', object('a', '33')));

    watch.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    const next = await server.watch(1);

    expect(server.listCalls).toBe(2);
    expect(next.resourceVersion).toBe('40');
    expect(rv(informer, 'a')).toBe('33');
  });
});

describe('Informer relist', () => {
  /** A 410 makes the informer relist; resolves once it watches again (the relist is applied). */
  async function relist(server: FakeAPIServer, watch: WatchStream, listed: ObjectList<Obj>): Promise<void> {
    const watches = server.watchCount;
    server.queueList(listed);
    watch.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    await server.watch(watches);
  }

  it('keeps a cached object newer than the listed item (our own write)', async () => {
    const { server, informer, told, watch } = await startInformer(list('10', object('a', '5')));
    informer.observeWrite(object('a', '30'));
    told.length = 0;

    await relist(server, watch, list('25', object('a', '20')));

    expect(rv(informer, 'a')).toBe('30');
    expect(told).toEqual([]);
  });

  it('replaces the cached object with the listed one when their uids differ (deleted and re-created)', async () => {
    const { server, informer, told, watch } = await startInformer(list('10', object('a', '5')));
    informer.observeWrite(object('a', '30'));
    told.length = 0;

    await relist(server, watch, list('25', object('a', '20', { uid: 'uid-a-recreated' })));

    expect(informer.get('ns', 'a')?.metadata).toMatchObject({ uid: 'uid-a-recreated', resourceVersion: '20' });
    expect(told).toEqual(['updated a 30→20']);
  });

  it('keeps an object our write created after the snapshot the list was taken at', async () => {
    const { server, informer, told, watch } = await startInformer(list('10'));
    informer.observeWrite(object('b', '30'));
    told.length = 0;

    await relist(server, watch, list('25'));

    expect(rv(informer, 'b')).toBe('30');
    expect(told).toEqual([]);
  });

  it('removes a cached object the list no longer has and tells handlers', async () => {
    const { server, informer, told, watch } = await startInformer(list('10', object('a', '5')));

    await relist(server, watch, list('25'));

    expect(informer.get('ns', 'a')).toBeUndefined();
    expect(told).toEqual(['deleted a -→5']);
  });
});

describe('Informer relist in pages', () => {
  /** A 410 makes the informer relist; the pages are handed out one at a time by the test. */
  function startRelist(watch: WatchStream): void {
    watch.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
  }

  it('tells handlers only what changed: nothing for unchanged objects, one update, one delete, across pages', async () => {
    const { server, informer, told, watch } = await startInformer(list('10', object('a', '1'), object('b', '2'), object('c', '3'), object('d', '4'), object('e', '5')));

    startRelist(watch);
    server.queueList(page('20', 'p2', object('a', '1'), object('b', '2')));
    server.queueList(page('20', 'p3', object('c', '15')));
    server.queueList(page('20', undefined, object('e', '5'), object('f', '16')));
    await server.watch(1);

    expect(told).toEqual(['updated c 3→15', 'added f -→16', 'deleted d -→4']);
    expect(server.listContinues.slice(1)).toEqual([undefined, 'p2', 'p3']);
    expect(informer.list().map((item) => `${item.metadata.name}@${item.metadata.resourceVersion}`).sort()).toEqual(['a@1', 'b@2', 'c@15', 'e@5', 'f@16']);
  });

  it('merges each page as it arrives, and deletes nothing before the last page is in', async () => {
    const { server, informer, told, watch } = await startInformer(list('10', object('a', '1'), object('z', '2')));

    startRelist(watch);
    server.queueList(page('20', 'p2', object('a', '12')));
    await until('the first page merged', () => rv(informer, 'a') === '12');
    // z is on a later page (or gone): not removed on the strength of the first page.
    expect(rv(informer, 'z')).toBe('2');
    expect(told).toEqual(['updated a 1→12']);

    server.queueList(page('20', undefined, object('z', '2')));
    await server.watch(1);
    expect(told).toEqual(['updated a 1→12']);
    expect(rv(informer, 'z')).toBe('2');
  });

  it('keeps the cached copy (the same object) for an unchanged item: no event, no churn', async () => {
    const { server, informer, told, watch } = await startInformer(list('10', object('a', '1')));
    const cached = informer.get('ns', 'a');

    startRelist(watch);
    server.queueList(list('20', object('a', '1')));
    await server.watch(1);

    expect(informer.get('ns', 'a')).toBe(cached);
    expect(told).toEqual([]);
  });

  it('relists once relistIntervalMs (--relist-interval) has passed and the running watch ends', async () => {
    const server = new FakeAPIServer();
    server.queueList(list('10', object('a', '1')));
    const informer = new Informer<Obj>({ name: 'test', http: server, path: '/api/v1/namespaces/ns/things', logger: silent, relistIntervalMs: 1 });
    running.push(informer);
    informer.start();
    const first = await server.watch(0);
    expect(server.listCalls).toBe(1);

    server.queueList(list('30', object('a', '25')));
    first.end();
    await server.watch(1);
    expect(server.listCalls).toBe(2);
    expect(rv(informer, 'a')).toBe('25');
  });

  it('with relistIntervalMs 0 (--relist-interval=0) resumes the watch, never relists', async () => {
    const server = new FakeAPIServer();
    server.queueList(list('10', object('a', '1')));
    const informer = new Informer<Obj>({ name: 'test', http: server, path: '/api/v1/namespaces/ns/things', logger: silent, relistIntervalMs: 0 });
    running.push(informer);
    informer.start();
    const first = await server.watch(0);
    first.send('MODIFIED', object('a', '11'));
    await until('the event applied', () => rv(informer, 'a') === '11');
    first.end();
    const second = await server.watch(1);

    expect(second.resourceVersion).toBe('11');
    expect(server.listCalls).toBe(1);
  });
});

describe('the source-Secret cache (identityOnly)', () => {
  const lastApplied = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', data: { password: 'c2VjcmV0'.repeat(500) } });
  const heavy = (name: string, resourceVersion: string): Obj => ({
    apiVersion: 'meta.k8s.io/v1',
    kind: 'PartialObjectMetadata',
    metadata: {
      name,
      namespace: 'ns',
      uid: `uid-${name}`,
      resourceVersion,
      generation: 1,
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: { team: 'a' },
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied },
      ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u' }],
      finalizers: ['keep'],
    },
  });

  it('holds namespace, name and resourceVersion of listed and watched Secrets, tells handlers their uid too: no annotations, labels or owners', async () => {
    const server = new FakeAPIServer();
    server.queueList(list('10', heavy('listed', '5')));
    const informer = new Informer<Obj>({ name: 'sources', http: server, path: '/api/v1/secrets', metadataOnly: true, keep: identityOnly(), packing: resourceVersionOnly as never, logger: silent });
    running.push(informer);
    const told: Obj[] = [];
    informer.on((_event, changed) => told.push(changed));
    informer.start();
    await informer.synced;
    const watch = await server.watch(0);
    watch.send('ADDED', heavy('watched', '11'));
    watch.send('MODIFIED', heavy('listed', '12'));
    await until('the events applied', () => informer.get('ns', 'watched') !== undefined && rv(informer, 'listed') === '12');
    // A Secret re-created under the same name (another uid) comes back with a newer resourceVersion: an update.
    watch.send('DELETED', heavy('watched', '13'));
    watch.send('ADDED', { ...heavy('watched', '14'), metadata: { ...heavy('watched', '14').metadata, uid: 'uid-watched-again' } });
    await until('the re-creation applied', () => rv(informer, 'watched') === '14');

    for (const name of ['listed', 'watched']) {
      expect(informer.get('ns', name)).toEqual({ metadata: { namespace: 'ns', name, resourceVersion: name === 'listed' ? '12' : '14' } });
    }
    expect(informer.list().map((item) => item.metadata.name).sort()).toEqual(['listed', 'watched']);
    expect(told.map((changed) => `${changed.metadata.name}@${changed.metadata.resourceVersion}`)).toEqual(['listed@5', 'watched@11', 'listed@12', 'watched@13', 'watched@14']);
    expect(told.every((changed) => Object.keys(changed).join() === 'metadata' && Object.keys(changed.metadata).sort().join() === 'name,namespace,resourceVersion,uid')).toBe(true);
    expect(JSON.stringify(informer.list())).not.toContain('last-applied');
  });
});

describe('the OAuthApp cache (appEssentials)', () => {
  it('keeps spec, status and the metadata the operator acts on (creationTimestamp: which public app claimed a callback path first); of annotations only oauthapp.dev/ ones; never managedFields', async () => {
    const spec = { provider: 'pipedrive', clientId: 'abc', clientSecretRef: { name: 'crm-client', key: 'client_secret' }, redirectURI: 'https://ops.example.com/oauth/callback' };
    const status = { conditions: [{ type: 'Ready', status: 'True', reason: 'TokenValid', message: 'valid', lastTransitionTime: '2026-01-01T00:00:00Z' }], observedGeneration: 2 };
    const applied: Obj = {
      apiVersion: 'oauthapp.dev/v1alpha1',
      kind: 'OAuthApp',
      metadata: {
        name: 'crm',
        namespace: 'ns',
        uid: 'uid-crm',
        resourceVersion: '5',
        generation: 2,
        creationTimestamp: '2026-01-01T00:00:00Z',
        labels: { team: 'sales' },
        finalizers: ['oauthapp.dev/state-cleanup'],
        annotations: { 'oauthapp.dev/rotate': '1700000000', 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ spec }) },
        managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
      } as Obj['metadata'],
      spec,
      status,
    };
    const server = new FakeAPIServer();
    server.queueList(list('10', applied));
    const informer = new Informer<Obj>({ name: 'oauthapps', http: server, path: '/apis/oauthapp.dev/v1alpha1/oauthapps', keep: appEssentials, keepCreationTimestamp: true, logger: silent });
    running.push(informer);
    informer.start();
    await informer.synced;

    expect(informer.get('ns', 'crm')).toEqual({
      apiVersion: 'oauthapp.dev/v1alpha1',
      kind: 'OAuthApp',
      metadata: { name: 'crm', namespace: 'ns', uid: 'uid-crm', resourceVersion: '5', generation: 2, creationTimestamp: '2026-01-01T00:00:00Z', finalizers: ['oauthapp.dev/state-cleanup'], annotations: { 'oauthapp.dev/rotate': '1700000000' } },
      spec,
      status,
    });
  });
});

describe('Informer DELETED events', () => {
  it('an older DELETED does not remove a newer cached object (our write re-created it)', async () => {
    const { informer, told, watch } = await startInformer(list('10', object('a', '5')));
    informer.observeWrite(object('a', '30', { uid: 'uid-a-recreated' }));
    told.length = 0;

    watch.send('DELETED', object('a', '20'));
    await drain(informer, watch, '31');

    expect(informer.get('ns', 'a')?.metadata).toMatchObject({ uid: 'uid-a-recreated', resourceVersion: '30' });
    expect(told).toEqual(['added marker-31 -→31']);
  });

  it('a DELETED older than the cached copy of the same object does not remove it', async () => {
    const { informer, told, watch } = await startInformer(list('10', object('a', '5')));
    informer.observeWrite(object('a', '30'));
    told.length = 0;

    watch.send('DELETED', object('a', '20'));
    await drain(informer, watch, '31');

    expect(rv(informer, 'a')).toBe('30');
    expect(told).toEqual(['added marker-31 -→31']);
  });

  it('a DELETED of another uid does not remove the cached object, whatever its resourceVersion', async () => {
    const { informer, told, watch } = await startInformer(list('10', object('a', '5', { uid: 'uid-a-recreated' })));

    watch.send('DELETED', object('a', '20'));
    await drain(informer, watch, '31');

    expect(informer.get('ns', 'a')?.metadata.uid).toBe('uid-a-recreated');
    expect(told).toEqual(['added marker-31 -→31']);
  });

  it('a DELETED of the cached object removes it and tells handlers', async () => {
    const { informer, told, watch } = await startInformer(list('10', object('a', '5')));

    watch.send('DELETED', object('a', '20'));
    await drain(informer, watch, '31');

    expect(informer.get('ns', 'a')).toBeUndefined();
    expect(told).toEqual(['deleted a -→20', 'added marker-31 -→31']);
  });
});

describe('the OAuthApp change filter on write-through updates', () => {
  /** The app cache as the operator wires it, with the keys its changes put on the queue. */
  async function appCache() {
    const { informer, watch } = await startInformer(list('10', object('app', '5', { generation: 3, status: { observedGeneration: 2 } })));
    const queued: string[] = [];
    const quiet = new Informer<Obj>({ name: 'unused', http: new FakeAPIServer(), path: '/unused', logger: silent });
    const caches = { apps: informer, installations: quiet, targets: quiet, sources: quiet, states: quiet } as unknown as Caches;
    enqueueOnChanges(caches, (key) => queued.push(key));
    return { informer, watch, queued: () => queued.filter((key) => key === 'ns/app') };
  }

  it('puts the app on the queue when our status patch answers with a spec change the user made meanwhile', async () => {
    const { informer, watch, queued } = await appCache();

    // The user's spec change (generation 4) committed at 11, our status patch on top of it at 12.
    informer.observeWrite(object('app', '12', { generation: 4, status: { observedGeneration: 3 } }));
    watch.send('MODIFIED', object('app', '11', { generation: 4, status: { observedGeneration: 2 } }));
    watch.send('MODIFIED', object('app', '12', { generation: 4, status: { observedGeneration: 3 } }));
    await drain(informer, watch, '13');

    expect(queued()).toEqual(['ns/app']);
  });

  it('does not put the app on the queue for our own status-only write', async () => {
    const { informer, watch, queued } = await appCache();

    informer.observeWrite(object('app', '12', { generation: 3, status: { observedGeneration: 3 } }));
    watch.send('MODIFIED', object('app', '12', { generation: 3, status: { observedGeneration: 3 } }));
    await drain(informer, watch, '13');

    expect(queued()).toEqual([]);
  });
});
