#!/usr/bin/env node
// The oauthapp-operator process: configuration in, operator running, signals out. Nothing else
// reads process.env or calls process.exit.
import { readFileSync } from 'node:fs';
import { parseConfig } from './config.ts';
import { createLogger } from './log.ts';
import { startOperator } from './operator.ts';
import { infoRequest, usage } from './usage.ts';
import { operatorVersion } from './version.ts';

const serviceAccountNamespaceFile = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function podNamespace(): string | undefined {
  try {
    return readFileSync(serviceAccountNamespaceFile, 'utf8').trim() || undefined;
  } catch {
    return process.env.POD_NAMESPACE || undefined;
  }
}

const info = infoRequest(process.argv.slice(2));
if (info) {
  process.stdout.write(info === 'help' ? usage() : `oauthapp-operator ${operatorVersion}\n`);
  process.exit(0);
}
const parsed = parseConfig({ argv: process.argv.slice(2), env: process.env, podNamespace: podNamespace() });
if (!parsed.ok) {
  process.stderr.write(`oauthapp-operator: ${parsed.error}\n`);
  process.exit(2);
}
const { config } = parsed;
const logger = createLogger({ level: config.logLevel });
// The proxy's host only: its URL may carry credentials.
const proxy = config.proxy.url ? { proxy: config.proxy.url.host, noProxy: config.proxy.noProxy } : {};
logger.info({ namespaces: config.namespaces.length ? config.namespaces : 'all', operatorNamespace: config.operatorNamespace, components: config.components, ...proxy }, 'starting');

const operator = await startOperator(config, logger);
void operator.ended.then(() => {
  // Another replica may already be refreshing: this one must not touch anything again.
  process.exit(1);
});
let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping: finishing in-flight reconciles');
  operator.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      logger.error({ err: error instanceof Error ? error.message : String(error) }, 'unclean stop');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
