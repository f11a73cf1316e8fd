// A real HTTP server on 127.0.0.1 that records every request, for testing the token client
// against real sockets instead of a mocked got.
import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export type Handler = (request: RecordedRequest, response: ServerResponse) => void;

export interface Loopback {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Replaces the handler (for property tests that vary the answer). */
  handle(handler: Handler): void;
  close(): Promise<void>;
}

const listen = async (server: net.Server, host = '127.0.0.1'): Promise<number> => {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
};

/** `host`: another address of this machine to listen on (default 127.0.0.1). */
export const startLoopback = async (initial: Handler, host = '127.0.0.1'): Promise<Loopback> => {
  let handler = initial;
  const requests: RecordedRequest[] = [];
  const server = http.createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const request = {
        method: incoming.method ?? '',
        url: incoming.url ?? '',
        headers: incoming.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(request);
      handler(request, response);
    });
  });
  const port = await listen(server, host);
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/oauth/token`,
    requests,
    handle: (next) => {
      handler = next;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

export const json = (response: ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void => {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
};

/** A port nothing listens on (bound, then released). */
export const closedPort = async (): Promise<number> => {
  const server = net.createServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
};

/** A TCP server that answers a TLS ClientHello with plain text, so every handshake fails. */
export const startNotTLS = async (): Promise<{ url: string; close(): Promise<void> }> => {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  const port = await listen(server);
  return {
    url: `https://127.0.0.1:${port}/oauth/token`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

/** Form-decodes a body or one credential (application/x-www-form-urlencoded). */
export const formDecode = (value: string): string => decodeURIComponent(value.replaceAll('+', ' '));
