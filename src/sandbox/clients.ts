import { timingSafeEqual } from 'node:crypto';
import { SandboxError } from './errors.ts';
import { randomHex } from './random.ts';

/** How a client may authenticate at the token endpoint (RFC 6749 §2.3.1). */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

export interface ClientRegistration {
  /** Default: 16 random hex characters, like Pipedrive's. */
  clientId?: string;
  /** Default: 40 random hex characters. */
  clientSecret?: string;
  /** The app's one callback URL; authorize and the code exchange must use exactly this. */
  redirectUri: string;
  /** Default: both, so any RFC 6749 client works. */
  authMethods?: readonly ClientAuthMethod[];
  /** The scope granted to every install of this app (Pipedrive sets scopes in its portal). */
  scope?: string;
  /**
   * Refuse authorization requests without a PKCE S256 code_challenge (RFC 7636, RFC 9700 §2.1.1).
   * Default false, as Pipedrive documents no PKCE; a challenge that is sent is verified either way.
   */
  requirePkce?: boolean;
}

export interface Client {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUri: string;
  readonly authMethods: readonly ClientAuthMethod[];
  readonly scope: string;
  readonly requirePkce: boolean;
}

const sameSecret = (a: string, b: string): boolean => {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
};

/** The developer portal: registered apps and their current client secrets. */
export class ClientRegistry {
  readonly #clients = new Map<string, Client>();

  readonly #defaultScope: string;

  constructor(defaultScope: string) {
    this.#defaultScope = defaultScope;
  }

  register(registration: ClientRegistration): Client {
    const clientId = registration.clientId ?? randomHex(8);
    if (this.#clients.has(clientId)) {
      throw new SandboxError('SANDBOX_CLIENT_EXISTS', `client ${clientId} is already registered`);
    }
    const client: Client = {
      clientId,
      clientSecret: registration.clientSecret ?? randomHex(20),
      redirectUri: registration.redirectUri,
      authMethods: registration.authMethods ?? ['client_secret_basic', 'client_secret_post'],
      scope: registration.scope ?? this.#defaultScope,
      requirePkce: registration.requirePkce ?? false,
    };
    this.#clients.set(clientId, client);
    return client;
  }

  find(clientId: string): Client | undefined {
    return this.#clients.get(clientId);
  }

  get(clientId: string): Client {
    const client = this.#clients.get(clientId);
    if (client === undefined) {
      throw new SandboxError('SANDBOX_CLIENT_NOT_FOUND', `client ${clientId} is not registered`);
    }
    return client;
  }

  /** The portal's "Refresh" button: a new secret, the old one refused from now on. */
  rotateSecret(clientId: string, newSecret: string = randomHex(20)): string {
    const client = this.get(clientId);
    this.#clients.set(clientId, { ...client, clientSecret: newSecret });
    return newSecret;
  }

  /** The client when id, secret and method all match its registration; otherwise undefined. */
  authenticate(clientId: string, clientSecret: string, method: ClientAuthMethod): Client | undefined {
    const client = this.#clients.get(clientId);
    if (client === undefined || !client.authMethods.includes(method)) return undefined;
    return sameSecret(client.clientSecret, clientSecret) ? client : undefined;
  }
}
