// The randomized chaos run's operator: two replicas (real processes, leader election), each
// restarted a second after it exits on its own (as the kubelet would restart its container, e.g.
// after a lost Lease) or after the run kills it. Every start, exit and kill is logged with its
// time, and each incarnation's leader-election identity is read from its log.
import { setTimeout as sleep } from 'node:timers/promises';
import { startOperatorProcess, type OperatorProcess } from './operator-process.ts';

export interface ReplicaEvent {
  at: number;
  replica: string;
  what: 'started' | 'exited' | 'killed';
  detail: string;
  identity?: string;
}

interface Incarnation {
  process: OperatorProcess;
  startedAt: number;
  /** Set when the run kills or stops it: its exit is no surprise. */
  ending: boolean;
}

export class Replicas {
  readonly events: ReplicaEvent[] = [];
  private readonly args: string[];
  private readonly env: Record<string, string>;
  private readonly incarnations = new Map<string, Incarnation[]>();
  private stopping = false;
  private readonly restarts = new Set<Promise<void>>();

  /** `env`: OAUTHAPP_* settings, which (unlike flags) an operator version without them ignores. */
  constructor(names: readonly string[], args: string[], env: Record<string, string> = {}) {
    this.args = args;
    this.env = env;
    for (const name of names) this.incarnations.set(name, []);
  }

  get names(): string[] {
    return [...this.incarnations.keys()];
  }

  startAll(): void {
    for (const name of this.names) this.start(name);
  }

  /** The identity (Lease holder name) of every incarnation so far, by replica. */
  identities(): Map<string, string> {
    const identities = new Map<string, string>();
    for (const [name, incarnations] of this.incarnations) {
      for (const incarnation of incarnations) {
        const identity = identityIn(incarnation.process.output());
        if (identity) identities.set(identity, name);
      }
    }
    return identities;
  }

  /** The running incarnation's identity, once it has logged it. */
  identityOf(name: string): string | undefined {
    const current = this.current(name);
    return current ? identityIn(current.process.output()) : undefined;
  }

  /** Resolves once every running replica has synced its caches (logged "caches synced"). */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.names.every((name) => this.current(name)?.process.output().includes('"caches synced"'))) {
      if (Date.now() > deadline) throw new Error(`replicas not ready after ${timeoutMs} ms:\n${this.logs().slice(-4000)}`);
      await sleep(100);
    }
  }

  /** Kills the running incarnation of `name` (SIGKILL: at once; SIGTERM: waits for its exit), then starts a new one after `restartAfterMs`. */
  async kill(name: string, signal: 'SIGKILL' | 'SIGTERM', restartAfterMs: number): Promise<void> {
    const current = this.current(name);
    if (!current) return;
    current.ending = true;
    this.events.push({ at: Date.now(), replica: name, what: 'killed', detail: signal, ...optionalIdentity(identityIn(current.process.output())) });
    const exit = await current.process.kill(signal);
    this.events.push({ at: Date.now(), replica: name, what: 'exited', detail: String(exit), ...optionalIdentity(identityIn(current.process.output())) });
    this.scheduleRestart(name, restartAfterMs);
  }

  /** Every incarnation's output, each line prefixed with its replica. */
  logs(): string {
    return this.names
      .flatMap((name) => (this.incarnations.get(name) ?? []).map((incarnation, index) => prefixLines(incarnation.process.output(), `${name}${index}`)))
      .join('');
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.restarts]);
    await Promise.all(
      this.names.map(async (name) => {
        const current = this.current(name);
        if (!current) return;
        current.ending = true;
        await current.process.kill('SIGKILL');
      }),
    );
  }

  private current(name: string): Incarnation | undefined {
    const last = this.incarnations.get(name)?.at(-1);
    return last && last.process.child.exitCode === null && last.process.child.signalCode === null ? last : undefined;
  }

  private start(name: string): void {
    if (this.stopping) return;
    const process = startOperatorProcess(this.args, this.env);
    const incarnation: Incarnation = { process, startedAt: Date.now(), ending: false };
    this.incarnations.get(name)?.push(incarnation);
    this.events.push({ at: incarnation.startedAt, replica: name, what: 'started', detail: `pid ${process.child.pid ?? '?'}` });
    void process.exited.then((exit) => {
      if (incarnation.ending) return;
      this.events.push({ at: Date.now(), replica: name, what: 'exited', detail: `on its own: ${exit}`, ...optionalIdentity(identityIn(process.output())) });
      this.scheduleRestart(name, 1_000);
    });
  }

  private scheduleRestart(name: string, afterMs: number): void {
    const restart = sleep(afterMs).then(() => this.start(name));
    this.restarts.add(restart);
    void restart.finally(() => this.restarts.delete(restart));
  }
}

function identityIn(output: string): string | undefined {
  return /"identity":"([^"]+)"/.exec(output)?.[1];
}

function optionalIdentity(identity: string | undefined): { identity?: string } {
  return identity ? { identity } : {};
}

function prefixLines(text: string, prefix: string): string {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => `${prefix} ${line}\n`)
    .join('');
}
