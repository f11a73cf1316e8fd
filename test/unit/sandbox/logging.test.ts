import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { type Running, type TokenBody, install, json, refresh, startSandbox } from './harness.ts';

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
});
