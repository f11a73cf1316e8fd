import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { codeChallengeS256 } from '../../../src/oauth/pkce.ts';
import { createStateSigner, replaceableStateSigner, StateTokenError, type StateClaims } from '../../../src/oauth/state-token.ts';

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

/**
 * Seals any plaintext the way the operator seals a state (version 1: HKDF-SHA256 key, AES-256-GCM,
 * the version byte as associated data), to show what verify does with payloads it did not make.
 */
const seal = (plaintext: string, withKey: Buffer = key): string => {
  const sealingKey = Buffer.from(hkdfSync('sha256', withKey, Buffer.alloc(0), 'oauthapp.dev/state-encryption/v1', 32));
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey, iv);
  cipher.setAAD(Buffer.from([1]));
  return Buffer.concat([Buffer.from([1]), iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64url');
};

/** Every way a reader might try to see inside a token: as sent, and its bytes as base64 or base64url decode them. */
const readings = (token: string): string[] => {
  const bytes = [Buffer.from(token, 'base64url'), Buffer.from(token, 'base64')];
  return [token, decodeURIComponent(token), ...bytes.flatMap((buffer) => [buffer.toString('utf8'), buffer.toString('latin1'), buffer.toString('hex')])];
};

describe('createStateSigner', () => {
  it('verifies what it signed and returns the claims and when the state expires', () => {
    const { signer } = signerAt({ ttlMs: 60_000 });
    expect(signer.verify(signer.sign(claims))).toEqual({ ok: true, claims, expiresAt: start + 60_000, key: 'current' });
  });

  it('gives each state its own IV, so two states for one round differ', () => {
    const { signer } = signerAt();
    expect(signer.sign(claims)).not.toBe(signer.sign(claims));
  });

  it('uses only URL-safe characters, so the state needs no escaping in a query', () => {
    const { signer } = signerAt();
    expect(signer.sign(claims)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('keeps tokens under 300 characters for typical names', () => {
    const { signer } = signerAt();
    const typical = { namespace: 'production-integrations', name: 'pipedrive-crm-sync', uid: claims.uid, round: 1_000_000 };
    expect(signer.sign(typical).length).toBeLessThan(300);
  });
});

describe('a state reveals nothing to the provider or to whoever sees the URL', () => {
  it('contains neither the namespace, nor the name, nor the uid, in clear or decoded as base64', () => {
    const { signer } = signerAt();
    const app = { namespace: 'sales-team', name: 'crm-sync-pipedrive', uid: '9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f', round: 0 };
    for (let sample = 0; sample < 50; sample += 1) {
      const token = signer.sign(app);
      for (const reading of readings(token)) {
        for (const secret of [app.namespace, app.name, app.uid, app.uid.replaceAll('-', ''), '"ns"', '"exp"']) {
          expect(reading.toLowerCase()).not.toContain(secret.toLowerCase());
        }
      }
    }
  });

  it('does not tell the length of the names inside within a 32-byte block', () => {
    const { signer } = signerAt();
    const lengths = new Set(['a', 'ab', 'abc', 'abcd', 'abcdefgh'].map((name) => signer.sign({ ...claims, name }).length));
    expect(lengths.size).toBe(1);
  });

  it('opens with no other key: a state sealed elsewhere reads as forged', () => {
    const { signer } = signerAt();
    const { signer: other } = signerAt({ key: otherKey });
    expect(signer.verify(other.sign(claims))).toEqual({ ok: false, code: 'bad_signature' });
  });
});

describe('state integrity', () => {
  it('rejects a token with any byte changed', () => {
    const { signer } = signerAt();
    const bytes = Buffer.from(signer.sign(claims), 'base64url');
    for (let index = 1; index < bytes.length; index += 1) {
      const changed = Buffer.from(bytes);
      changed[index] = (changed[index] ?? 0) ^ 0x01;
      expect(signer.verify(changed.toString('base64url'))).toEqual({ ok: false, code: 'bad_signature' });
    }
  });

  it('rejects a token of another format version', () => {
    const { signer } = signerAt();
    const bytes = Buffer.from(signer.sign(claims), 'base64url');
    bytes[0] = 2;
    expect(signer.verify(bytes.toString('base64url'))).toEqual({ ok: false, code: 'malformed' });
  });

  it('rejects a token cut short or lengthened', () => {
    const { signer } = signerAt();
    const bytes = Buffer.from(signer.sign(claims), 'base64url');
    expect(signer.verify(bytes.subarray(0, bytes.length - 1).toString('base64url')).ok).toBe(false);
    expect(signer.verify(Buffer.concat([bytes, Buffer.from([0])]).toString('base64url')).ok).toBe(false);
  });

  it('rejects another spelling of the same bytes (spare bits of the last character set)', () => {
    const { signer } = signerAt();
    const token = signer.sign(claims);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(token.at(-1) ?? '');
    const variant = `${token.slice(0, -1)}${alphabet[last ^ 1]}`;
    // A state for these claims is always 157 bytes, which leaves 4 spare bits in its last character.
    expect(Buffer.from(variant, 'base64url').equals(Buffer.from(token, 'base64url'))).toBe(true);
    expect(signer.verify(variant)).toEqual({ ok: false, code: 'malformed' });
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

  it('checks integrity before the expiry: a forged token is never "expired"', () => {
    const { clock, signer } = signerAt();
    const { signer: other } = signerAt({ key: otherKey });
    const forged = other.sign(claims);
    clock.now = start + 86_400_000;
    expect(signer.verify(forged)).toEqual({ ok: false, code: 'bad_signature' });
  });

  it('rejects a correctly sealed payload that is not a state (wrong shape, extra fields, not JSON)', () => {
    const { signer } = signerAt();
    const payloads = [
      { ns: 'crm', n: 'pipedrive', u: 'x', r: -1, exp: start + 1000 },
      { ns: 'crm', n: 'pipedrive', u: 'x', r: 1, exp: start + 1000, admin: true },
      { ns: 'crm', n: 'pipedrive', u: 'x', r: 1 },
      ['crm'],
    ].map((payload) => JSON.stringify(payload).padEnd(64, ' '));
    for (const payload of [...payloads, 'not json'.padEnd(32, ' ')]) {
      expect(signer.verify(seal(payload))).toEqual({ ok: false, code: 'malformed' });
    }
    // The same sealing with the right payload is a state: the rejections above are about the payload.
    expect(signer.verify(seal(JSON.stringify({ ns: 'crm', n: 'pipedrive', u: 'x', r: 1, exp: start + 1000 }).padEnd(64, ' ')))).toMatchObject({ ok: true });
  });

  it.each([
    ['the empty string', ''],
    ['the old signed format', 'eyJucyI6ImZvcmdlZCJ9.not-a-signature'],
    ['non-base64url characters', 'ab+c/def'],
    ['padding', 'abcd='],
    ['too short to hold an IV and a tag', 'AQ'.padEnd(40, 'A')],
    ['an over-long token', 'a'.repeat(5000)],
  ])('reports %s as malformed', (_title, token) => {
    const { signer } = signerAt();
    expect(signer.verify(token)).toEqual({ ok: false, code: 'malformed' });
  });

  it('never throws on, and never accepts, an arbitrary string', () => {
    const { signer } = signerAt();
    // Starting with AQ: version 1, so the input reaches decryption.
    const tokenLike = fc.stringMatching(/^AQ[A-Za-z0-9_-]{80,300}$/);
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 400 }), tokenLike), (input) => {
        expect(signer.verify(input).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('never accepts a state with one character changed', () => {
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
});

describe('the signer', () => {
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
    const verifier = signer.codeVerifier(claims);
    mutable.fill(2);
    expect(signer.verify(token).ok).toBe(true);
    expect(signer.codeVerifier(claims)).toBe(verifier);
  });

  it('refuses to sign claims that could not be verified', () => {
    const { signer } = signerAt();
    for (const bad of [{ ...claims, round: -1 }, { ...claims, round: 1.5 }, { ...claims, name: '' }, { ...claims, extra: 1 }]) {
      expect(() => signer.sign(bad)).toThrow(expect.objectContaining({ code: 'invalid_claims' }));
    }
  });
});

describe('the PKCE code verifier of a state signer', () => {
  it('is the same for one key, app and round, whenever and by whichever replica it is derived', () => {
    const one = createStateSigner({ key, now: () => start });
    const another = createStateSigner({ key: Buffer.from(key), now: () => start + 3_600_000 });
    expect(one.codeVerifier({ uid: claims.uid, round: 3 })).toBe(another.codeVerifier({ uid: claims.uid, round: 3 }));
  });

  it('differs across rounds, apps and installations (keys)', () => {
    const { signer } = signerAt();
    const { signer: other } = signerAt({ key: otherKey });
    const verifiers = [
      signer.codeVerifier({ uid: claims.uid, round: 0 }),
      signer.codeVerifier({ uid: claims.uid, round: 1 }),
      signer.codeVerifier({ uid: claims.uid, round: 2 }),
      signer.codeVerifier({ uid: 'another-uid', round: 0 }),
      other.codeVerifier({ uid: claims.uid, round: 0 }),
    ];
    expect(new Set(verifiers).size).toBe(verifiers.length);
  });

  it('is a valid RFC 7636 verifier (43 unreserved characters) and appears in no state', () => {
    const { signer } = signerAt();
    const verifier = signer.codeVerifier(claims);
    expect(verifier).toMatch(/^[A-Za-z0-9._~-]{43}$/);
    for (const reading of readings(signer.sign(claims))) {
      expect(reading).not.toContain(verifier);
      expect(reading).not.toContain(codeChallengeS256(verifier));
    }
  });
});

describe('after a rotation: the current key and the one it replaced', () => {
  // The previous key is `key`, replaced by `otherKey` at `rotatedAt`.
  const rotatedAt = start + 4 * 60_000;
  const ttlMs = 10 * 60_000;
  const before = () => createStateSigner({ key, now: () => start });
  const after = (clock: { now: number }) => createStateSigner({ key: otherKey, previousKey: { key, rotatedAt }, now: () => clock.now });

  it('opens a state sealed with the previous key within the grace, and says which key opened it', () => {
    const old = before().sign(claims);
    const clock = { now: rotatedAt + 1000 };
    expect(after(clock).verify(old)).toEqual({ ok: true, claims, expiresAt: start + ttlMs, key: 'previous' });
  });

  it('refuses it once the grace is over, even when the state itself would live longer', () => {
    // Sealed with the old key by a replica that had not seen the rotation yet, after it.
    const late = createStateSigner({ key, now: () => rotatedAt + 8000 }).sign(claims);
    const clock = { now: rotatedAt + ttlMs - 1 };
    const signer = after(clock);
    expect(signer.verify(late)).toMatchObject({ ok: true, key: 'previous', expiresAt: rotatedAt + ttlMs });
    clock.now = rotatedAt + ttlMs;
    expect(signer.verify(late)).toEqual({ ok: false, code: 'expired' });
    clock.now = rotatedAt + ttlMs + 60_000;
    expect(signer.verify(late)).toEqual({ ok: false, code: 'expired' });
  });

  it('counts the grace as one state lifetime after the rotation (ttlMs)', () => {
    const late = createStateSigner({ key, now: () => rotatedAt, ttlMs: 60_000 }).sign(claims);
    const clock = { now: rotatedAt + 59_999 };
    const signer = createStateSigner({ key: otherKey, previousKey: { key, rotatedAt }, now: () => clock.now, ttlMs: 60_000 });
    expect(signer.verify(late).ok).toBe(true);
    clock.now = rotatedAt + 60_000;
    expect(signer.verify(late)).toEqual({ ok: false, code: 'expired' });
  });

  it('seals new states with the new key only: they open without the previous key, and not with it alone', () => {
    const clock = { now: rotatedAt + 1000 };
    const fresh = after(clock).sign(claims);
    expect(after(clock).verify(fresh)).toEqual({ ok: true, claims, expiresAt: clock.now + ttlMs, key: 'current' });
    expect(createStateSigner({ key: otherKey, now: () => clock.now }).verify(fresh)).toMatchObject({ ok: true, key: 'current' });
    expect(createStateSigner({ key, now: () => clock.now }).verify(fresh)).toEqual({ ok: false, code: 'bad_signature' });
  });

  it('derives the PKCE verifier from the key that opened the state', () => {
    const oldSigner = before();
    const old = oldSigner.sign(claims);
    const clock = { now: rotatedAt + 1000 };
    const signer = after(clock);
    const opened = signer.verify(old);
    if (!opened.ok) throw new Error('the previous-key state did not open');
    // The authorize request of that state carried the old key's challenge: its verifier is the old one.
    expect(signer.codeVerifier({ ...opened.claims, key: opened.key })).toBe(oldSigner.codeVerifier(claims));
    // New authorize requests use the new key's verifier, which differs.
    expect(signer.codeVerifier(claims)).toBe(createStateSigner({ key: otherKey, now: () => clock.now }).codeVerifier(claims));
    expect(signer.codeVerifier(claims)).not.toBe(oldSigner.codeVerifier(claims));
    const fresh = signer.verify(signer.sign(claims));
    if (!fresh.ok) throw new Error('a new state did not open');
    expect(signer.codeVerifier({ ...fresh.claims, key: fresh.key })).toBe(signer.codeVerifier(claims));
  });

  it('opens nothing with a key it never held, and derives no previous-key verifier without a previous key', () => {
    const clock = { now: rotatedAt + 1000 };
    const foreign = createStateSigner({ key: Buffer.alloc(32, 9), now: () => start }).sign(claims);
    expect(after(clock).verify(foreign)).toEqual({ ok: false, code: 'bad_signature' });
    expect(() => before().codeVerifier({ ...claims, key: 'previous' })).toThrow(expect.objectContaining({ code: 'no_previous_key' }));
  });

  it('refuses a previous key shorter than 32 bytes, or a rotation time that is not a time', () => {
    expect(() => createStateSigner({ key, previousKey: { key: Buffer.alloc(31), rotatedAt }, now: () => start })).toThrow(expect.objectContaining({ code: 'key_too_short' }));
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 1.5]) {
      expect(() => createStateSigner({ key, previousKey: { key: otherKey, rotatedAt: bad }, now: () => start })).toThrow(expect.objectContaining({ code: 'invalid_rotation_time' }));
    }
  });
});

describe('replaceableStateSigner', () => {
  it('sends every call to the signer of that moment', () => {
    const signer = replaceableStateSigner(createStateSigner({ key, now: () => start }));
    const old = signer.sign(claims);
    const oldVerifier = signer.codeVerifier(claims);
    signer.replace(createStateSigner({ key: otherKey, previousKey: { key, rotatedAt: start }, now: () => start + 1000 }));
    expect(signer.verify(old)).toMatchObject({ ok: true, key: 'previous' });
    expect(signer.codeVerifier({ ...claims, key: 'previous' })).toBe(oldVerifier);
    expect(signer.codeVerifier(claims)).not.toBe(oldVerifier);
    expect(signer.verify(signer.sign(claims))).toMatchObject({ ok: true, key: 'current' });
  });
});
