import { describe, expect, it } from '@jest/globals';
import { TerminalError } from '../../../src/controller/errors.ts';
import { runWorkers, type ReconcileOutcome, type RunnerLogger } from '../../../src/controller/runner.ts';
import { WorkQueue } from '../../../src/controller/work-queue.ts';
import { createLogger } from '../../../src/log.ts';
import { FakeClock, settle } from './fake-clock.ts';
import { callsOf, reconcileDouble } from './reconcile-double.ts';

interface LogLine {
  level: 'info' | 'error' | 'debug';
  object: Record<string, unknown>;
  message: string;
}

function recordingLogger(): { logger: RunnerLogger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (object: Record<string, unknown>, message: string) => {
    lines.push({ level, object, message });
  };
  return { logger: { info: at('info'), error: at('error'), debug: at('debug') }, lines };
}

function setup(concurrency = 1, isExpeditable?: (error: unknown) => boolean) {
  const clock = new FakeClock();
  const queue = new WorkQueue({ clock });
  const double = reconcileDouble();
  const { logger, lines } = recordingLogger();
  const outcomes: [ReconcileOutcome, number][] = [];
  let ids = 0;
  const workers = runWorkers({
    queue,
    reconcile: double.reconcile,
    concurrency,
    logger,
    clock,
    newReconcileId: () => `id-${++ids}`,
    onReconcile: (outcome, seconds) => outcomes.push([outcome, seconds]),
    ...(isExpeditable ? { isExpeditable } : {}),
  });
  return { clock, queue, double, lines, outcomes, workers };
}

describe('runWorkers', () => {
  it('reconciles each added key', async () => {
    const { queue, double } = setup();
    queue.add('ns/a');
    await settle();

    expect(double.calls.map((call) => call.key)).toEqual(['ns/a']);
  });

  it('forgets the key’s backoff when the reconcile succeeds, and does not requeue it', async () => {
    const { clock, queue, double } = setup();
    queue.addRateLimited('ns/a');
    queue.addRateLimited('ns/a');
    clock.advance(10);
    await settle();

    double.calls[0]?.finish({});
    await settle();

    expect(queue.retries('ns/a')).toBe(0);
    expect([queue.length, queue.delayedCount]).toEqual([0, 0]);
  });

  it('reconciles the key again after the requeueAfterMs a reconcile answers', async () => {
    const { clock, queue, double } = setup();
    queue.add('ns/a');
    await settle();

    double.calls[0]?.finish({ requeueAfterMs: 60_000, reason: 'token due for refresh' });
    await settle();
    clock.advance(59_999);
    await settle();
    expect(double.calls).toHaveLength(1);

    clock.advance(1);
    await settle();
    expect(double.calls).toHaveLength(2);
  });

  it('forgets the key’s backoff when the reconcile asks for a requeue', async () => {
    const { clock, queue, double } = setup();
    queue.addRateLimited('ns/a');
    clock.advance(5);
    await settle();

    double.calls[0]?.finish({ requeueAfterMs: 1_000 });
    await settle();

    expect(queue.retries('ns/a')).toBe(0);
  });

  it('reconciles again at once when requeueAfterMs is 0', async () => {
    const { queue, double } = setup();
    queue.add('ns/a');
    await settle();

    double.calls[0]?.finish({ requeueAfterMs: 0 });
    await settle();

    expect(double.calls).toHaveLength(2);
  });

  it('retries a failed reconcile after a backoff that doubles per consecutive failure', async () => {
    const { clock, queue, double } = setup();
    queue.add('ns/a');
    const attemptTimes: number[] = [];
    for (let attempt = 0; attempt < 4; attempt += 1) {
      await settle();
      attemptTimes.push(clock.now());
      double.calls[attempt]?.fail(new Error('apiserver unavailable'));
      await settle();
      clock.advance(clock.nextTimerAt()! - clock.now());
    }

    expect(attemptTimes).toEqual([0, 5, 15, 35]);
    expect(queue.retries('ns/a')).toBe(4);
  });

  it('retries at expedite() a key whose failure isExpeditable says may end early, and only such a key', async () => {
    const outOfReach = new Error('apiserver out of reach');
    const { clock, queue, double } = setup(2, (error) => error === outOfReach);
    queue.add('ns/a');
    queue.add('ns/b');
    await settle();
    const failAll = async () => {
      for (const call of [...double.inFlight]) call.fail(call.key === 'ns/a' ? outOfReach : new Error('invalid'));
      await settle();
    };
    for (let failure = 0; failure < 10; failure += 1) {
      await failAll();
      clock.advance(clock.nextTimerAt()! - clock.now());
      await settle();
    }
    await failAll(); // both wait out a backoff of several seconds now
    const callsBefore = double.calls.length;

    queue.expedite();
    await settle();

    expect(double.calls.slice(callsBefore).map((call) => call.key)).toEqual(['ns/a']);
  });

  it('does not retry a reconcile that throws a TerminalError, and forgets its backoff', async () => {
    const { clock, queue, double } = setup();
    queue.addRateLimited('ns/a');
    clock.advance(5);
    await settle();

    double.calls[0]?.fail(new TerminalError('spec.provider: unknown provider'));
    await settle();
    clock.advance(2_000_000);
    await settle();

    expect(double.calls).toHaveLength(1);
    expect(queue.retries('ns/a')).toBe(0);
    expect([queue.length, queue.delayedCount]).toEqual([0, 0]);
  });

  it('does not retry an error whose cause is a TerminalError', async () => {
    const { clock, queue, double } = setup();
    queue.add('ns/a');
    await settle();

    double.calls[0]?.fail(new Error('wrapped', { cause: new TerminalError('invalid') }));
    await settle();
    clock.advance(2_000_000);
    await settle();

    expect(double.calls).toHaveLength(1);
  });

  it('logs a failure with its message and code only, not the error’s other properties', async () => {
    const { queue, double, lines } = setup();
    queue.add('ns/a');
    await settle();
    const error = Object.assign(new Error('token request failed'), { code: 'OAUTH_SERVER', response: { body: 'secret-value' } });

    double.calls[0]?.fail(error);
    await settle();

    const failures = lines.filter((line) => line.level === 'error');
    expect(failures).toEqual([
      {
        level: 'error',
        message: 'reconcile failed, retrying',
        object: { key: 'ns/a', reconcileId: 'id-1', error: 'token request failed', code: 'OAUTH_SERVER', retries: 1, retryInMs: 5 },
      },
    ]);
    expect(JSON.stringify(lines)).not.toContain('secret-value');
  });

  it('logs a terminal failure as not retried', async () => {
    const { queue, double, lines } = setup();
    queue.add('ns/a');
    await settle();

    double.calls[0]?.fail(new TerminalError('invalid spec'));
    await settle();

    expect(lines.filter((line) => line.level === 'error')).toEqual([
      {
        level: 'error',
        message: 'reconcile failed, not retrying',
        object: { key: 'ns/a', reconcileId: 'id-1', error: 'invalid spec', code: 'TERMINAL' },
      },
    ]);
  });

  it('treats a requeueAfterMs that is not a finite non-negative number as a failure', async () => {
    const { queue, double, outcomes } = setup();
    queue.add('ns/a');
    await settle();

    double.calls[0]?.finish({ requeueAfterMs: Number.NaN });
    await settle();

    expect(queue.retries('ns/a')).toBe(1);
    expect(queue.delayedCount).toBe(1);
    expect(outcomes.map(([outcome]) => outcome)).toEqual(['error']);
  });

  it('gives every reconcile a fresh reconcileId', async () => {
    const { queue, double } = setup();
    queue.add('ns/a');
    await settle();
    double.calls[0]?.finish({ requeueAfterMs: 0 });
    await settle();

    expect(double.calls.map((call) => call.context.reconcileId)).toEqual(['id-1', 'id-2']);
  });

  it('reports each reconcile’s outcome and duration', async () => {
    const { clock, queue, double, outcomes } = setup(3);
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/c');
    await settle();

    clock.advance(250);
    double.calls[0]?.finish({});
    double.calls[1]?.finish({ requeueAfterMs: 60_000 });
    double.calls[2]?.fail(new Error('boom'));
    await settle();

    expect(outcomes).toEqual([
      ['success', 0.25],
      ['requeue', 0.25],
      ['error', 0.25],
    ]);
  });

  it('runs no more reconciles at once than its concurrency', async () => {
    const { queue, double } = setup(2);
    for (const key of ['ns/a', 'ns/b', 'ns/c', 'ns/d']) queue.add(key);
    await settle();

    expect(double.inFlight.size).toBe(2);
    expect(queue.length).toBe(2);

    double.calls[0]?.finish();
    await settle();
    expect(double.inFlight.size).toBe(2);
    expect(double.calls.map((call) => call.key)).toEqual(['ns/a', 'ns/b', 'ns/c']);
  });

  it('never reconciles one key in two workers at once, and reconciles it again after a change that came meanwhile', async () => {
    const { queue, double } = setup(4);
    queue.add('ns/a');
    await settle();

    queue.add('ns/a');
    await settle();
    expect(callsOf(double, 'ns/a')).toHaveLength(1);

    double.calls[0]?.finish();
    await settle();
    expect(callsOf(double, 'ns/a')).toHaveLength(2);
    expect(double.overlappingKeys).toEqual([]);
  });

  it('keeps working when a hook throws', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    const double = reconcileDouble();
    runWorkers({ queue, reconcile: double.reconcile, concurrency: 1, clock, onReconcile: () => { throw new Error('hook'); } });
    queue.add('ns/a');
    await settle();
    double.calls[0]?.finish();
    await settle();

    queue.add('ns/b');
    await settle();

    expect(double.calls.map((call) => call.key)).toEqual(['ns/a', 'ns/b']);
  });

  it('resolves stopped once the queue is shut down and in-flight reconciles have finished', async () => {
    const { queue, double, workers } = setup(2);
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/c');
    await settle();
    let stopped = false;
    void workers.stopped.then(() => (stopped = true));

    queue.shutDown();
    await settle();
    expect(stopped).toBe(false);

    double.calls[0]?.finish();
    double.calls[1]?.finish();
    await settle();
    expect(stopped).toBe(true);
    expect(double.calls.map((call) => call.key)).toEqual(['ns/a', 'ns/b']);
  });

  it('refuses a concurrency below 1', () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    const reconcile = reconcileDouble().reconcile;

    expect(() => runWorkers({ queue, reconcile, concurrency: 0 })).toThrow(RangeError);
  });

  it('accepts a pino logger', () => {
    const logger: RunnerLogger = createLogger({ level: 'silent' });

    expect(typeof logger.error).toBe('function');
  });
});
