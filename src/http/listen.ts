// Listening on a `HOST:PORT` flag value, shared by the metrics and the callback servers.
import type { Server } from 'node:net';

/** What listen() needs of a fastify app, whatever its logger and type-provider generics. */
export interface Listenable {
  listen(options: { host: string; port: number }): Promise<unknown>;
  close(): PromiseLike<unknown>;
  readonly server: Pick<Server, 'address'>;
}

export interface ListenAddress {
  /** Empty: all interfaces. IPv6 addresses without brackets. */
  host: string;
  port: number;
}

export interface ListeningServer {
  /** Where to reach it, with the bound port (a loopback host when listening on all interfaces). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export type ListenErrorCode = 'INVALID_LISTEN_ADDRESS' | 'LISTEN_FAILED';

export class ListenError extends Error {
  override readonly name = 'ListenError';
  readonly code: ListenErrorCode;

  constructor(code: ListenErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Parses `HOST:PORT`, `:PORT` or `[IPv6]:PORT`. */
export function parseListenAddress(address: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || port > 65_535) {
    throw new ListenError('INVALID_LISTEN_ADDRESS', `invalid listen address ${JSON.stringify(address)}: must be HOST:PORT, e.g. :8080 or 127.0.0.1:8080`);
  }
  return { host: match[1] ?? match[2] ?? '', port };
}

/**
 * Builds the app and listens on `address`; on all interfaces (empty host) dual stack where the
 * host has IPv6, else IPv4 alone. A fresh app per attempt: fastify cannot listen twice.
 */
export async function listen(address: string, build: () => Listenable): Promise<ListeningServer> {
  const { host, port } = parseListenAddress(address);
  const hosts = host === '' ? ['::', '0.0.0.0'] : [host];
  for (const [index, candidate] of hosts.entries()) {
    const app = build();
    try {
      await app.listen({ host: candidate, port });
    } catch (error) {
      await app.close();
      const code = (error as NodeJS.ErrnoException).code;
      const noIPv6 = code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL';
      if (noIPv6 && index < hosts.length - 1) continue;
      const detail = error instanceof Error ? error.message : String(error);
      throw new ListenError('LISTEN_FAILED', `cannot listen on ${address}: ${detail}`, { cause: error });
    }
    const bound = app.server.address();
    if (bound === null || typeof bound === 'string') {
      await app.close();
      throw new ListenError('LISTEN_FAILED', `no TCP address bound for ${address}`);
    }
    return { url: `http://${urlHost(candidate, bound.family)}:${bound.port}`, port: bound.port, close: async () => void (await app.close()) };
  }
  throw new ListenError('LISTEN_FAILED', `cannot listen on ${address}`);
}

function urlHost(host: string, family: string): string {
  const wildcard = host === '::' || host === '0.0.0.0';
  if (wildcard) return family === 'IPv6' ? '[::1]' : '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
