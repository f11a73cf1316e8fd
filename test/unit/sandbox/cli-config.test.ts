import { describe, expect, it } from '@jest/globals';
import { parseCliConfig } from '../../../src/sandbox/cli-config.ts';

describe('sandbox CLI configuration', () => {
  it('listens on 127.0.0.1:8090 by default', () => {
    expect(parseCliConfig([], {})).toMatchObject({ ok: true, config: { host: '127.0.0.1', port: 8090 } });
  });

  it('takes the port from SANDBOX_PORT', () => {
    expect(parseCliConfig([], { SANDBOX_PORT: '9000' })).toMatchObject({ ok: true, config: { port: 9000 } });
  });

  it('prefers --port over SANDBOX_PORT', () => {
    expect(parseCliConfig(['--port', '9001'], { SANDBOX_PORT: '9000' })).toMatchObject({ config: { port: 9001 } });
  });

  it('reads --host, --expires-in, --client-id, --client-secret and --redirect-uri', () => {
    const result = parseCliConfig(
      ['--host', '::1', '--expires-in', '60', '--client-id', 'id', '--client-secret', 's', '--redirect-uri', 'http://127.0.0.1:1/cb'],
      {},
    );

    expect(result).toEqual({
      ok: true,
      config: { host: '::1', port: 8090, expiresIn: 60, clientId: 'id', clientSecret: 's', redirectUri: 'http://127.0.0.1:1/cb' },
    });
  });

  it('names the flag of a bad value', () => {
    const result = parseCliConfig(['--port', 'eighty'], {});

    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.message).toMatch(/^invalid --port: /);
  });

  it('refuses an unknown flag', () => {
    expect(parseCliConfig(['--colour', 'red'], {}).ok).toBe(false);
  });
});
