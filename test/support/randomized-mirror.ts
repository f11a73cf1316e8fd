// The randomized chaos run's eyes: a list+watch copy of one collection, read straight from the
// apiserver (not through the fault proxy, and not with the operator's own informer, which is
// under test), with the local time each change arrived. Every change is handed to `onChange`,
// so the run can record when something first became true (a token stored, a request echoed).
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeHTTP } from '../../src/kube/http.ts';

export interface MirroredObject {
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    ownerReferences?: Array<{ uid: string; controller?: boolean }>;
    deletionTimestamp?: string;
  };
}

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export class Mirror<T extends MirroredObject> {
  private readonly objects = new Map<string, T>();
  private readonly http: KubeHTTP;
  private readonly path: string;
  private readonly onChange: (type: ChangeType, object: T, at: number) => void;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** Times the watch had to start over (errors, 410 Gone): for the record only. */
  relists = 0;

  constructor(http: KubeHTTP, path: string, onChange: (type: ChangeType, object: T, at: number) => void = () => undefined) {
    this.http = http;
    this.path = path;
    this.onChange = onChange;
  }

  /** Resolves once the first list is in. */
  async start(): Promise<void> {
    const resourceVersion = await this.list();
    this.loop = this.watchLoop(resourceVersion);
  }

  get(name: string): T | undefined {
    return this.objects.get(name);
  }

  values(): T[] {
    return [...this.objects.values()];
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop?.catch(() => undefined);
  }

  private async list(): Promise<string> {
    const list = await this.http.json<{ metadata: { resourceVersion: string }; items: T[] }>({ method: 'GET', path: this.path, signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(30_000)]) });
    const at = Date.now();
    const seen = new Set<string>();
    for (const item of list.items) {
      seen.add(item.metadata.name);
      const before = this.objects.get(item.metadata.name);
      this.objects.set(item.metadata.name, item);
      if (before?.metadata.resourceVersion !== item.metadata.resourceVersion) this.onChange(before ? 'MODIFIED' : 'ADDED', item, at);
    }
    for (const [name, object] of [...this.objects]) {
      if (seen.has(name)) continue;
      this.objects.delete(name);
      this.onChange('DELETED', object, at);
    }
    return list.metadata.resourceVersion;
  }

  private async watchLoop(from: string): Promise<void> {
    let resourceVersion = from;
    while (!this.abort.signal.aborted) {
      try {
        const response = await this.http.stream({
          method: 'GET',
          path: this.path,
          query: { watch: true, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 },
          signal: this.abort.signal,
        });
        let buffer = '';
        const decoder = new TextDecoder();
        for await (const chunk of response.body ?? []) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let newline = buffer.indexOf('\n');
          while (newline >= 0) {
            const line = buffer.slice(0, newline).trim();
            buffer = buffer.slice(newline + 1);
            newline = buffer.indexOf('\n');
            if (!line) continue;
            const event = JSON.parse(line) as { type: string; object: T & { code?: number } };
            if (event.type === 'ERROR') throw new Error(`watch ${this.path}: ${event.object.code ?? 'error'}`);
            resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
            if (event.type === 'BOOKMARK') continue;
            const at = Date.now();
            if (event.type === 'DELETED') this.objects.delete(event.object.metadata.name);
            else this.objects.set(event.object.metadata.name, event.object);
            this.onChange(event.type as ChangeType, event.object, at);
          }
        }
      } catch {
        if (this.abort.signal.aborted) return;
        this.relists += 1;
        await sleep(200);
        resourceVersion = await this.list().catch(() => resourceVersion);
      }
    }
  }
}
