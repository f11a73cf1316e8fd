// The one HTTP connection pool to the apiserver. kubeconfig.ts supplies the server, TLS material
// and credentials; requests go through a single undici Agent (HTTP/2 where the apiserver speaks
// it), so 10,000 apps share a handful of connections instead of one per request.
import { Agent, fetch, type Response } from 'undici';
import { isOutOfReachStatus, type ApiserverAvailability } from './availability.ts';
import { KubeAPIError, statusOf } from './errors.ts';
import type { KubeConfig } from './kubeconfig.ts';

export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: 'application/json' | 'application/merge-patch+json' | 'application/apply-patch+yaml';
  accept?: string;
  signal?: AbortSignal;
}

const requestTimeoutMs = 30_000;
/** Kubelet-projected tokens are refreshed well before they expire (at 80% of an hour or more). */
const credentialsTTLMs = 30_000;

export class KubeHTTP {
  readonly serverURL: string;
  private readonly kubeConfig: KubeConfig;
  private readonly agent: Agent;
  private readonly availability: ApiserverAvailability | undefined;
  private cachedCredentials: { headers: Record<string, string>; until: number } | undefined;
  private readingCredentials: Promise<Record<string, string>> | undefined;

  private constructor(kubeConfig: KubeConfig, serverURL: string, agent: Agent, availability: ApiserverAvailability | undefined) {
    this.kubeConfig = kubeConfig;
    this.serverURL = serverURL;
    this.agent = agent;
    this.availability = availability;
  }

  /** `availability`, when given, learns of every request's outcome. */
  static async fromKubeConfig(kubeConfig: KubeConfig, options: { availability?: ApiserverAvailability } = {}): Promise<KubeHTTP> {
    const { tls } = kubeConfig;
    const agent = new Agent({
      connect: {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
        ...(tls.servername ? { servername: tls.servername } : {}),
      },
      // Watches hold connections open for minutes; the pool must not starve ordinary requests.
      connections: 64,
      // The apiserver speaks HTTP/2, so everything shares one connection. If it dies silently
      // (a vanished node, a dropped NAT entry), only PINGs notice: one unanswered for 20 s resets it
      // (undici's default is 60 s; much shorter risks false alarms on a loaded apiserver).
      h2Options: { pingInterval: 20_000 },
      keepAliveTimeout: 30_000,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    return new KubeHTTP(kubeConfig, kubeConfig.server.replace(/\/$/, ''), agent, options.availability);
  }

  /**
   * Sends a request and parses the JSON answer; a non-2xx answer throws KubeAPIError. Without a
   * signal of its own a request gives up after `requestTimeoutMs`: a stuck apiserver must not
   * hold a reconcile (and its queue key) forever.
   */
  async json<T>(request: KubeRequest): Promise<T> {
    const response = await this.send({ ...request, signal: request.signal ?? AbortSignal.timeout(requestTimeoutMs) });
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      // The connection died inside the answer: as unreachable as no answer at all.
      throw this.networkError(request, error);
    }
    if (!response.ok) throw KubeAPIError.fromResponse(request.method, request.path, response.status, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Sends a request whose body the caller streams (watches). */
  async stream(request: KubeRequest): Promise<Response> {
    const response = await this.send(request);
    if (!response.ok) {
      throw KubeAPIError.fromResponse(request.method, request.path, response.status, await response.text());
    }
    return response;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async send(request: KubeRequest): Promise<Response> {
    const url = new URL(this.serverURL + request.path);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { Accept: request.accept ?? 'application/json' };
    for (const [key, value] of Object.entries(await this.credentialHeaders())) headers[key] = value;
    if (request.body !== undefined) headers['Content-Type'] = request.contentType ?? 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method: request.method,
        headers,
        dispatcher: this.agent,
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        ...(request.signal ? { signal: request.signal } : {}),
      });
    } catch (error) {
      throw this.networkError(request, error);
    }
    if (isOutOfReachStatus(response.status)) this.availability?.recordOutOfReach();
    else this.availability?.recordAnswer();
    return response;
  }

  private networkError(request: KubeRequest, error: unknown): KubeAPIError {
    // A caller that aborted (a watch stopped at shutdown) learnt nothing about the apiserver; a
    // timeout did.
    const abortedByCaller = request.signal?.aborted === true && !(request.signal.reason instanceof DOMException && request.signal.reason.name === 'TimeoutError');
    if (!abortedByCaller) this.availability?.recordOutOfReach();
    return new KubeAPIError(request.method, request.path, statusOf.network, 'NetworkError', describeNetworkError(error), { cause: error });
  }

  /**
   * Re-read every so often, not once: projected service-account tokens rotate. Not per request
   * either: reading the token file each time, at thousands of requests a minute, is wasted I/O.
   */
  private async credentialHeaders(): Promise<Record<string, string>> {
    const now = Date.now();
    if (this.cachedCredentials && this.cachedCredentials.until > now) return this.cachedCredentials.headers;
    // One read for all the requests that find the cache expired (an exec plugin is a process each).
    this.readingCredentials ??= this.kubeConfig.credentials().finally(() => (this.readingCredentials = undefined));
    const headers = await this.readingCredentials;
    this.cachedCredentials = { headers, until: now + credentialsTTLMs };
    return headers;
  }
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.name === 'AbortError' ? 'aborted' : error.message}${cause}`;
  }
  return 'network error';
}
