import { describe, expect, it } from '@jest/globals';
import { duration, isSecureOrLoopbackURL, parseDurationMs } from '../../../src/api/fields.ts';

describe('isSecureOrLoopbackURL', () => {
  it.each([
    'https://oauth.pipedrive.com/oauth/token',
    'http://127.0.0.1:8090/oauth/token',
    'http://127.5.6.7/oauth/token',
    'http://localhost:8090/oauth/token',
    'http://[::1]:8090/oauth/token',
  ])('accepts %s', (url) => {
    expect(isSecureOrLoopbackURL(url)).toBe(true);
  });

  it.each([
    'http://oauth.example.com/token',
    'http://10.0.0.1/token',
    'http://localhost.example.com/token',
    'ftp://oauth.example.com/token',
    'oauth.example.com/token',
    '',
  ])('refuses %j', (url) => {
    expect(isSecureOrLoopbackURL(url)).toBe(false);
  });
});

describe('durations', () => {
  it.each([
    ['15m', 900_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
  ])('parses %s as Go does', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
    expect(duration.safeParse(text).success).toBe(true);
  });

  it.each(['0s', '15', '15 minutes', '-5m', '1d'])('refuses %j', (text) => {
    expect(duration.safeParse(text).success).toBe(false);
  });
});
