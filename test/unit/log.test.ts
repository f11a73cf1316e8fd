// What the operator's logger keeps and what it blanks: secret values out, diagnostics in.
import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.ts';

function logged(write: (logger: ReturnType<typeof createLogger>) => void): Record<string, unknown> {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  write(createLogger({ level: 'debug', destination }));
  return JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
}

describe('createLogger', () => {
  it('prints the level as a word', () => {
    expect(logged((log) => log.info('hello')).level).toBe('info');
  });

  it('keeps a diagnostic error code such as ECONNRESET', () => {
    expect(logged((log) => log.warn({ err: { code: 'ECONNRESET', message: 'socket hang up' } }, 'failed'))).toMatchObject({ err: { code: 'ECONNRESET' } });
    expect(logged((log) => log.warn({ code: 'TERMINAL' }, 'failed'))).toMatchObject({ code: 'TERMINAL' });
  });

  it('blanks an OAuth authorization code in a query or a grant', () => {
    const line = logged((log) => log.info({ query: { code: 'the-code', state: 's' }, request: { grant: { type: 'authorization_code', code: 'the-code' } } }, 'callback'));
    expect(JSON.stringify(line)).not.toContain('the-code');
  });

  it.each([
    ['a refresh token in an error cause', { err: { message: 'x', cause: { refresh_token: 'the-secret' } } }],
    ['a token in a cause of a cause', { err: { cause: { cause: { access_token: 'the-secret' } } } }],
    ['an Authorization header in an HTTP client error', { err: { options: { headers: { authorization: 'Basic the-secret' } } } }],
    ['a set-cookie header', { response: { headers: { 'set-cookie': 'session=the-secret' } } }],
    ['a cookie header', { req: { headers: { cookie: 'session=the-secret' } } }],
    ['a client secret', { clientSecret: 'the-secret' }],
    ['a PKCE verifier', { grant: { code_verifier: 'the-secret' } }],
  ])('blanks %s', (_what, fields) => {
    expect(JSON.stringify(logged((log) => log.info(fields, 'something')))).not.toContain('the-secret');
  });
});
