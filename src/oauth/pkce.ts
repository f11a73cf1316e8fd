// PKCE (RFC 7636) with the S256 method, as RFC 9700 §2.1.1 asks of every authorization request.
//
// The code_verifier is never stored: it is HMAC-SHA256(K_pkce, uid NUL round), where K_pkce is
// derived with HKDF from the installation's state signing key. The authorize URL carries only its
// S256 challenge; the callback re-derives the verifier for the app and round its state names. So
// one verifier per authorization round (a round is used up by the first callback that names it),
// unguessable without the signing key, and nothing new in the state Secret.
import { createHash, createHmac, hkdfSync } from 'node:crypto';

/** 32 bytes of HMAC output in base64url: 43 characters, the shortest verifier RFC 7636 §4.1 allows. */
export const codeVerifierLength = 43;

/** The key for verifiers, kept apart from the state's encryption key (HKDF `info`). */
export function pkceKey(signingKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', signingKey, Buffer.alloc(0), 'oauthapp.dev/pkce-code-verifier/v1', 32));
}

/** The code_verifier for one app (by uid) and authorization round: deterministic, secret. */
export function deriveCodeVerifier(key: Buffer, uid: string, round: number): string {
  if (!Number.isSafeInteger(round) || round < 0) throw new RangeError(`an authorization round is a whole number >= 0, not ${round}`);
  // NUL cannot occur in a uid, so "uid NUL round" reads back one way only.
  return createHmac('sha256', key).update(`${uid}\u0000${round}`, 'utf8').digest('base64url');
}

/** RFC 7636 §4.2: code_challenge = BASE64URL(SHA256(ASCII(code_verifier))). */
export function codeChallengeS256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}
