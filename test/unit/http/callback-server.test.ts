import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import {
  buildCallbackApp,
  readCallbackQuery,
  startCallbackServer,
  type CallbackHandler,
  type CallbackOutcome,
  type CallbackServer,
  type UninstallOutcome,
} from '../../../src/http/callback-server.ts';

// Canary values: none of them may ever appear in a page or a log line.
const CODE = 'c0de-CANARY-7f3a9b1e5d2c4a6b8e0f';
const STATE = 'st4te-CANARY-0a1b2c3d4e5f6a7b8c9d.sig-CANARY-e8d7c6b5';
const canaries = [CODE, STATE, 'CANARY'];

const app = { namespace: 'crm', name: 'pipedrive' };

interface Recorder extends CallbackHandler {
  calls: Array<{ method: 'complete' | 'refused'; input: unknown }>;
}

const handlerAnswering = (answer: (method: 'complete' | 'refused') => Promise<CallbackOutcome>): Recorder => {
  const calls: Recorder['calls'] = [];
  return {
    calls,
    complete: async (input) => {
      calls.push({ method: 'complete', input });
      return answer('complete');
    },
    refused: async (input) => {
      calls.push({ method: 'refused', input });
      return answer('refused');
    },
  };
};

const succeeding = () => handlerAnswering(async () => ({ ok: true, app }));

/** A logger that keeps its lines, at debug level, without any redaction configured. */
const memoryLogger = () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, destination), lines };
};

const setup = (handler: CallbackHandler = succeeding(), maxQueryLength?: number) => {
  const { logger, lines } = memoryLogger();
  const server = buildCallbackApp({ handler, logger, ...(maxQueryLength === undefined ? {} : { maxQueryLength }) });
  return { server, lines };
};

const expectPage = (response: { headers: Record<string, unknown>; body: string }) => {
  expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(response.headers['cache-control']).toBe('no-store');
  expect(response.headers['referrer-policy']).toBe('no-referrer');
  expect(response.headers['x-content-type-options']).toBe('nosniff');
  expect(response.headers['content-security-policy']).toContain("default-src 'none'; style-src 'unsafe-inline'");
  expect(response.body).toMatch(/^<!doctype html>/);
  expect(response.body).not.toMatch(/ at .*\.(?:ts|js):\d+/); // no stack trace
};

const expectNoCanary = (text: string) => {
  for (const canary of canaries) expect(text).not.toContain(canary);
};

const query = (params: Record<string, string>) => new URLSearchParams(params).toString();

describe('callback server: requests that cannot be a callback', () => {
  it.each([
    ['the root', 'GET', '/', 404],
    ['another path', 'GET', '/oauth/authorize', 404],
    ['a path under the callback with no query', 'GET', '/oauth/callback/', 400],
    ['a path longer than fastify allows for a parameter', 'GET', `/oauth/${'x'.repeat(500)}`, 404],
    ['broken percent-encoding in the path', 'GET', '/oauth/%zz', 400],
    ['POST', 'POST', `/oauth/callback?${query({ code: CODE, state: STATE })}`, 405],
    ['PUT', 'PUT', '/oauth/callback', 405],
    ['DELETE', 'DELETE', '/oauth/callback', 405],
    ['PATCH', 'PATCH', '/oauth/callback', 405],
    ['OPTIONS', 'OPTIONS', '/oauth/callback', 405],
    ['HEAD (it would spend the code)', 'HEAD', `/oauth/callback?${query({ code: CODE, state: STATE })}`, 405],
  ] as const)('%s: %s %s gets %i, a page, no handler call', async (_title, method, url, status) => {
    const handler = succeeding();
    const { server, lines } = setup(handler);
    const response = await server.inject({ method, url });
    expect(response.statusCode).toBe(status);
    if (method !== 'HEAD') expectPage(response);
    expect(handler.calls).toEqual([]);
    expectNoCanary(lines.join(''));
  });

  it('names GET and DELETE (the uninstall callback) in Allow on 405', async () => {
    const { server } = setup();
    const response = await server.inject({ method: 'POST', url: '/oauth/callback' });
    expect(response.headers.allow).toBe('GET, DELETE');
  });

  it('answers another method with 405 before reading its body (no 415 or 413)', async () => {
    const handler = succeeding();
    const { server } = setup(handler);
    for (const [type, payload] of [
      ['application/x-unknown', 'whatever'],
      ['application/json', '{not json'],
      ['text/plain', 'x'.repeat(100_000)],
    ]) {
      const response = await server.inject({ method: 'POST', url: '/oauth/callback', headers: { 'content-type': type }, payload });
      expect(response.statusCode).toBe(405);
      expectPage(response);
    }
    expect(handler.calls).toEqual([]);
  });

  it.each([
    ['no query at all', '', 'code'],
    ['a state without a code', query({ state: STATE }), 'code'],
    ['a code without a state', query({ code: CODE }), 'state'],
    ['an empty code', `code=&state=${STATE}`, 'code'],
    ['an empty state', `code=${CODE}&state=`, 'state'],
    ['a bare code name', `code&state=${STATE}`, 'code'],
    ['an error without a state', query({ error: 'access_denied' }), 'state'],
    ['an empty error', `error=&state=${STATE}`, 'error'],
    ['an error of control characters', `error=%01%02&state=${STATE}`, 'error'],
  ])('answers %s with 400 naming the missing parameter', async (_title, rawQuery, parameter) => {
    const handler = succeeding();
    const { server, lines } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${rawQuery}` });
    expect(response.statusCode).toBe(400);
    expectPage(response);
    expect(response.body).toContain(`The ${parameter} parameter`);
    expect(handler.calls).toEqual([]);
    expectNoCanary(response.body + lines.join(''));
  });

  it.each([
    ['both a code and an error', `${query({ code: CODE, error: 'access_denied', state: STATE })}`, 'both a code and an error'],
    ['a repeated code', `code=${CODE}&code=other&state=${STATE}`, 'code parameter appears more than once'],
    ['a repeated state', `code=${CODE}&state=${STATE}&state=${STATE}`, 'state parameter appears more than once'],
    ['a repeated error', `error=a&error=b&state=${STATE}`, 'error parameter appears more than once'],
    ['a repeated error_description', `error=a&error_description=x&error_description=y&state=${STATE}`, 'error_description parameter appears more than once'],
    ['a repeated iss', `code=${CODE}&state=${STATE}&iss=https%3A%2F%2Fidp&iss=https%3A%2F%2Fevil`, 'iss parameter appears more than once'],
    ['broken percent-encoding in the code', `code=${CODE}%zz&state=${STATE}`, 'broken percent-encoding'],
    ['broken percent-encoding in the state', `code=${CODE}&state=${STATE}%`, 'broken percent-encoding'],
    ['percent-encoding that is not UTF-8', `code=${CODE}%FF&state=${STATE}`, 'broken percent-encoding'],
    ['broken percent-encoding in an unknown parameter', `code=${CODE}&state=${STATE}&x%E0=1`, 'broken percent-encoding'],
  ])('answers %s with 400 and no handler call', async (_title, rawQuery, words) => {
    const handler = succeeding();
    const { server, lines } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${rawQuery}` });
    expect(response.statusCode).toBe(400);
    expectPage(response);
    expect(response.body).toContain(words);
    expect(handler.calls).toEqual([]);
    expectNoCanary(response.body + lines.join(''));
  });

  it('answers a query string over the limit with 414, and one at the limit normally', async () => {
    const handler = succeeding();
    const { server } = setup(handler, 200);
    const base = `code=${CODE}&state=${STATE}&pad=`;
    const atLimit = await server.inject({ method: 'GET', url: `/oauth/callback?${base}${'x'.repeat(200 - base.length)}` });
    expect(atLimit.statusCode).toBe(200);
    const over = await server.inject({ method: 'GET', url: `/oauth/callback?${base}${'x'.repeat(201 - base.length)}` });
    expect(over.statusCode).toBe(414);
    expectPage(over);
    expectNoCanary(over.body);
    expect(handler.calls).toHaveLength(1);
  });

  it('limits the query string to 4096 characters by default', async () => {
    const handler = succeeding();
    const { server } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?code=${CODE}&state=${STATE}&pad=${'x'.repeat(4096)}` });
    expect(response.statusCode).toBe(414);
    expect(handler.calls).toEqual([]);
  });
});

describe('callback server: a successful authorization', () => {
  it('hands the code and the state to the handler, decoded as a form', async () => {
    const handler = succeeding();
    const { server } = setup(handler);
    await server.inject({ method: 'GET', url: `/oauth/callback?code=a%2Bb+c%2F%3D&state=${STATE}&scope=deals%3Aread&iss=https%3A%2F%2Fidp` });
    expect(handler.calls).toEqual([{ method: 'complete', input: { code: 'a+b c/=', state: STATE, iss: 'https://idp' } }]);
  });

  it('hands iss (RFC 9207) on only when the provider sent it', async () => {
    const handler = succeeding();
    const { server } = setup(handler);
    await server.inject({ method: 'GET', url: `/oauth/callback?code=c&state=${STATE}` });
    await server.inject({ method: 'GET', url: `/oauth/callback?code=c&state=${STATE}&iss=` });
    expect(handler.calls).toEqual([
      { method: 'complete', input: { code: 'c', state: STATE } },
      { method: 'complete', input: { code: 'c', state: STATE, iss: '' } },
    ]);
  });

  it('answers 200 with a page that names the app and says the operator holds its tokens', async () => {
    const { server, lines } = setup();
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${query({ code: CODE, state: STATE })}` });
    expect(response.statusCode).toBe(200);
    expectPage(response);
    expect(response.body).toContain('<code>crm/pipedrive</code>');
    expect(response.body).toContain('now holds the tokens');
    expectNoCanary(response.body + lines.join(''));
  });

  it('logs one line: the outcome and the app, never the code or the state', async () => {
    const { server, lines } = setup();
    await server.inject({ method: 'GET', url: `/oauth/callback?${query({ code: CODE, state: STATE })}` });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 30, outcome: 'authorized', app: 'crm/pipedrive' });
    expectNoCanary(lines.join(''));
  });

  it('escapes the app name', async () => {
    const { server } = setup(handlerAnswering(async () => ({ ok: true, app: { namespace: 'a<b', name: '"x"&' } })));
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${query({ code: CODE, state: STATE })}` });
    expect(response.body).toContain('a&lt;b/&quot;x&quot;&amp;');
  });
});

describe('callback server: a failed authorization', () => {
  const failures: Array<Extract<CallbackOutcome, { ok: false }>> = [
    { ok: false, status: 400, reason: 'state_invalid', message: 'This authorization link is not valid.' },
    { ok: false, status: 410, reason: 'state_expired', message: 'This authorization link has expired.', app },
    { ok: false, status: 409, reason: 'state_used', message: 'This authorization link was already used.', app },
    { ok: false, status: 404, reason: 'app_not_found', message: 'The OAuthApp no longer exists.', app },
    { ok: false, status: 502, reason: 'exchange_failed', message: 'The provider did not accept the code.', app },
    { ok: false, status: 403, reason: 'state_invalid', message: 'Not signed by this operator.' },
  ];

  it.each(failures)('answers $reason with $status, the handler\'s sentence and the app when known', async (outcome) => {
    const { server, lines } = setup(handlerAnswering(async () => outcome));
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${query({ code: CODE, state: STATE })}` });
    expect(response.statusCode).toBe(outcome.status);
    expectPage(response);
    expect(response.body).toContain(outcome.message);
    expect(response.body).toContain(`<code>${outcome.reason}</code>`);
    if (outcome.app === undefined) expect(response.body).not.toContain('OAuthApp:');
    else expect(response.body).toContain('OAuthApp: <code>crm/pipedrive</code>');
    expect(lines).toHaveLength(1);
    // A 4xx is the request's fault and anyone can send it: debug. A provider that failed: warn.
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: outcome.status >= 500 ? 40 : 20, outcome: 'failed', status: outcome.status, reason: outcome.reason });
    expectNoCanary(response.body + lines.join(''));
  });

  it('escapes the handler\'s sentence and removes the code and state should it carry them', async () => {
    const message = `<script>alert(1)</script> code ${CODE} state ${STATE}`;
    const { server } = setup(handlerAnswering(async () => ({ ok: false, status: 502, reason: 'exchange_failed', message })));
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${query({ code: CODE, state: STATE })}` });
    expect(response.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(response.body).not.toContain('<script>');
    expectNoCanary(response.body);
  });
});

describe('callback server: the provider refused', () => {
  const denied = (): Recorder =>
    handlerAnswering(async () => ({ ok: false, status: 403, reason: 'access_denied', message: 'Access was not granted.', app }));

  it('calls refused with the state, the error and the description', async () => {
    const handler = denied();
    const { server } = setup(handler);
    await server.inject({ method: 'GET', url: `/oauth/callback?${query({ error: 'access_denied', error_description: 'The user said no.', state: STATE })}` });
    expect(handler.calls).toEqual([{ method: 'refused', input: { state: STATE, error: 'access_denied', description: 'The user said no.' } }]);
  });

  it('hands iss (RFC 9207) on with a refusal too', async () => {
    const handler = denied();
    const { server } = setup(handler);
    await server.inject({ method: 'GET', url: `/oauth/callback?${query({ error: 'access_denied', state: STATE, iss: 'https://idp.example.com' })}` });
    expect(handler.calls).toEqual([{ method: 'refused', input: { state: STATE, error: 'access_denied', iss: 'https://idp.example.com' } }]);
  });

  it('leaves the description out when there is none or it is empty', async () => {
    const handler = denied();
    const { server } = setup(handler);
    await server.inject({ method: 'GET', url: `/oauth/callback?${query({ error: 'access_denied', state: STATE })}` });
    await server.inject({ method: 'GET', url: `/oauth/callback?${query({ error: 'access_denied', error_description: '', state: STATE })}` });
    expect(handler.calls.map((call) => call.input)).toEqual([
      { state: STATE, error: 'access_denied' },
      { state: STATE, error: 'access_denied' },
    ]);
  });

  it('answers with the handler\'s page, which shows the provider\'s words escaped', async () => {
    const { server, lines } = setup(denied());
    const response = await server.inject({
      method: 'GET',
      url: `/oauth/callback?${query({ error: 'access_denied', error_description: '<img src=x onerror=alert(1)> "no"', state: STATE })}`,
    });
    expect(response.statusCode).toBe(403);
    expectPage(response);
    expect(response.body).toContain('Access was not granted.');
    expect(response.body).toContain('OAuthApp: <code>crm/pipedrive</code>');
    expect(response.body).toContain('<code>access_denied</code>: &lt;img src=x onerror=alert(1)&gt; &quot;no&quot;');
    expect(response.body).not.toContain('<img');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ outcome: 'failed', reason: 'access_denied', providerError: 'access_denied', app: 'crm/pipedrive' });
    expectNoCanary(response.body + lines.join(''));
  });

  it('caps the provider\'s text at 200 characters and flattens its line breaks', async () => {
    const handler = denied();
    const { server } = setup(handler);
    const description = `line one\r\nline two ${'y'.repeat(400)}`;
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${query({ error: 'access_denied', error_description: description, state: STATE })}` });
    const input = handler.calls[0]?.input as { description: string };
    expect(input.description).toMatch(/^line one line two y+…$/);
    expect(input.description.length).toBe(201);
    expect(response.body).toContain(input.description);
    expect(response.body).not.toContain('y'.repeat(201));
  });

  it('never shows the state, even when the provider echoes it in its description', async () => {
    const handler = denied();
    const { server, lines } = setup(handler);
    const response = await server.inject({
      method: 'GET',
      url: `/oauth/callback?${query({ error: 'invalid_request', error_description: `bad state ${STATE}`, state: STATE })}`,
    });
    expect(response.body).toContain('bad state [redacted]');
    expectNoCanary(response.body + lines.join(''));
  });
});

describe('callback server: a handler that fails', () => {
  it('answers 500 with a generic page, and logs the message only, without the code', async () => {
    const handler = handlerAnswering(async () => {
      throw new Error(`token store exploded while handling ${CODE}`);
    });
    const { server, lines } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${query({ code: CODE, state: STATE })}` });
    expect(response.statusCode).toBe(500);
    expectPage(response);
    expect(response.body).toContain('internal error');
    expect(response.body).not.toContain('exploded');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(line).toMatchObject({ level: 50, outcome: 'error', error: 'token store exploded while handling [redacted]' });
    expect(lines[0]).not.toContain('stack');
    expectNoCanary(response.body + lines.join(''));
  });

  it('answers 500 when the handler rejects with something that is not an Error', async () => {
    const handler = handlerAnswering(() => Promise.reject(new Map([['secret', CODE]])));
    const { server, lines } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${query({ code: CODE, state: STATE })}` });
    expect(response.statusCode).toBe(500);
    expectPage(response);
    expectNoCanary(response.body + lines.join(''));
  });

  it('answers 500 when the answer itself cannot be built (an outcome without its app)', async () => {
    const handler = handlerAnswering(async () => ({ ok: true }) as unknown as CallbackOutcome);
    const { server, lines } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback?${query({ code: CODE, state: STATE })}` });
    expect(response.statusCode).toBe(500);
    expectPage(response);
    expect(response.body).not.toContain('namespace');
    expect(JSON.parse(lines.at(-1) ?? '')).toMatchObject({ level: 50, outcome: 'error' });
    expectNoCanary(response.body + lines.join(''));
  });
});

/** A handler for public apps: state-less codes are taken on `publicPath` and paths under it. */
interface PublicRecorder extends CallbackHandler {
  calls: Array<{ method: 'complete' | 'refused' | 'installFromMarketplace' | 'uninstall'; input: unknown }>;
  asked: string[];
}

const publicAppsHandler = ({
  publicPath = '/oauth/callback/crm',
  install = async (): Promise<CallbackOutcome> => ({ ok: true, app }),
  uninstallAnswer = { status: 200, reason: 'uninstalled' } as UninstallOutcome,
  withUninstall = true,
} = {}): PublicRecorder => {
  const calls: PublicRecorder['calls'] = [];
  const asked: string[] = [];
  return {
    calls,
    asked,
    complete: async (input) => {
      calls.push({ method: 'complete', input });
      return { ok: true, app };
    },
    refused: async (input) => {
      calls.push({ method: 'refused', input });
      return { ok: true, app };
    },
    acceptsStatelessCode: (path) => {
      asked.push(path);
      return path === publicPath || path.startsWith(`${publicPath}/`);
    },
    installFromMarketplace: async (input) => {
      calls.push({ method: 'installFromMarketplace', input });
      return install();
    },
    ...(withUninstall
      ? {
          uninstall: async (input: { path: string; authorization: string | undefined; body: unknown }) => {
            calls.push({ method: 'uninstall', input });
            return uninstallAnswer;
          },
        }
      : {}),
  };
};

describe('callback server: a Marketplace install (a code without state)', () => {
  it('goes to installFromMarketplace with the path and the code, on a path the handler accepts', async () => {
    const handler = publicAppsHandler();
    const { server, lines } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback/crm?${query({ code: CODE })}` });
    expect(response.statusCode).toBe(200);
    expectPage(response);
    expect(handler.calls).toEqual([{ method: 'installFromMarketplace', input: { path: '/oauth/callback/crm', code: CODE } }]);
    expectNoCanary(response.body + lines.join(''));
  });

  it('never shows or logs the code, even when the handler\'s sentence carries it', async () => {
    const handler = publicAppsHandler({ install: async () => ({ ok: false, status: 502, reason: 'exchange_failed', message: `the provider refused ${CODE}`, app }) });
    const { server, lines } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback/crm?${query({ code: CODE })}` });
    expect(response.statusCode).toBe(502);
    expectNoCanary(response.body + lines.join(''));
    expect(lines.join('')).toContain('exchange_failed');
  });

  it('is 400 missing_state on a path the handler does not accept, and no handler method runs', async () => {
    const handler = publicAppsHandler();
    const { server, lines } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback/other?${query({ code: CODE })}` });
    expect(response.statusCode).toBe(400);
    expectPage(response);
    expect(response.body).toContain('The state parameter is missing');
    expect(lines.join('')).toContain('missing_state');
    expect(handler.calls).toEqual([]);
    expectNoCanary(response.body + lines.join(''));
  });

  it('is 400 missing_state everywhere for a handler that takes no state-less code (no acceptsStatelessCode)', async () => {
    const handler = succeeding();
    const { server } = setup(handler);
    const response = await server.inject({ method: 'GET', url: `/oauth/callback/crm?${query({ code: CODE })}` });
    expect(response.statusCode).toBe(400);
    expect(handler.calls).toEqual([]);
  });

  it('asks about and reaches the handler with a deeper path under /oauth/callback, as it came', async () => {
    const handler = publicAppsHandler();
    const { server } = setup(handler);
    await server.inject({ method: 'GET', url: `/oauth/callback/crm/eu?${query({ code: CODE })}` });
    expect(handler.asked).toEqual(['/oauth/callback/crm/eu']);
    expect(handler.calls).toEqual([{ method: 'installFromMarketplace', input: { path: '/oauth/callback/crm/eu', code: CODE } }]);
  });

  it('leaves a code with a state to complete, on a path that accepts state-less codes too', async () => {
    const handler = publicAppsHandler();
    const { server } = setup(handler);
    await server.inject({ method: 'GET', url: `/oauth/callback/crm?${query({ code: CODE, state: STATE })}` });
    expect(handler.calls).toEqual([{ method: 'complete', input: { code: CODE, state: STATE } }]);
  });
});

describe('callback server: the uninstall callback (DELETE)', () => {
  const uninstallRequest = (url = '/oauth/callback/crm') => ({
    method: 'DELETE' as const,
    url,
    headers: { authorization: 'Basic Y2xpZW50LTE6c2VjcmV0', 'content-type': 'application/json' },
    payload: JSON.stringify({ client_id: 'client-1', company_id: 12345, user_id: 678, timestamp: '2026-11-27T08:00:00Z' }),
  });

  it('goes to uninstall with the path, the Authorization header and the parsed JSON body', async () => {
    const handler = publicAppsHandler();
    const { server } = setup(handler);
    await server.inject(uninstallRequest('/oauth/callback/crm/eu'));
    expect(handler.calls).toEqual([
      {
        method: 'uninstall',
        input: { path: '/oauth/callback/crm/eu', authorization: 'Basic Y2xpZW50LTE6c2VjcmV0', body: { client_id: 'client-1', company_id: 12345, user_id: 678, timestamp: '2026-11-27T08:00:00Z' } },
      },
    ]);
  });

  it.each([
    [200, 'uninstalled'],
    [400, 'malformed_body'],
    [404, 'no_public_app'],
  ] as const)('answers the handler\'s status %i with its reason, uncached, without WWW-Authenticate', async (status, reason) => {
    const { server } = setup(publicAppsHandler({ uninstallAnswer: { status, reason } }));
    const response = await server.inject(uninstallRequest());
    expect(response.statusCode).toBe(status);
    expect(response.json()).toEqual({ result: reason });
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['www-authenticate']).toBeUndefined();
  });

  it('adds WWW-Authenticate: Basic to a 401', async () => {
    const { server } = setup(publicAppsHandler({ uninstallAnswer: { status: 401, reason: 'unauthorized' } }));
    const response = await server.inject(uninstallRequest());
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Basic\b/);
  });

  it('is 405 for a handler without uninstall', async () => {
    const handler = publicAppsHandler({ withUninstall: false });
    const { server } = setup(handler);
    const response = await server.inject(uninstallRequest());
    expect(response.statusCode).toBe(405);
    expect(handler.calls).toEqual([]);
  });

  it.each(['/oauth/uninstall', '/oauth/callbackcrm', '/'])('is 404 outside /oauth/callback (%s), and no handler method runs', async (url) => {
    const handler = publicAppsHandler();
    const { server } = setup(handler);
    const response = await server.inject(uninstallRequest(url));
    expect(response.statusCode).toBe(404);
    expect(handler.calls).toEqual([]);
  });
});

describe('readCallbackQuery', () => {
  it('ignores parameters it does not know, and empty pairs', () => {
    expect(readCallbackQuery(`&&code=x&state=y&scope=a+b&error_uri=http%3A%2F%2Fevil`)).toEqual({ ok: true, query: { kind: 'code', code: 'x', state: 'y' } });
  });

  it('reads iss (RFC 9207) with a code and with an error', () => {
    expect(readCallbackQuery(`code=x&state=y&iss=https%3A%2F%2Fidp.example.com`)).toEqual({ ok: true, query: { kind: 'code', code: 'x', state: 'y', iss: 'https://idp.example.com' } });
    expect(readCallbackQuery(`error=access_denied&state=y&iss=https%3A%2F%2Fidp.example.com`)).toEqual({
      ok: true,
      query: { kind: 'error', error: 'access_denied', description: undefined, state: 'y', iss: 'https://idp.example.com' },
    });
  });
});

describe('callback server: over a real loopback connection', () => {
  let running: CallbackServer | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  /** Sends raw bytes and reads until the server closes or the answer is complete. */
  const rawRequest = (server: CallbackServer, request: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(error)));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.write(request);
    });

  it('serves a callback and answers with the page', async () => {
    const handler = succeeding();
    running = await startCallbackServer({ handler, address: '127.0.0.1:0' });
    expect(running.url).toBe(`http://127.0.0.1:${running.port}`);
    const response = await fetch(`${running.url}/oauth/callback?${query({ code: CODE, state: STATE })}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await response.text()).toContain('crm/pipedrive');
    expect(handler.calls).toEqual([{ method: 'complete', input: { code: CODE, state: STATE } }]);
  });

  it('listens on all interfaces for an empty host', async () => {
    running = await startCallbackServer({ handler: succeeding(), address: ':0' });
    const response = await fetch(`${running.url}/nope`);
    expect(response.status).toBe(404);
  });

  it('refuses an address that is not HOST:PORT', async () => {
    await expect(startCallbackServer({ handler: succeeding(), address: 'localhost' })).rejects.toMatchObject({ name: 'ListenError', code: 'INVALID_LISTEN_ADDRESS' });
  });

  it('answers headers over Node\'s size limit with a 431 page, not a JSON error or a reset', async () => {
    const handler = succeeding();
    running = await startCallbackServer({ handler, address: '127.0.0.1:0' });
    const answer = await rawRequest(running, `GET /oauth/callback?code=${CODE}&state=${STATE} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toContain('content-type: text/html; charset=utf-8');
    expect(answer).toContain("content-security-policy: default-src 'none'");
    expect(answer).toContain('<h1>Request headers too large</h1>');
    expectNoCanary(answer);
    expect(handler.calls).toEqual([]);
  });

  it.each([
    [10_000, 414],
    [20_000, 431],
  ])('answers a query of %i characters with a %i page (over the limit, then over what Node reads)', async (length, status) => {
    const handler = succeeding();
    running = await startCallbackServer({ handler, address: '127.0.0.1:0' });
    const answer = await rawRequest(running, `GET /oauth/callback?code=${CODE}&state=${STATE}&pad=${'x'.repeat(length)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(answer.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${status === 414 ? 'URI Too Long' : 'Request Header Fields Too Large'}`);
    expect(answer).toContain('<!doctype html>');
    expectNoCanary(answer);
    expect(handler.calls).toEqual([]);
  });

  it('answers a request that is not HTTP with a 400 page', async () => {
    running = await startCallbackServer({ handler: succeeding(), address: '127.0.0.1:0' });
    const answer = await rawRequest(running, 'HELLO THERE\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('<h1>Bad request</h1>');
  });
});
