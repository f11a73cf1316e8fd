// A memory cgroup limited the way the kubelet limits a container (memory.max on cgroup v2,
// memory.limit_in_bytes on v1, no swap), so a benchmark can run the operator under deploy/'s
// memory limit and learn what a pod would: whether the kernel OOM-kills it, whether reclaim at the
// limit makes it read its code back from disk, and what the cgroup charged at its peak. RSS alone
// cannot say that: the cgroup charges anonymous memory and the page cache its processes fault in
// first (uncachedCopyOfNode makes that the node binary, as in a container), and at the limit the
// kernel reclaims clean file pages (the binary's code) before it kills.
// Needs root and a writable cgroup hierarchy; `createMemoryCgroup` says why not otherwise.
import { execFile } from 'node:child_process';
import { access, copyFile, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface CgroupUsage {
  /** The highest charge since the cgroup was made (memory.peak / memory.max_usage_in_bytes). */
  peak: number;
  /** The charge now, and of it anonymous memory and page cache (memory.stat). */
  current: number;
  anon: number;
  file: number;
  /** Processes the kernel's OOM killer killed in it. */
  oomKills: number;
  /**
   * Pages read back from disk (memory.stat pgmajfault): the binary's code, reclaimed at the limit and
   * needed again. A few dozen is the kernel making room; thousands a second would be thrashing.
   */
  majorFaults: number;
}

export interface MemoryCgroup {
  readonly path: string;
  readonly limit: number;
  /** The file a process writes its pid into to enter (cgroup.procs). */
  readonly procs: string;
  usage(): Promise<CgroupUsage>;
  /** Removes it; its processes must have exited. */
  remove(): Promise<void>;
}

const v2Root = '/sys/fs/cgroup';
const v1Root = '/sys/fs/cgroup/memory';

const exists = (path: string) => access(path).then(() => true, () => false);
const numberIn = (text: string, key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);

/** A new cgroup named `name` limited to `limitBytes`, or why one cannot be made here. */
export async function createMemoryCgroup(name: string, limitBytes: number): Promise<MemoryCgroup | { unavailable: string }> {
  if (process.getuid?.() !== 0) return { unavailable: 'not root' };
  try {
    if ((await readFile(join(v2Root, 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/).includes('memory')) return await createV2(name, limitBytes);
    if (await exists(join(v1Root, 'memory.limit_in_bytes'))) return await createV1(name, limitBytes);
    return { unavailable: 'no memory controller in /sys/fs/cgroup' };
  } catch (error) {
    return { unavailable: error instanceof Error ? error.message : String(error) };
  }
}

async function createV2(name: string, limitBytes: number): Promise<MemoryCgroup> {
  await writeFile(join(v2Root, 'cgroup.subtree_control'), '+memory');
  const path = join(v2Root, name);
  await mkdir(path);
  await writeFile(join(path, 'memory.max'), String(limitBytes));
  if (await exists(join(path, 'memory.swap.max'))) await writeFile(join(path, 'memory.swap.max'), '0');
  return {
    path,
    limit: limitBytes,
    procs: join(path, 'cgroup.procs'),
    async usage() {
      const [peak, current, stat, events] = await Promise.all(['memory.peak', 'memory.current', 'memory.stat', 'memory.events'].map((file) => readFile(join(path, file), 'utf8').catch(() => '')));
      return { peak: Number(peak), current: Number(current), anon: numberIn(stat ?? '', 'anon'), file: numberIn(stat ?? '', 'file'), oomKills: numberIn(events ?? '', 'oom_kill'), majorFaults: numberIn(stat ?? '', 'pgmajfault') };
    },
    remove: () => rmdir(path),
  };
}

async function createV1(name: string, limitBytes: number): Promise<MemoryCgroup> {
  const path = join(v1Root, name);
  await mkdir(path);
  await writeFile(join(path, 'memory.limit_in_bytes'), String(limitBytes));
  // With swap accounting, memory+swap gets the same limit: a pod's limit does not stretch into swap.
  if (await exists(join(path, 'memory.memsw.limit_in_bytes'))) await writeFile(join(path, 'memory.memsw.limit_in_bytes'), String(limitBytes));
  return {
    path,
    limit: limitBytes,
    procs: join(path, 'cgroup.procs'),
    async usage() {
      const [peak, current, stat, oomControl] = await Promise.all(
        ['memory.max_usage_in_bytes', 'memory.usage_in_bytes', 'memory.stat', 'memory.oom_control'].map((file) => readFile(join(path, file), 'utf8').catch(() => '')),
      );
      return { peak: Number(peak), current: Number(current), anon: numberIn(stat ?? '', 'rss'), file: numberIn(stat ?? '', 'cache'), oomKills: numberIn(oomControl ?? '', 'oom_kill'), majorFaults: numberIn(stat ?? '', 'pgmajfault') };
    },
    remove: () => rmdir(path),
  };
}

/**
 * A copy of the node binary in `dir` with none of its pages in the page cache, so that a process
 * started from it in a cgroup faults the binary in there and the cgroup is charged for it, as a
 * container is for the binary in its image. (The machine's own node binary is cached already,
 * charged to whoever read it first.)
 */
export async function uncachedCopyOfNode(dir: string): Promise<string> {
  const copy = join(dir, 'node');
  await copyFile(process.execPath, copy);
  // GNU dd: write nothing, sync, and ask the kernel to drop the file's cached pages.
  await promisify(execFile)('dd', [`of=${copy}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0', 'status=none']);
  return copy;
}

/** "512Mi", "1Gi", "300M", "268435456": a Kubernetes quantity of bytes. */
export function parseMemoryQuantity(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity.trim());
  if (!match) throw new Error(`not a memory quantity: ${quantity}`);
  const factor = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Math.round(Number(match[1]) * factor);
}
