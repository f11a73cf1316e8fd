// An ObjectCache (src/kube/informer.ts) held in memory, for unit specs: `put` and `remove` play the
// watch events an informer would deliver (added, updated, deleted) to the handlers registered with
// `on`, in order and synchronously. Write-through (`observeWrite`, `observeDelete`) does the same.
import type { InformerHandler, ObjectCache } from '../../src/kube/informer.ts';
import type { KubeObject } from '../../src/kube/objects.ts';

export class MemoryCache<T extends KubeObject> implements ObjectCache<T> {
  private readonly objects = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  readonly synced = Promise.resolve();

  constructor(objects: readonly T[] = []) {
    for (const object of objects) this.objects.set(keyOf(object.metadata.namespace, object.metadata.name), object);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.objects.get(keyOf(namespace, name));
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  /** An object was added or changed: stored, and handlers told 'added' or 'updated'. */
  put(object: T): void {
    const key = keyOf(object.metadata.namespace, object.metadata.name);
    const old = this.objects.get(key);
    this.objects.set(key, object);
    for (const handler of this.handlers) handler(old ? 'updated' : 'added', object, old);
  }

  /** An object was deleted: forgotten, and handlers told 'deleted'. */
  remove(namespace: string | undefined, name: string): void {
    const key = keyOf(namespace, name);
    const old = this.objects.get(key);
    if (!old) return;
    this.objects.delete(key);
    for (const handler of this.handlers) handler('deleted', old);
  }

  observeWrite(object: T): void {
    this.put(object);
  }

  observeDelete(namespace: string | undefined, name: string): void {
    this.remove(namespace, name);
  }

  hasSynced(): boolean {
    return true;
  }

  start(): void {}

  async stop(): Promise<void> {}
}

const keyOf = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;
