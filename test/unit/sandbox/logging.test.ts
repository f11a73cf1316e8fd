import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  type Running,
  type TokenBody,
  exchangeCode,
  install,
  json,
  refresh,
  revoke,
  startCallbackServer,
  startSandbox,
} from './harness.ts';

describe('sandbox logging', () => {
  let running: Running;
  let lines: string;
  beforeEach(async () => {
    lines = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines += chunk.toString();
        done();
      },
    });
    running = await startSandbox({ logger: pino({ level: 'trace' }, sink) });
  });
  afterEach(async () => {
    await running.close();
  });

  it('never writes a client secret, code, access token or refresh token to the log', async () => {
    const installed = await install(running);
    const refreshed = json<TokenBody>(await refresh(running, installed.refresh_token ?? ''));
    const [code] = running.sandbox.stats().presentedAuthorizationCodes;
    const secrets = [
      running.client.clientSecret,
      code?.value ?? 'missing',
      installed.access_token,
      installed.refresh_token ?? 'missing',
      refreshed.access_token,
      refreshed.refresh_token ?? 'missing',
    ];

    expect(lines).toContain('token request');
    for (const secret of secrets) expect(lines).not.toContain(secret);
  });

  it('never writes a revoked token, a Marketplace code or the secret an uninstall sends to the log', async () => {
    const callback = await startCallbackServer();
    try {
      const app = running.sandbox.registerClient({ redirectUri: `${callback.origin}/cb` });
      const { code } = running.sandbox.marketplaceInstall(app.clientId, 7);
      const installed = await exchangeCode(running, code, app);
      await revoke(running, installed.refresh_token ?? '', app);
      await running.sandbox.uninstall(app.clientId, 7);
      const secrets = [app.clientSecret, code, installed.access_token, installed.refresh_token ?? 'missing'];

      expect(lines).toContain('token revocation');
      expect(lines).toContain('app uninstalled');
      for (const secret of secrets) expect(lines).not.toContain(secret);
    } finally {
      await callback.close();
    }
  });
});
