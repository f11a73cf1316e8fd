// The OAuth `state` parameter: a signed, short-lived token that names the OAuthApp an authorization
// is for. The callback trusts nothing else in the redirect: the app comes from a state this operator
// signed, and only while it has not expired.
//
//   token = base64url(JSON payload) '.' base64url(HMAC-SHA256(key, first part))
//
// Single use is not tracked here: the claims carry the app's authorization round, and the caller
// bumps the round once a callback has been processed, so a replayed state names a stale round.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export interface StateClaims {
  namespace: string;
  name: string;
  /** The OAuthApp's metadata.uid: a state for a deleted and recreated app does not carry over. */
  uid: string;
  /** The app's authorization round when the state was issued. */
  round: number;
}

export type StateVerifyErrorCode = 'malformed' | 'bad_signature' | 'expired';

/** `expiresAt` (ms epoch) lets a caller reuse a state it handed out while it is still good for a while. */
export type VerifyResult = { ok: true; claims: StateClaims; expiresAt: number } | { ok: false; code: StateVerifyErrorCode };

export interface StateSigner {
  sign(claims: StateClaims): string;
  verify(token: string): VerifyResult;
}

export interface StateSignerOptions {
  /** The HMAC key; at least 32 bytes of randomness. */
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

/** Longer than any token this module signs (Kubernetes names are at most 253 characters). */
const maxTokenLength = 2048;
const nonceBytes = 12;
const macBytes = 32;
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
  nonce: z.string().regex(base64url),
});

export function createStateSigner({ key, now, ttlMs = defaultStateTtlMs }: StateSignerOptions): StateSigner {
  if (key.length < minKeyBytes) {
    throw new StateTokenError('key_too_short', `the state signing key has ${key.length} bytes; it needs at least ${minKeyBytes}`);
  }
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new StateTokenError('invalid_ttl', `the state lifetime must be a positive whole number of milliseconds, not ${ttlMs}`);
  }
  // A private copy: a caller that later overwrites its buffer does not change the key.
  const secret = Buffer.from(key);
  const mac = (payloadPart: string): Buffer => createHmac('sha256', secret).update(payloadPart, 'ascii').digest();

  return {
    sign(claims) {
      const parsed = claimsSchema.safeParse(claims);
      if (!parsed.success) throw new StateTokenError('invalid_claims', `cannot sign state claims: ${z.prettifyError(parsed.error)}`);
      const { namespace, name, uid, round } = parsed.data;
      const payload = { ns: namespace, n: name, u: uid, r: round, exp: now() + ttlMs, nonce: randomBytes(nonceBytes).toString('base64url') };
      const payloadPart = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
      return `${payloadPart}.${mac(payloadPart).toString('base64url')}`;
    },

    verify(token) {
      const parts = splitToken(token);
      if (parts === undefined) return { ok: false, code: 'malformed' };
      const [payloadPart, signature] = parts;
      if (!timingSafeEqual(signature, mac(payloadPart))) return { ok: false, code: 'bad_signature' };

      const payload = payloadSchema.safeParse(parseJson(Buffer.from(payloadPart, 'base64url').toString('utf8')));
      if (!payload.success) return { ok: false, code: 'malformed' };
      const { ns, n, u, r, exp } = payload.data;
      if (now() >= exp) return { ok: false, code: 'expired' };
      return { ok: true, claims: { namespace: ns, name: n, uid: u, round: r }, expiresAt: exp };
    },
  };
}

/** The payload part and the decoded signature, when the token has the right shape. */
function splitToken(token: unknown): [string, Buffer] | undefined {
  if (typeof token !== 'string' || token.length > maxTokenLength) return undefined;
  const parts = token.split('.');
  if (parts.length !== 2) return undefined;
  const [payloadPart, signaturePart] = parts as [string, string];
  if (!base64url.test(payloadPart) || !base64url.test(signaturePart)) return undefined;
  const signature = Buffer.from(signaturePart, 'base64url');
  // Canonical encoding only: base64url ignores the spare bits of the last character, so without
  // this check several spellings of one signature would all verify.
  if (signature.length !== macBytes || signature.toString('base64url') !== signaturePart) return undefined;
  return [payloadPart, signature];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
