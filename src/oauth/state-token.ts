// The OAuth `state` parameter: a short-lived, encrypted token that names the OAuthApp an
// authorization is for. The callback trusts nothing else in the redirect: the app comes from a
// state this operator sealed, and only while it has not expired.
//
//   token = base64url(version || iv || AES-256-GCM(K_state, iv, payload, aad = version) || tag)
//
// The state travels through the person's browser, the provider and their logs: it is encrypted
// (RFC 9700 §4.7: a state reveals nothing), so none of the namespace, name, uid or round can be
// read from it, and the GCM tag stands in for the signature (a changed byte fails to open).
// K_state is derived with HKDF from the installation's signing key (the Secret
// oauthapp-state-signing-key); the same key also yields the PKCE code verifiers (./pkce.ts).
// The payload is padded to a multiple of 32 bytes so that the token's length says little about
// the length of the names inside.
//
// Single use is not tracked here: the claims carry the app's authorization round, and the caller
// bumps the round once a callback has been processed, so a replayed state names a stale round.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { deriveCodeVerifier, pkceKey } from './pkce.ts';

export interface StateClaims {
  namespace: string;
  name: string;
  /** The OAuthApp's metadata.uid: a state for a deleted and recreated app does not carry over. */
  uid: string;
  /** The app's authorization round when the state was issued. */
  round: number;
}

/** `bad_signature`: the token does not open with this installation's key (forged, changed, or foreign). */
export type StateVerifyErrorCode = 'malformed' | 'bad_signature' | 'expired';

/** `expiresAt` (ms epoch) lets a caller reuse a state it handed out while it is still good for a while. */
export type VerifyResult = { ok: true; claims: StateClaims; expiresAt: number } | { ok: false; code: StateVerifyErrorCode };

export interface StateSigner {
  sign(claims: StateClaims): string;
  verify(token: string): VerifyResult;
  /** The PKCE code_verifier (RFC 7636) for one app and authorization round: derived, never stored. */
  codeVerifier(request: Pick<StateClaims, 'uid' | 'round'>): string;
}

export interface StateSignerOptions {
  /** The installation's signing key; at least 32 bytes of randomness. */
  key: Buffer;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** How long a state is accepted after it was signed. Default: 10 minutes. */
  ttlMs?: number;
}

export type StateTokenErrorCode = 'key_too_short' | 'invalid_ttl' | 'invalid_claims';

export class StateTokenError extends Error {
  override readonly name = 'StateTokenError';
  readonly code: StateTokenErrorCode;

  constructor(code: StateTokenErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export const minKeyBytes = 32;
export const defaultStateTtlMs = 10 * 60_000;

/** Longer than any token this module seals (Kubernetes names are at most 253 characters). */
const maxTokenLength = 2048;
const version = 1;
const ivBytes = 12;
const tagBytes = 16;
const paddingBlock = 32;
const base64url = /^[A-Za-z0-9_-]+$/;

const claimsSchema = z.strictObject({
  namespace: z.string().min(1).max(253),
  name: z.string().min(1).max(253),
  uid: z.string().min(1).max(128),
  round: z.int().nonnegative(),
});

// Short keys: the token travels in two URLs (to the provider and back).
const payloadSchema = z.strictObject({
  ns: claimsSchema.shape.namespace,
  n: claimsSchema.shape.name,
  u: claimsSchema.shape.uid,
  r: claimsSchema.shape.round,
  exp: z.int().positive(),
});

/** The AES-256-GCM key for states, kept apart from the PKCE key (HKDF `info`). */
const stateKey = (signingKey: Buffer): Buffer =>
  Buffer.from(hkdfSync('sha256', signingKey, Buffer.alloc(0), 'oauthapp.dev/state-encryption/v1', 32));

export function createStateSigner({ key, now, ttlMs = defaultStateTtlMs }: StateSignerOptions): StateSigner {
  if (key.length < minKeyBytes) {
    throw new StateTokenError('key_too_short', `the state signing key has ${key.length} bytes; it needs at least ${minKeyBytes}`);
  }
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new StateTokenError('invalid_ttl', `the state lifetime must be a positive whole number of milliseconds, not ${ttlMs}`);
  }
  // Derived once, from a private copy: a caller that later overwrites its buffer changes nothing.
  const sealingKey = stateKey(Buffer.from(key));
  const verifierKey = pkceKey(Buffer.from(key));
  const header = Buffer.from([version]);

  return {
    sign(claims) {
      const parsed = claimsSchema.safeParse(claims);
      if (!parsed.success) throw new StateTokenError('invalid_claims', `cannot sign state claims: ${z.prettifyError(parsed.error)}`);
      const { namespace, name, uid, round } = parsed.data;
      const json = JSON.stringify({ ns: namespace, n: name, u: uid, r: round, exp: now() + ttlMs });
      // Trailing spaces are JSON whitespace: the padding needs no length field.
      const plaintext = Buffer.from(json.padEnd(Math.ceil(json.length / paddingBlock) * paddingBlock, ' '), 'utf8');
      const iv = randomBytes(ivBytes);
      const cipher = createCipheriv('aes-256-gcm', sealingKey, iv, { authTagLength: tagBytes });
      cipher.setAAD(header);
      const sealed = Buffer.concat([header, iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      return sealed.toString('base64url');
    },

    verify(token) {
      const bytes = decodeToken(token);
      if (bytes === undefined) return { ok: false, code: 'malformed' };
      const iv = bytes.subarray(1, 1 + ivBytes);
      const ciphertext = bytes.subarray(1 + ivBytes, bytes.length - tagBytes);
      const tag = bytes.subarray(bytes.length - tagBytes);
      let plaintext: Buffer;
      try {
        const decipher = createDecipheriv('aes-256-gcm', sealingKey, iv, { authTagLength: tagBytes });
        decipher.setAAD(header);
        decipher.setAuthTag(tag);
        plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      } catch {
        return { ok: false, code: 'bad_signature' };
      }
      const payload = payloadSchema.safeParse(parseJson(plaintext.toString('utf8')));
      if (!payload.success) return { ok: false, code: 'malformed' };
      const { ns, n, u, r, exp } = payload.data;
      if (now() >= exp) return { ok: false, code: 'expired' };
      return { ok: true, claims: { namespace: ns, name: n, uid: u, round: r }, expiresAt: exp };
    },

    codeVerifier({ uid, round }) {
      return deriveCodeVerifier(verifierKey, uid, round);
    },
  };
}

/** The token's bytes, when it has the right shape: canonical base64url, our version, room for iv and tag. */
function decodeToken(token: unknown): Buffer | undefined {
  if (typeof token !== 'string' || token.length > maxTokenLength || !base64url.test(token)) return undefined;
  const bytes = Buffer.from(token, 'base64url');
  // Canonical encoding only: base64url ignores the spare bits of the last character, so without
  // this check several spellings of one token would all open.
  if (bytes.toString('base64url') !== token) return undefined;
  if (bytes.length < 1 + ivBytes + paddingBlock + tagBytes || bytes[0] !== version) return undefined;
  return bytes;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
