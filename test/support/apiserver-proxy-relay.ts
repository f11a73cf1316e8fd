// The stream-level pieces of the apiserver proxy (apiserver-proxy.ts): the one HTTP/2 connection
// to the apiserver, a client's answer that ignores writes once the client has gone, a watch answer
// that can hold its events, and resetting a client's stream or connection.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  connect as connectHTTP2,
  constants,
  type ClientHttp2Session,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import type { ProxiedRequest } from './apiserver-proxy-faults.ts';

export type ClientRequest = Http2ServerRequest | IncomingMessage;

/** What the proxy uses of an HTTP/2 or HTTP/1.1 answer (node's compatibility API has both). */
interface ClientResponse {
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  write(chunk: Buffer): unknown;
  end(chunk?: Buffer | string): unknown;
  /** HTTP/1.1 only: sends the headers before any body (HTTP/2's writeHead already does). */
  flushHeaders?(): void;
  on(event: 'close' | 'error', listener: () => void): unknown;
}

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings', 'te']);

export function withoutHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(':') && !hopByHop.has(name) && value !== undefined) kept[name] = value;
  }
  return kept;
}

/** One HTTP/2 connection to the apiserver, opened again when it has gone (an apiserver restart). */
export class Upstream {
  private session: ClientHttp2Session | undefined;
  private readonly url: string;
  private readonly tls: { ca?: unknown; cert?: unknown; key?: unknown };

  constructor(url: string, tls: { ca?: unknown; cert?: unknown; key?: unknown }) {
    this.url = url;
    this.tls = tls;
  }

  request(headers: OutgoingHttpHeaders, body: Buffer) {
    const stream = this.connection().request(headers, { endStream: body.length === 0 });
    if (body.length > 0) stream.end(body);
    stream.on('error', () => undefined);
    return stream;
  }

  close(): void {
    this.session?.destroy();
  }

  private connection(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = connectHTTP2(this.url, this.tls as Parameters<typeof connectHTTP2>[1]);
    session.on('error', () => undefined);
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    this.session = session;
    return session;
  }
}

/** The answer to one client request; once the client has gone, writing to it does nothing. */
export class ClientAnswer {
  private gone = false;
  private readonly res: ClientResponse;

  constructor(res: Http2ServerResponse | ServerResponse) {
    this.res = res as ClientResponse;
    this.res.on('error', () => undefined);
    this.res.on('close', () => (this.gone = true));
  }

  get closed(): boolean {
    return this.gone;
  }

  onClose(listener: () => void): void {
    if (this.gone) listener();
    else this.res.on('close', listener);
  }

  head(status: number, headers: OutgoingHttpHeaders): void {
    if (this.gone) return;
    this.res.writeHead(status, headers);
    this.res.flushHeaders?.();
  }

  write(chunk: Buffer): void {
    if (!this.gone) this.res.write(chunk);
  }

  end(chunk?: Buffer | string): void {
    if (!this.gone) this.res.end(chunk);
  }
}

/** One watch answer: events pass through, or wait (in order, none dropped) while it is stalled. */
export class WatchRelay {
  readonly request: ProxiedRequest;
  private held: Buffer[] | undefined;
  private finished = false;
  private readonly answer: ClientAnswer;

  constructor(answer: ClientAnswer, request: ProxiedRequest) {
    this.answer = answer;
    this.request = request;
  }

  get stalled(): boolean {
    return this.held !== undefined;
  }

  /** Events held now (watch events are newline-delimited JSON). */
  get heldEvents(): number {
    return (this.held ?? []).reduce((sum, chunk) => sum + chunk.toString('utf8').split('\n').length - 1, 0);
  }

  stall(): void {
    this.held ??= [];
  }

  deliver(chunk: Buffer): void {
    if (this.held) this.held.push(chunk);
    else this.answer.write(chunk);
  }

  /** The apiserver ended the watch: the client sees the end after any held events. */
  finish(): void {
    this.finished = true;
    if (!this.held) this.answer.end();
  }

  release(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    for (const chunk of held) this.answer.write(chunk);
    if (this.finished) this.answer.end();
  }
}

/** Resets the client's HTTP/2 stream, or its whole connection (HTTP/1.1 has only the connection). */
export function resetClient(req: ClientRequest, scope: 'stream' | 'connection'): void {
  try {
    if (!('stream' in req)) req.socket.destroy();
    else if (scope === 'stream') req.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    else req.stream.session?.destroy();
  } catch {
    // the client has gone already
  }
}
