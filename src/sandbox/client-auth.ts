import type { ClientAuthMethod } from './clients.ts';
import { invalidClient, invalidRequest } from './errors.ts';

/** The client credentials a token request carries, before they are checked. */
export interface PresentedClient {
  readonly method: ClientAuthMethod;
  readonly clientId: string;
  readonly clientSecret: string;
}

/** `application/x-www-form-urlencoded` decoding of one credential (RFC 6749 §2.3.1, Appendix B). */
const formDecode = (value: string): string | undefined => {
  try {
    return decodeURIComponent(value.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
};

const fromBasic = (authorization: string): PresentedClient => {
  const match = /^basic +(\S+)\s*$/i.exec(authorization);
  if (match?.[1] === undefined) throw invalidClient();
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw invalidClient();
  const clientId = formDecode(decoded.slice(0, colon));
  const clientSecret = formDecode(decoded.slice(colon + 1));
  if (clientId === undefined || clientSecret === undefined) throw invalidClient();
  return { method: 'client_secret_basic', clientId, clientSecret };
};

/**
 * Reads the client's credentials from HTTP Basic (`client_secret_basic`) or from the body
 * (`client_secret_post`). Sending a secret both ways is refused (RFC 6749 §2.3: one method per
 * request); a body `client_id` next to Basic must name the same client. Anything that is not a
 * full id-and-secret pair is `invalid_client`: the sandbox has no public clients.
 */
export const readClientCredentials = (
  authorization: string | undefined,
  body: { readonly clientId: string | undefined; readonly clientSecret: string | undefined },
): PresentedClient => {
  if (authorization !== undefined && authorization !== '') {
    if (body.clientSecret !== undefined) {
      throw invalidRequest('client credentials must be sent in the Authorization header or the body, not both');
    }
    const basic = fromBasic(authorization);
    if (body.clientId !== undefined && body.clientId !== basic.clientId) throw invalidClient();
    return basic;
  }
  if (body.clientId === undefined || body.clientSecret === undefined) throw invalidClient();
  return { method: 'client_secret_post', clientId: body.clientId, clientSecret: body.clientSecret };
};
