// The operator started in-process against the test control plane, with its log lines captured
// so tests can check that no secret value ever reaches them.
import { Writable } from 'node:stream';
import { parseConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { loadKubeConfig, startOperator, type RunningOperator } from '../../src/operator.ts';
import { requiredEnvironment } from './environment.ts';

export interface TestOperator extends RunningOperator {
  /** Every log line so far, as written (JSON). */
  logs(): string;
}

export async function startTestOperator(overrides: { namespaces: string[]; operatorNamespace: string; kubeconfig?: string; argv?: string[] }): Promise<TestOperator> {
  const parsed = parseConfig({
    argv: [
      `--kubeconfig=${overrides.kubeconfig ?? requiredEnvironment('kubeconfig')}`,
      `--namespaces=${overrides.namespaces.join(',')}`,
      `--operator-namespace=${overrides.operatorNamespace}`,
      '--log-level=debug',
      '--metrics-addr=127.0.0.1:0',
      '--callback-addr=127.0.0.1:0',
      // The sandbox providers listen on loopback and stand in for the pipedrive preset; a test of
      // the provider policy turns these off again (--no-allow-loopback-providers: the last flag wins).
      '--allow-loopback-providers',
      '--allow-preset-overrides',
      // Tests use tokens of a few seconds; the default floor (30 s) would leave them expired. A
      // test of the floor sets its own (the last flag wins).
      '--min-refresh-interval=1',
      ...(overrides.argv ?? []),
    ],
    env: {},
    podNamespace: undefined,
  });
  if (!parsed.ok) throw new Error(parsed.error);
  const config: Config = parsed.config;
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = createLogger({ level: config.logLevel, destination });
  const operator = await startOperator(config, logger, loadKubeConfig(config.kubeconfig));
  await operator.synced;
  return { ...operator, logs: () => lines.join('') };
}
