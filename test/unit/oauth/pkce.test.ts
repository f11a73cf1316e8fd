import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { codeChallengeS256, deriveCodeVerifier, pkceKey } from '../../../src/oauth/pkce.ts';

const signingKey = Buffer.alloc(32, 7);

describe('codeChallengeS256', () => {
  it('matches the RFC 7636 appendix B example', () => {
    expect(codeChallengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('is 43 base64url characters for any verifier', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9._~-]{43,128}$/), (verifier) => {
        expect(codeChallengeS256(verifier)).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }),
    );
  });
});

describe('deriveCodeVerifier', () => {
  const key = pkceKey(signingKey);

  it('is deterministic for one key, uid and round', () => {
    expect(deriveCodeVerifier(key, 'uid-1', 4)).toBe(deriveCodeVerifier(pkceKey(Buffer.from(signingKey)), 'uid-1', 4));
  });

  it('differs across rounds, uids and signing keys', () => {
    const seen = new Set<string>();
    for (const uid of ['uid-1', 'uid-2']) {
      for (let round = 0; round < 50; round += 1) seen.add(deriveCodeVerifier(key, uid, round));
    }
    seen.add(deriveCodeVerifier(pkceKey(Buffer.alloc(32, 8)), 'uid-1', 0));
    expect(seen.size).toBe(101);
  });

  it('does not confuse a uid ending in a digit with the round ("a1", 2 vs "a", 12)', () => {
    expect(deriveCodeVerifier(key, 'a1', 2)).not.toBe(deriveCodeVerifier(key, 'a', 12));
  });

  it('is a verifier RFC 7636 §4.1 accepts: 43 unreserved characters', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 128 }), fc.nat(), (uid, round) => {
        expect(deriveCodeVerifier(key, uid, round)).toMatch(/^[A-Za-z0-9._~-]{43}$/);
      }),
    );
  });

  it('uses a key of its own, not the signing key itself', () => {
    expect(pkceKey(signingKey).equals(signingKey)).toBe(false);
    expect(pkceKey(signingKey)).toHaveLength(32);
  });

  it('refuses a round that is not a whole number >= 0', () => {
    for (const round of [-1, 1.5, Number.NaN]) expect(() => deriveCodeVerifier(key, 'uid', round)).toThrow(RangeError);
  });
});
