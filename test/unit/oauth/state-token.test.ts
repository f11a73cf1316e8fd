import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createStateSigner, StateTokenError, type StateClaims } from '../../../src/oauth/state-token.ts';

const key = Buffer.alloc(32, 7);
const otherKey = Buffer.alloc(32, 8);
const start = Date.parse('2025-01-01T00:00:00Z');
const claims: StateClaims = { namespace: 'crm', name: 'pipedrive', uid: '0b0e2b7c-6f1a-4d8e-9d43-5b2f3f0b8a11', round: 3 };

/** A signer whose clock the test moves by assigning `clock.now`. */
const signerAt = (options: { key?: Buffer; ttlMs?: number } = {}) => {
  const clock = { now: start };
  const signer = createStateSigner({ key: options.key ?? key, now: () => clock.now, ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }) });
  return { clock, signer };
};

const decodePayload = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
const encodePayload = (payload: unknown): string => Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
const macOf = (payloadPart: string, withKey: Buffer): string => createHmac('sha256', withKey).update(payloadPart).digest('base64url');

describe('createStateSigner', () => {
  it('verifies what it signed and returns the claims and when the state expires', () => {
    const { signer } = signerAt({ ttlMs: 60_000 });
    expect(signer.verify(signer.sign(claims))).toEqual({ ok: true, claims, expiresAt: start + 60_000 });
  });

  it('gives each signature its own nonce, so two states for one round differ', () => {
    const { signer } = signerAt();
    expect(signer.sign(claims)).not.toBe(signer.sign(claims));
  });

  it('uses only URL-safe characters, so the state needs no escaping in a query', () => {
    const { signer } = signerAt();
    expect(signer.sign(claims)).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  });

  it('keeps tokens under 300 characters for typical names', () => {
    const { signer } = signerAt();
    const typical = { namespace: 'production-integrations', name: 'pipedrive-crm-sync', uid: claims.uid, round: 1_000_000 };
    expect(signer.sign(typical).length).toBeLessThan(300);
  });

  it('rejects a token whose payload was changed (another round, another app)', () => {
    const { signer } = signerAt();
    const token = signer.sign(claims);
    const signature = token.split('.')[1];
    for (const change of [{ r: 4 }, { n: 'other-app' }, { ns: 'other-namespace' }, { exp: start + 365 * 86_400_000 }]) {
      const forged = `${encodePayload({ ...decodePayload(token), ...change })}.${signature}`;
      expect(signer.verify(forged)).toEqual({ ok: false, code: 'bad_signature' });
    }
  });

  it('rejects a token whose signature was changed', () => {
    const { signer } = signerAt();
    const [payloadPart, signature = ''] = signer.sign(claims).split('.');
    const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    expect(signer.verify(`${payloadPart}.${flipped}`)).toEqual({ ok: false, code: 'bad_signature' });
  });

  it('rejects another spelling of the right signature (spare bits of the last character set)', () => {
    const { signer } = signerAt();
    const [payloadPart, signature = ''] = signer.sign(claims).split('.');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(signature.at(-1) ?? '');
    const variant = `${signature.slice(0, -1)}${alphabet[last ^ 1]}`;
    expect(Buffer.from(variant, 'base64url').equals(Buffer.from(signature, 'base64url'))).toBe(true);
    expect(signer.verify(`${payloadPart}.${variant}`)).toEqual({ ok: false, code: 'malformed' });
  });

  it('rejects a token signed with another key', () => {
    const { signer } = signerAt();
    const { signer: other } = signerAt({ key: otherKey });
    expect(signer.verify(other.sign(claims))).toEqual({ ok: false, code: 'bad_signature' });
  });

  it('accepts a state until its lifetime is over, then reports it expired', () => {
    const { clock, signer } = signerAt({ ttlMs: 60_000 });
    const token = signer.sign(claims);
    clock.now = start + 59_999;
    expect(signer.verify(token)).toMatchObject({ ok: true, claims });
    clock.now = start + 60_000;
    expect(signer.verify(token)).toEqual({ ok: false, code: 'expired' });
  });

  it('lives 10 minutes by default', () => {
    const { clock, signer } = signerAt();
    const token = signer.sign(claims);
    clock.now = start + 10 * 60_000 - 1;
    expect(signer.verify(token).ok).toBe(true);
    clock.now = start + 10 * 60_000;
    expect(signer.verify(token)).toEqual({ ok: false, code: 'expired' });
  });

  it('checks the signature before the expiry: a forged token is never "expired"', () => {
    const { clock, signer } = signerAt();
    const { signer: other } = signerAt({ key: otherKey });
    const forged = other.sign(claims);
    clock.now = start + 86_400_000;
    expect(signer.verify(forged)).toEqual({ ok: false, code: 'bad_signature' });
  });

  it('rejects a correctly signed payload that is not a state (wrong shape, extra fields, not JSON)', () => {
    const { signer } = signerAt();
    const payloads = [
      encodePayload({ ns: 'crm', n: 'pipedrive', u: 'x', r: -1, exp: start + 1000, nonce: 'abc' }),
      encodePayload({ ns: 'crm', n: 'pipedrive', u: 'x', r: 1, exp: start + 1000, nonce: 'abc', admin: true }),
      encodePayload({ ns: 'crm', n: 'pipedrive', u: 'x', r: 1, nonce: 'abc' }),
      encodePayload(['crm']),
      Buffer.from('not json', 'utf8').toString('base64url'),
    ];
    for (const payloadPart of payloads) {
      expect(signer.verify(`${payloadPart}.${macOf(payloadPart, key)}`)).toEqual({ ok: false, code: 'malformed' });
    }
  });

  it.each([
    ['the empty string', ''],
    ['no dot', 'abcdef'],
    ['three parts', 'a.b.c'],
    ['an empty signature', 'abc.'],
    ['an empty payload', '.abc'],
    ['non-base64url characters', 'ab+c.de/f'],
    ['padding', 'abc=.def='],
    ['a short signature', 'abc.def'],
    ['an over-long token', `${'a'.repeat(5000)}.${'b'.repeat(43)}`],
  ])('reports %s as malformed', (_title, token) => {
    const { signer } = signerAt();
    expect(signer.verify(token)).toEqual({ ok: false, code: 'malformed' });
  });

  it('never throws on, and never accepts, an arbitrary string', () => {
    const { signer } = signerAt();
    const tokenLike = fc
      .tuple(fc.stringMatching(/^[A-Za-z0-9_-]{0,200}$/), fc.stringMatching(/^[A-Za-z0-9_-]{0,60}$/))
      .map(([payload, signature]) => `${payload}.${signature}`);
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 400 }), tokenLike), (input) => {
        const result = signer.verify(input);
        expect(result.ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('never accepts a signed token with one character changed', () => {
    const { signer } = signerAt();
    const token = signer.sign(claims);
    fc.assert(
      fc.property(fc.nat({ max: token.length - 1 }), fc.string({ minLength: 1, maxLength: 1 }), (index, replacement) => {
        fc.pre(token[index] !== replacement);
        const changed = `${token.slice(0, index)}${replacement}${token.slice(index + 1)}`;
        expect(signer.verify(changed).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a key shorter than 32 bytes', () => {
    expect(() => createStateSigner({ key: Buffer.alloc(31), now: () => start })).toThrow(expect.objectContaining({ name: 'StateTokenError', code: 'key_too_short' }));
  });

  it('refuses a lifetime that is not a positive number of milliseconds', () => {
    for (const ttlMs of [0, -1, Number.NaN, 1.5]) {
      expect(() => createStateSigner({ key, now: () => start, ttlMs })).toThrow(StateTokenError);
    }
  });

  it('keeps its own copy of the key', () => {
    const mutable = Buffer.alloc(32, 1);
    const signer = createStateSigner({ key: mutable, now: () => start });
    const token = signer.sign(claims);
    mutable.fill(2);
    expect(signer.verify(token).ok).toBe(true);
  });

  it('refuses to sign claims that could not be verified', () => {
    const { signer } = signerAt();
    for (const bad of [{ ...claims, round: -1 }, { ...claims, round: 1.5 }, { ...claims, name: '' }, { ...claims, extra: 1 }]) {
      expect(() => signer.sign(bad)).toThrow(expect.objectContaining({ code: 'invalid_claims' }));
    }
  });
});
