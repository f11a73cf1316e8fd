// What every command is given: the cluster, where to write, and the clock it waits by.
import type { Cluster } from './cluster.ts';
import type { Clock } from './wait.ts';

export interface Output {
  /** Results: what a script reads. */
  out(text: string): void;
  /** Progress and errors. */
  err(text: string): void;
}

export interface CommandContext {
  readonly cluster: Cluster;
  readonly io: Output;
  readonly clock: Clock;
  /** How often a wait reads the app again. */
  readonly pollIntervalMs: number;
}

export const appRef = (namespace: string, name: string) => `oauthapp ${JSON.stringify(name)} in namespace ${JSON.stringify(namespace)}`;
