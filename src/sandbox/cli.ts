#!/usr/bin/env node
// The sandbox as a process: `npm run sandbox`. The only sandbox file that reads argv and env.
import { pino } from 'pino';
import { parseCliConfig } from './cli-config.ts';
import { createSandbox } from './server.ts';

const parsed = parseCliConfig(process.argv.slice(2), process.env);
if (!parsed.ok) {
  process.stderr.write(`sandbox: ${parsed.message}\n`);
  process.exit(2);
}
const { config } = parsed;

const sandbox = createSandbox({
  ...(config.expiresIn === undefined ? {} : { expiresIn: config.expiresIn }),
  ...(config.apiDomain === undefined ? {} : { apiDomain: config.apiDomain }),
  logger: pino({ level: 'info' }, pino.destination(2)),
});
const client = sandbox.registerClient({
  redirectUri: config.redirectUri,
  ...(config.clientId === undefined ? {} : { clientId: config.clientId }),
  ...(config.clientSecret === undefined ? {} : { clientSecret: config.clientSecret }),
});
const baseUrl = await sandbox.listen({ host: config.host, port: config.port });

process.stdout.write(
  `${JSON.stringify({
    baseUrl,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    redirectUri: client.redirectUri,
    authorizeURL: `${baseUrl}/oauth/authorize`,
    tokenURL: `${baseUrl}/oauth/token`,
    revokeURL: `${baseUrl}/oauth/revoke`,
    usersMeURL: `${baseUrl}/v1/users/me`,
    // Public apps: "Install now" for a company (change company_id for another install).
    marketplaceInstallURL: `${baseUrl}/marketplace/install?${new URLSearchParams({ client_id: client.clientId, company_id: '1' }).toString()}`,
    adminURL: `${baseUrl}/admin`,
  })}\n`,
);

const stop = (): void => {
  sandbox.close().then(
    () => {
      process.exitCode = 0;
    },
    (error: unknown) => {
      process.stderr.write(`sandbox: close failed: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
