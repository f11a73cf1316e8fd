import { describe, expect, it } from '@jest/globals';
import { formUrlEncode } from '../../../src/oauth/form-encoding.ts';
import { providerText, redactor } from '../../../src/oauth/redact.ts';

describe('formUrlEncode', () => {
  it('encodes a space as + and reserved characters as %XX, UTF-8 included', () => {
    expect(formUrlEncode("a b:c+d%e/f=g&h~!'()*é")).toBe('a+b%3Ac%2Bd%25e%2Ff%3Dg%26h%7E%21%27%28%29*%C3%A9');
  });
});

describe('redactor', () => {
  const redact = redactor(['p:ss w+rd', '']);

  it('removes a secret as it is', () => {
    expect(redact('got p:ss w+rd here')).toBe('got [redacted] here');
  });

  it('removes a secret as it appears form-encoded', () => {
    expect(redact('refresh_token=p%3Ass+w%2Brd&x')).toBe('refresh_token=[redacted]&x');
  });

  it('removes a secret as it appears percent-encoded', () => {
    expect(redact('p%3Ass%20w%2Brd')).toBe('[redacted]');
  });

  it('leaves text alone when an empty secret is listed', () => {
    expect(redact('plain')).toBe('plain');
  });
});

describe('providerText', () => {
  it('redacts before capping, so that a secret across the cap is not half shown', () => {
    const secret = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    const text = `${'x'.repeat(190)}${secret}`;
    expect(providerText(text, redactor([secret]))).toBe(`${'x'.repeat(190)}[redacted]`);
  });
});
