import { randomBytes } from 'node:crypto';

/** An opaque, URL-safe random value (access tokens, refresh tokens, codes). */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/** A lowercase hex value, the shape of Pipedrive's client ids and secrets. */
export const randomHex = (bytes: number): string => randomBytes(bytes).toString('hex');
