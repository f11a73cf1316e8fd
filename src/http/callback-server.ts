// The OAuth redirect target (DESIGN "First authorization"):
//   GET /oauth/callback?code=...&state=...                      the user allowed access
//   GET /oauth/callback?error=...&error_description=...&state=...  the provider refused
//   GET /oauth/callback/<path>?code=...   a public app's Marketplace install (no state of ours)
//   DELETE /oauth/callback/<path>         Pipedrive's uninstall callback (HTTP Basic, JSON body)
// This module reads the query and answers with a page; what a callback means (checking the state,
// exchanging the code, storing tokens) is the injected handler's job.
//
// The query carries a live authorization code and a state: neither is ever shown on a page or
// written to a log line, and anything the provider or the handler says is scrubbed of both.
// Requests that cannot be a callback get a clear 4xx page without reaching the handler.
//
// The server faces the internet, so a flood must cost little and be seen little: each client IP
// (an IPv6 /64 counts as one) gets `rateLimit.max` requests per window and then 429 with
// Retry-After, before any routing or apiserver work; at most `maxConnections` connections are
// open at once (more are dropped on accept); the request line and headers must arrive within
// `headersTimeoutMs` (a slowloris client is cut off with 408), and idle keep-alive connections
// close after 5 s. Every rejection (429, 4xx) is logged at debug only: a flood neither fills the
// log nor slows the process. The kubelet's probes go to the metrics server, a separate listener
// with none of these limits, so a full callback server does not fail them.
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import rateLimit from '@fastify/rate-limit';
import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino } from 'pino';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import { providerText, redactor, type Redact } from '../oauth/redact.ts';
import { listen, type ListeningServer } from './listen.ts';
import { authorizedPage, failedPage, pageHeaders, problemPage, type AppRef } from './pages.ts';

export const callbackPath = '/oauth/callback';
export const defaultMaxQueryLength = 4096;

export type CallbackFailureStatus = 400 | 403 | 404 | 409 | 410 | 502;

export type CallbackOutcome =
  | { ok: true; app: AppRef }
  | {
      ok: false;
      status: CallbackFailureStatus;
      /** A stable code: `state_invalid`, `state_expired`, `state_used`, `app_not_found`, `exchange_failed`, `access_denied`... */
      reason: string;
      /** A sentence for the person in front of the browser; no secret. */
      message: string;
      app?: AppRef | undefined;
    };

/** What an uninstall callback did; Pipedrive does not read it, so a status and a word suffice. */
export interface UninstallOutcome {
  status: 200 | 400 | 401 | 404;
  reason: string;
}

export interface CallbackHandler {
  /** Exchange the code for tokens and store them. */
  complete(input: { state: string; code: string; iss?: string | undefined }): Promise<CallbackOutcome>;
  /** The provider sent the user back with an error (its text flattened and capped at 200 characters). */
  refused(input: { state: string; error: string; description?: string; iss?: string | undefined }): Promise<CallbackOutcome>;
  /** Whether a code without a state is taken on this path (a public app's Marketplace install). Default: never. */
  acceptsStatelessCode?(path: string): boolean;
  /** A Marketplace install: a code with no state of ours. */
  installFromMarketplace?(input: { path: string; code: string }): Promise<CallbackOutcome>;
  /** The provider's uninstall callback (DELETE, HTTP Basic, JSON body). */
  uninstall?(input: { path: string; authorization: string | undefined; body: unknown }): Promise<UninstallOutcome>;
}

export type CallbackApp = FastifyInstance;

export interface CallbackAppOptions {
  handler: CallbackHandler;
  /** One line per callback (outcome, app, reason). Default: none. */
  logger?: Logger | undefined;
  /** Longest query string accepted; longer ones get 414. */
  maxQueryLength?: number | undefined;
  /** Requests per client IP per window; more get 429. Default: defaultCallbackLimits.rateLimit. */
  rateLimit?: CallbackRateLimit | undefined;
  /** Connections open at once; more are dropped on accept. Default 256. */
  maxConnections?: number | undefined;
  /** Time for the request line and headers to arrive; then 408 and the connection closes. Default 10 s. */
  headersTimeoutMs?: number | undefined;
  /**
   * Peers (IP addresses or CIDRs: an Ingress controller's pods) whose X-Forwarded-For names the
   * client. Default none: the peer address is the client (behind a proxy, every request then
   * counts against the proxy's one limit).
   */
  trustedProxies?: readonly string[] | undefined;
}

export interface CallbackRateLimit {
  max: number;
  windowMs: number;
}

export const defaultCallbackLimits = {
  // A person authorizing an app sends one or two callbacks; an office behind one NAT a few more.
  rateLimit: { max: 60, windowMs: 60_000 },
  maxConnections: 256,
  headersTimeoutMs: 10_000,
} as const satisfies { rateLimit: CallbackRateLimit; maxConnections: number; headersTimeoutMs: number };

/** Idle keep-alive connections hold a connection slot: a browser reconnects, so this is short. */
const keepAliveTimeoutMs = 5_000;
/** How often Node looks for connections past their headers or request timeout (its default is 30 s). */
const timeoutCheckIntervalMs = 1_000;

export interface CallbackServerOptions extends CallbackAppOptions {
  /** `HOST:PORT`; an empty HOST listens on all interfaces, port 0 on a free port. */
  address: string;
}

export type CallbackServer = ListeningServer;

// ---- the query -------------------------------------------------------------------------------

/**
 * The parameters this server reads; others (`scope`, `error_uri`...) are ignored. `iss` (RFC 9207)
 * is handed on when present: the handler checks it where the provider is known to send it.
 */
const knownParameters = new Set(['code', 'state', 'error', 'error_description', 'iss']);

const present = (name: string) => z.string({ error: `the ${name} parameter is missing` }).min(1, `the ${name} parameter is empty`);
const codeQuery = z.object({ code: present('code'), state: present('state') });
const visible = /[^\s\u0000-\u001f\u007f]/;
const errorQuery = z.object({
  error: present('error').regex(visible, 'the error parameter has no visible text'),
  error_description: z.string().optional(),
  state: present('state'),
});

type CallbackQuery = (
  | { kind: 'code'; code: string; state: string }
  | { kind: 'error'; error: string; description: string | undefined; state: string }
  | { kind: 'stateless-code'; code: string; state?: undefined }
) & { iss?: string };

interface Rejection {
  status: 400 | 404 | 405 | 414 | 429 | 431 | 500;
  reason: string;
  title: string;
  message: string;
}

type QueryResult = { ok: true; query: CallbackQuery } | { ok: false; rejection: Rejection };

const badRequest = (reason: string, message: string): { ok: false; rejection: Rejection } => ({
  ok: false,
  rejection: { status: 400, reason, title: 'Bad request', message },
});

/**
 * Reads the query as application/x-www-form-urlencoded (RFC 6749 appendix B), strictly: broken
 * percent-encoding and a repeated known parameter are errors, not guesses.
 */
export function readCallbackQuery(rawQuery: string, maxQueryLength = defaultMaxQueryLength, statelessCodeAccepted = false): QueryResult {
  if (rawQuery.length > maxQueryLength) {
    return {
      ok: false,
      rejection: { status: 414, reason: 'query_too_long', title: 'Request address too long', message: `The query string is longer than ${maxQueryLength} characters; this is not an OAuth callback.` },
    };
  }
  const params = new Map<string, string>();
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const name = decodeComponent(equals === -1 ? pair : pair.slice(0, equals));
    const value = decodeComponent(equals === -1 ? '' : pair.slice(equals + 1));
    if (name === undefined || value === undefined) return badRequest('malformed_query', 'The query string has broken percent-encoding.');
    if (!knownParameters.has(name)) continue;
    if (params.has(name)) return badRequest('repeated_parameter', `The ${name} parameter appears more than once.`);
    params.set(name, value);
  }

  if (params.has('code') && params.has('error')) {
    return badRequest('conflicting_parameters', 'The request has both a code and an error parameter; it cannot be both a success and a refusal.');
  }
  const fields = Object.fromEntries(params);
  const iss = params.has('iss') ? { iss: params.get('iss') ?? '' } : {};
  if (params.has('error')) {
    const parsed = errorQuery.safeParse(fields);
    if (!parsed.success) return missing(parsed.error);
    const { error, error_description: description, state } = parsed.data;
    return { ok: true, query: { kind: 'error', error, description: description === '' ? undefined : description, state, ...iss } };
  }
  // A Marketplace install brings a code and nothing of ours, where a public app takes it.
  if (statelessCodeAccepted && !params.has('state') && typeof fields.code === 'string' && fields.code !== '') {
    return { ok: true, query: { kind: 'stateless-code', code: fields.code, ...iss } };
  }
  const parsed = codeQuery.safeParse(fields);
  if (!parsed.success) return missing(parsed.error);
  return { ok: true, query: { kind: 'code', code: parsed.data.code, state: parsed.data.state, ...iss } };
}

function missing(error: z.ZodError): { ok: false; rejection: Rejection } {
  const issue = error.issues[0];
  const parameter = String(issue?.path[0] ?? 'code');
  const sentence = issue?.message ?? `the ${parameter} parameter is missing`;
  return badRequest(`missing_${parameter}`, `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}. The provider should send the user back here with a code and a state, or with an error and a state.`);
}

function decodeComponent(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

// ---- the app ---------------------------------------------------------------------------------

const silent = pino({ level: 'silent' });

const rejections = {
  notFound: { status: 404, reason: 'not_found', title: 'Not found', message: `There is nothing at this address. The OAuth callback is GET ${callbackPath} (and paths under it).` },
  method: { status: 405, reason: 'method_not_allowed', title: 'Method not allowed', message: `The OAuth callback only answers GET (and a provider's uninstall DELETE) on ${callbackPath} and paths under it.` },
  badPath: { status: 400, reason: 'malformed_path', title: 'Bad request', message: 'The request path has broken percent-encoding.' },
  longPath: { status: 414, reason: 'path_too_long', title: 'Request address too long', message: 'The request path is too long.' },
  rateLimited: { status: 429, reason: 'rate_limited', title: 'Too many requests', message: 'Too many requests came from your address. Wait a minute, then open the authorization link again.' },
  internal: {
    status: 500,
    reason: 'internal_error',
    title: 'Something went wrong',
    message: 'The operator could not finish the authorization because of an internal error. Try again; if it keeps failing, the operator log says more.',
  },
} as const satisfies Record<string, Rejection>;

/** The routes, without listening (tests use `inject`). */
export function buildCallbackApp({
  handler,
  logger,
  maxQueryLength = defaultMaxQueryLength,
  rateLimit: limit = defaultCallbackLimits.rateLimit,
  maxConnections = defaultCallbackLimits.maxConnections,
  headersTimeoutMs = defaultCallbackLimits.headersTimeoutMs,
  trustedProxies = [],
}: CallbackAppOptions): CallbackApp {
  const log = logger ?? silent;

  const app = fastify({
    // fastify's own logs would carry the URL, and with it the code and the state.
    logger: false,
    // HEAD must not run the handler (it would spend the code for nothing): it gets 405.
    exposeHeadRoutes: false,
    // Only GET is served and it has no body; other methods are answered before their body is read.
    bodyLimit: 1024,
    // A browser sends the whole request at once; a slow one is not a browser (slowloris). Node
    // checks these every timeoutCheckIntervalMs, so a client is cut off within a second of its time.
    http: { headersTimeout: headersTimeoutMs, connectionsCheckingInterval: timeoutCheckIntervalMs },
    requestTimeout: headersTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    trustProxy: trustedProxies.length > 0 ? [...trustedProxies] : false,
    frameworkErrors: (error, _request, reply) => {
      const rejection = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? rejections.longPath : rejections.badPath;
      log.debug({ outcome: 'rejected', status: rejection.status, reason: rejection.reason }, 'oauth callback: request rejected');
      void sendRejection(reply, rejection);
    },
    clientErrorHandler: (error, socket) => answerClientError(error, socket, log),
  });
  // Past the cap Node accepts a connection and closes it at once, before reading anything.
  app.server.maxConnections = maxConnections;
  app.server.on('drop', () => log.debug({ outcome: 'rejected', reason: 'max_connections', maxConnections }, 'oauth callback: connection dropped'));

  // Every request counts against its client's limit, whatever its path or method: the limit is the
  // first onRequest hook, ahead of the one below (both are added once the plugin has loaded).
  // The counters live in an LRU of at most 10,000 clients. A refused request throws a 429 error
  // (the error handler answers it); the plugin sets Retry-After.
  void app.register(rateLimit, { global: false, cache: 10_000 });
  app.after(() => {
    app.addHook('onRequest', app.rateLimit({ max: limit.max, timeWindow: limit.windowMs }));
    // Unknown paths and other methods are answered here, before any body would be parsed.
    app.addHook('onRequest', async (request, reply) => {
      if (!request.is404) return;
      const path = request.url.split('?', 1)[0] ?? '';
      const rejection = isCallbackPath(path) ? rejections.method : rejections.notFound;
      log.debug({ outcome: 'rejected', status: rejection.status, reason: rejection.reason }, 'oauth callback: request rejected');
      if (rejection === rejections.method) void reply.header('allow', 'GET, DELETE');
      return sendRejection(reply, rejection);
    });
  });
  app.setNotFoundHandler(async (_request, reply) => sendRejection(reply, rejections.notFound));

  app.setErrorHandler(async (error, _request, reply) => {
    const status = typeof (error as { statusCode?: unknown }).statusCode === 'number' ? (error as { statusCode: number }).statusCode : 500;
    if (status === 429) {
      log.debug({ outcome: 'rejected', status, reason: rejections.rateLimited.reason }, 'oauth callback: request rejected');
      return sendRejection(reply, rejections.rateLimited);
    }
    if (status >= 400 && status < 500) {
      log.debug({ outcome: 'rejected', status, reason: 'bad_request' }, 'oauth callback: request rejected');
      return reply.code(status).headers(pageHeaders).send(problemPage(STATUS_CODES[status] ?? 'Bad request', 'This request cannot be an OAuth callback.'));
    }
    log.error({ outcome: 'error', error: error instanceof Error ? error.message : String(error) }, 'oauth callback: internal error');
    return sendRejection(reply, rejections.internal);
  });

  // Every path under the callback: a public app's redirect URI path is how a state-less request
  // (a Marketplace install, an uninstall) names its app.
  const callback = async (request: FastifyRequest, reply: FastifyReply) => {
    const questionMark = request.url.indexOf('?');
    const path = questionMark === -1 ? request.url : request.url.slice(0, questionMark);
    const read = readCallbackQuery(questionMark === -1 ? '' : request.url.slice(questionMark + 1), maxQueryLength, handler.acceptsStatelessCode?.(path) ?? false);
    if (!read.ok) {
      log.debug({ outcome: 'rejected', status: read.rejection.status, reason: read.rejection.reason }, 'oauth callback: request rejected');
      return sendRejection(reply, read.rejection);
    }
    const { query } = read;
    const redact = secretsRedactor(query);
    let provider: ProviderWords | undefined;
    let outcome: CallbackOutcome;
    try {
      if (query.kind === 'stateless-code') {
        outcome = handler.installFromMarketplace
          ? await handler.installFromMarketplace({ path, code: query.code })
          : { ok: false, status: 400, reason: 'missing_state', message: 'The state parameter is missing.' };
      } else if (query.kind === 'code') {
        outcome = await handler.complete({ state: query.state, code: query.code, ...(query.iss === undefined ? {} : { iss: query.iss }) });
      } else {
        provider = providerSaid(query, redact);
        outcome = await handler.refused({ state: query.state, ...provider, ...(query.iss === undefined ? {} : { iss: query.iss }) });
      }
    } catch (error) {
      log.error({ outcome: 'error', error: redact(error instanceof Error ? error.message : String(error)) }, 'oauth callback: the handler failed');
      return sendRejection(reply, rejections.internal);
    }

    if (outcome.ok) {
      log.info({ outcome: 'authorized', app: qualified(outcome.app) }, 'oauth callback: authorized');
      return reply.code(200).headers(pageHeaders).send(authorizedPage(outcome.app));
    }
    // A 4xx is the request's fault (a forged, expired or used link; a refusal at the provider), and
    // anyone can send those by the thousand: debug only. What a person must act on reaches the
    // OAuthApp's conditions and Events. A 5xx (the provider did not take the code) is ours: warn.
    log[outcome.status >= 500 ? 'warn' : 'debug'](
      {
        outcome: 'failed',
        status: outcome.status,
        reason: outcome.reason,
        ...(outcome.app === undefined ? {} : { app: qualified(outcome.app) }),
        ...(provider === undefined ? {} : { providerError: provider.error }),
      },
      'oauth callback: authorization failed',
    );
    const page = failedPage({ message: redact(outcome.message), reason: outcome.reason, app: outcome.app, provider });
    return reply.code(outcome.status).headers(pageHeaders).send(page);
  };
  app.get(callbackPath, callback);
  app.get(`${callbackPath}/*`, callback);

  // The provider's uninstall callback; anyone can send one, so a refusal is logged at debug only.
  const uninstall = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!handler.uninstall) return sendRejection(reply.header('allow', 'GET'), rejections.method);
    const path = request.url.split('?', 1)[0] ?? '';
    const outcome = await handler.uninstall({ path, authorization: request.headers.authorization, body: request.body });
    log[outcome.status === 200 ? 'info' : 'debug']({ outcome: 'uninstall', status: outcome.status, reason: outcome.reason }, 'oauth callback: uninstall');
    if (outcome.status === 401) void reply.header('www-authenticate', 'Basic realm="oauth callback"');
    return reply.code(outcome.status).header('cache-control', 'no-store').send({ result: outcome.reason });
  };
  app.delete(callbackPath, uninstall);
  app.delete(`${callbackPath}/*`, uninstall);

  return app;
}

const isCallbackPath = (path: string) => path === callbackPath || path.startsWith(`${callbackPath}/`);

/** Listens on `address` (see listen.ts). */
export function startCallbackServer(options: CallbackServerOptions): Promise<CallbackServer> {
  return listen(options.address, () => buildCallbackApp(options));
}

// ---- helpers ---------------------------------------------------------------------------------

function sendRejection(reply: FastifyReply, rejection: Rejection): FastifyReply {
  return reply.code(rejection.status).headers(pageHeaders).send(problemPage(rejection.title, rejection.message));
}

interface ProviderWords {
  error: string;
  description?: string;
}

/** The provider's words, fit to show and to hand on: secrets removed, flattened, capped. */
function providerSaid(query: { error: string; description: string | undefined }, redact: Redact): ProviderWords {
  const error = providerText(query.error, redact);
  const description = query.description === undefined ? '' : providerText(query.description, redact);
  return description === '' ? { error } : { error, description };
}

/**
 * Removes the code and the state from text shown or logged. A state shorter than any this operator
 * signs is not one (the handler rejects it) and is left alone, so that `state=a` does not blank
 * every `a` of the provider's words.
 */
function secretsRedactor(query: CallbackQuery): Redact {
  const state = query.state !== undefined && query.state.length >= minRedactedStateLength ? [query.state] : [];
  return redactor(query.kind === 'error' ? state : [query.code, ...state]);
}

const minRedactedStateLength = 16;

const qualified = (app: AppRef): string => `${app.namespace}/${app.name}`;

/**
 * Node's parser refused the request before fastify saw it (headers over the size limit, a broken
 * request line, a timeout). The answer is written to the socket directly, as Node itself would.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket, log: Logger): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, title, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request headers too large', 'The request headers (or its address) are larger than this server accepts.']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request timeout', 'The request took too long to arrive.']
        : [400, 'Bad request', 'The request is not valid HTTP.'];
  log.debug({ outcome: 'rejected', status, reason: error.code ?? 'client_error' }, 'oauth callback: request rejected');
  if (socket.writable) {
    const body = problemPage(title, message);
    const headers = Object.entries({ ...pageHeaders, 'content-length': String(Buffer.byteLength(body)), connection: 'close' })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${headers}\r\n${body}`);
  }
  socket.destroy(error);
}

