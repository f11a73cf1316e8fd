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
//
// Key rotation (docs/runbooks/rotate-state-signing-key.md): a signer may also hold the key it
// replaced. New states and verifiers always use the current key; a state that opens only with the
// previous key is accepted for one state lifetime after the rotation (it was sealed before it, so
// it would expire by then anyway; the cut-off also bounds states a replica sealed with the old key
// while it had not yet seen the rotation), and verify says so, so that the code exchange sends the
// PKCE verifier of the same key (`codeVerifier({ ..., key: 'previous' })`).
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

/** Which of a signer's keys opened a state: the current one, or the one it replaced (within the grace). */
export type StateKeyName = 'current' | 'previous';

/**
 * `expiresAt` (ms epoch) lets a caller reuse a state it handed out while it is still good for a
 * while: the earlier of the state's own expiry and, for the previous key, the end of its grace.
 * `key` says which key opened it; the PKCE verifier for it must come from the same key.
 */
export type VerifyResult = { ok: true; claims: StateClaims; expiresAt: number; key: StateKeyName } | { ok: false; code: StateVerifyErrorCode };

export interface StateSigner {
  /** Seals with the current key. */
  sign(claims: StateClaims): string;
  verify(token: string): VerifyResult;
  /**
   * The PKCE code_verifier (RFC 7636) for one app and authorization round: derived, never stored.
   * With the current key unless `key` says otherwise: for a state verify opened, pass its `key`.
   * Whether a previous-key state is still accepted is verify's call; this only derives.
   */
  codeVerifier(request: Pick<StateClaims, 'uid' | 'round'> & { key?: StateKeyName }): string;
}

export interface StateSignerOptions {
  /** The installation's signing key; at least 32 bytes of randomness. */
  key: Buffer;
  /**
   * The key `key` replaced in a rotation, and when (ms epoch): states it sealed are accepted until
   * `rotatedAt` plus the state lifetime, never later.
   */
  previousKey?: { key: Buffer; rotatedAt: number } | undefined;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** How long a state is accepted after it was signed. Default: 10 minutes. */
  ttlMs?: number;
}

export type StateTokenErrorCode = 'key_too_short' | 'invalid_ttl' | 'invalid_rotation_time' | 'invalid_claims' | 'no_previous_key';

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

/** One key's derived keys; `acceptedUntil` (ms epoch) only for the previous key. */
interface DerivedKeys {
  name: StateKeyName;
  sealingKey: Buffer;
  verifierKey: Buffer;
  acceptedUntil: number;
}

export function createStateSigner({ key, previousKey, now, ttlMs = defaultStateTtlMs }: StateSignerOptions): StateSigner {
  for (const each of [key, ...(previousKey ? [previousKey.key] : [])]) {
    if (each.length < minKeyBytes) {
      throw new StateTokenError('key_too_short', `the state signing key has ${each.length} bytes; it needs at least ${minKeyBytes}`);
    }
  }
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new StateTokenError('invalid_ttl', `the state lifetime must be a positive whole number of milliseconds, not ${ttlMs}`);
  }
  // NaN would make the comparison with the grace's end false forever: the previous key for good.
  if (previousKey && !Number.isSafeInteger(previousKey.rotatedAt)) {
    throw new StateTokenError('invalid_rotation_time', `the time of the key rotation must be whole milliseconds since the epoch, not ${previousKey.rotatedAt}`);
  }
  // Derived once, from a private copy: a caller that later overwrites its buffer changes nothing.
  const derive = (name: StateKeyName, signingKey: Buffer, acceptedUntil: number): DerivedKeys => ({
    name,
    sealingKey: stateKey(Buffer.from(signingKey)),
    verifierKey: pkceKey(Buffer.from(signingKey)),
    acceptedUntil,
  });
  const current = derive('current', key, Number.POSITIVE_INFINITY);
  const previous = previousKey ? derive('previous', previousKey.key, previousKey.rotatedAt + ttlMs) : undefined;
  const { sealingKey } = current;
  const header = Buffer.from([version]);

  /** The plaintext, if the token opens with this key. */
  const open = (keys: DerivedKeys, iv: Buffer, ciphertext: Buffer, tag: Buffer): Buffer | undefined => {
    try {
      const decipher = createDecipheriv('aes-256-gcm', keys.sealingKey, iv, { authTagLength: tagBytes });
      decipher.setAAD(header);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      return undefined;
    }
  };

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
      let opened: { keys: DerivedKeys; plaintext: Buffer } | undefined;
      for (const keys of previous ? [current, previous] : [current]) {
        const plaintext = open(keys, iv, ciphertext, tag);
        if (plaintext) {
          opened = { keys, plaintext };
          break;
        }
      }
      if (!opened) return { ok: false, code: 'bad_signature' };
      const payload = payloadSchema.safeParse(parseJson(opened.plaintext.toString('utf8')));
      if (!payload.success) return { ok: false, code: 'malformed' };
      const { ns, n, u, r, exp } = payload.data;
      // A previous-key state past the grace reads as expired: it was ours, its time is over.
      const expiresAt = Math.min(exp, opened.keys.acceptedUntil);
      if (now() >= expiresAt) return { ok: false, code: 'expired' };
      return { ok: true, claims: { namespace: ns, name: n, uid: u, round: r }, expiresAt, key: opened.keys.name };
    },

    codeVerifier({ uid, round, key: which = 'current' }) {
      const keys = which === 'current' ? current : previous;
      if (!keys) throw new StateTokenError('no_previous_key', 'this state signer holds no previous key');
      return deriveCodeVerifier(keys.verifierKey, uid, round);
    },
  };
}

/** A StateSigner whose keys can change while the operator runs (a rotation). */
export interface ReplaceableStateSigner extends StateSigner {
  /** From now on, every call goes to `next`. */
  replace(next: StateSigner): void;
}

/**
 * Delegates each call to the signer of that moment. A caller that needs a state's verifier from
 * the key that opened it calls verify and codeVerifier in the same synchronous turn, so that no
 * replacement comes between them (a second rotation can retire the key that opened it).
 */
export function replaceableStateSigner(initial: StateSigner): ReplaceableStateSigner {
  let signer = initial;
  return {
    sign: (claims) => signer.sign(claims),
    verify: (token) => signer.verify(token),
    codeVerifier: (request) => signer.codeVerifier(request),
    replace(next) {
      signer = next;
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
