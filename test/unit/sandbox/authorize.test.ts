import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { REDIRECT_URI, type Running, decide, startSandbox } from './harness.ts';

describe('sandbox /oauth/authorize', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  const authorizePage = (query: Record<string, string>) =>
    running.http.get('oauth/authorize', { searchParams: query });

  it('shows a consent form that posts the request back with Allow and Deny buttons', async () => {
    const response = await authorizePage({ client_id: running.client.clientId, redirect_uri: REDIRECT_URI, state: 's"<1>' });

    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.body).toContain('<form method="post" action="/oauth/authorize/decision">');
    expect(response.body).toContain(`name="client_id" value="${running.client.clientId}"`);
    expect(response.body).toContain('name="state" value="s&quot;&lt;1&gt;"');
    expect(response.body).toContain('value="allow">Allow</button>');
    expect(response.body).toContain('value="deny">Deny</button>');
  });

  it('refuses an unknown client with a 400 page instead of redirecting', async () => {
    const response = await authorizePage({ client_id: 'nobody', redirect_uri: REDIRECT_URI, state: 's' });

    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
    expect(response.body).toContain('client_id is invalid');
  });

  it('refuses a redirect_uri other than the registered one with a 400 page instead of redirecting', async () => {
    const response = await authorizePage({
      client_id: running.client.clientId,
      redirect_uri: 'https://attacker.example.com/cb',
      state: 's',
    });

    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
    expect(response.body).toContain('redirect_uri is invalid');
  });

  it('redirects a response_type other than code to the callback with unsupported_response_type', async () => {
    const response = await authorizePage({
      client_id: running.client.clientId,
      redirect_uri: REDIRECT_URI,
      state: 's',
      response_type: 'token',
    });

    expect(response.statusCode).toBe(302);
    const location = new URL(response.headers.location ?? '');
    expect(location.searchParams.get('error')).toBe('unsupported_response_type');
    expect(location.searchParams.get('state')).toBe('s');
  });

  it('redirects an allowed request to the callback with a code and the state unchanged', async () => {
    const state = 'a b+c/d=e&f%20';

    const location = await decide(running, 'allow', { state });

    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get('code')).toMatch(/^[\w-]{20,}$/);
    expect(location.searchParams.get('state')).toBe(state);
  });

  it('redirects a denied request to the callback with error=access_denied and the state', async () => {
    const location = await decide(running, 'deny', { state: 'st-9' });

    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('state')).toBe('st-9');
    expect(location.searchParams.has('code')).toBe(false);
  });

  it('refuses a decision for a redirect_uri other than the registered one without redirecting', async () => {
    const response = await running.http.post('oauth/authorize/decision', {
      form: { client_id: running.client.clientId, redirect_uri: 'https://evil.example/cb', state: 's', decision: 'allow' },
    });

    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
  });

  it('offers company and user fields on the consent form, both 1 unless changed', async () => {
    const response = await authorizePage({ client_id: running.client.clientId, redirect_uri: REDIRECT_URI, state: 's' });

    expect(response.body).toContain('name="company_id" value="1"');
    expect(response.body).toContain('name="user_id" value="1"');
  });

  it('refuses a decision whose company_id is not a positive integer without redirecting', async () => {
    const response = await running.http.post('oauth/authorize/decision', {
      form: { client_id: running.client.clientId, redirect_uri: REDIRECT_URI, state: 's', decision: 'allow', company_id: '-3' },
    });

    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
  });
});
