// What a provider sees of the operator's token requests at once: a sandbox `sleep` (how its
// `delayMs` fault waits) that records when each held-back token request started and ended, so a
// test can count the requests in flight at the provider at any moment.
import { setTimeout as delay } from 'node:timers/promises';

export interface Interval {
  start: number;
  end: number;
}

export interface InFlightRecorder {
  /** Pass as `SandboxOptions.sleep`; every token request waits here while `delayMs` is set. */
  sleep(ms: number): Promise<void>;
  /** Requests that finished waiting, since `since` (epoch ms) if given. */
  intervals(since?: number): Interval[];
  /** Requests waiting right now. */
  inFlight(): number;
}

export function inFlightRecorder(): InFlightRecorder {
  const done: Interval[] = [];
  let current = 0;
  return {
    async sleep(ms) {
      const start = Date.now();
      current += 1;
      try {
        await delay(ms);
      } finally {
        current -= 1;
        done.push({ start, end: Date.now() });
      }
    },
    intervals: (since = 0) => done.filter((interval) => interval.start >= since),
    inFlight: () => current,
  };
}

/** The largest number of intervals that overlap at one moment (an end frees its slot before a start at the same ms). */
export function maxOverlap(intervals: readonly Interval[]): number {
  const edges = intervals.flatMap(({ start, end }) => [
    { at: start, delta: 1 },
    { at: end, delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let open = 0;
  let most = 0;
  for (const { delta } of edges) {
    open += delta;
    most = Math.max(most, open);
  }
  return most;
}

/** `count` of a Prometheus histogram's observations above `le` (from /metrics text), all label sets summed. */
export function observationsAbove(metricsText: string, histogram: string, le: string): number {
  let total = 0;
  let atMost = 0;
  for (const line of metricsText.split('\n')) {
    const match = new RegExp(`^${histogram}_bucket\\{(.*)\\} (\\d+)$`).exec(line);
    if (!match) continue;
    const labels = match[1] ?? '';
    const value = Number(match[2]);
    if (labels.includes('le="+Inf"')) total += value;
    else if (labels.includes(`le="${le}"`)) atMost += value;
  }
  return total - atMost;
}
