import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  REDIRECT_URI,
  type Running,
  type UserBody,
  exchangeCode,
  json,
  refresh,
  revoke,
  startSandbox,
  usersMe,
} from './harness.ts';

describe('sandbox Marketplace install', () => {
  let running: Running;
  beforeEach(async () => {
    running = await startSandbox();
  });
  afterEach(async () => {
    await running.close();
  });

  const installPage = (query: Record<string, string>) => running.http.get('marketplace/install', { searchParams: query });
  const installButton = (form: Record<string, string>) => running.http.post('marketplace/install', { form });

  it('issues a code for company N whose tokens /users/me reports as company N', async () => {
    const { code } = running.sandbox.marketplaceInstall(running.client.clientId, 7, 70);
    const { access_token } = await exchangeCode(running, code);

    const { data } = json<UserBody>(await usersMe(running, access_token));

    expect(data).toMatchObject({
      id: 70,
      company_id: 7,
      company_name: 'Sandbox Company 7',
      company_domain: 'sandbox-company-7',
    });
  });

  it('installs for user 1 of the company when no user is named', async () => {
    const { code } = running.sandbox.marketplaceInstall(running.client.clientId, 7);
    const { access_token } = await exchangeCode(running, code);

    expect(json<UserBody>(await usersMe(running, access_token)).data).toMatchObject({ id: 1, company_id: 7 });
  });

  it('gives the installs of two companies two distinct grants, each with its own company', async () => {
    const seven = await exchangeCode(running, running.sandbox.marketplaceInstall(running.client.clientId, 7).code);
    const eight = await exchangeCode(running, running.sandbox.marketplaceInstall(running.client.clientId, 8).code);

    expect(seven.refresh_token).not.toBe(eight.refresh_token);
    expect(json<UserBody>(await usersMe(running, seven.access_token)).data.company_id).toBe(7);
    expect(json<UserBody>(await usersMe(running, eight.access_token)).data.company_id).toBe(8);
  });

  it('revokes one company\'s grant without touching the other\'s', async () => {
    const seven = await exchangeCode(running, running.sandbox.marketplaceInstall(running.client.clientId, 7).code);
    const eight = await exchangeCode(running, running.sandbox.marketplaceInstall(running.client.clientId, 8).code);

    await revoke(running, seven.refresh_token ?? '');

    expect((await refresh(running, seven.refresh_token ?? '')).statusCode).toBe(400);
    expect((await refresh(running, eight.refresh_token ?? '')).statusCode).toBe(200);
  });

  it('returns the callback URL the browser would be sent to, with only the code', () => {
    const { code, redirectURL } = running.sandbox.marketplaceInstall(running.client.clientId, 7);

    const url = new URL(redirectURL);
    expect(`${url.origin}${url.pathname}`).toBe(REDIRECT_URI);
    expect([...url.searchParams]).toEqual([['code', code]]);
  });

  it('throws SANDBOX_CLIENT_NOT_FOUND for an unknown client', () => {
    expect(() => running.sandbox.marketplaceInstall('nobody', 7)).toThrow(expect.objectContaining({ code: 'SANDBOX_CLIENT_NOT_FOUND' }));
  });

  it('shows GET /marketplace/install as "Install <app> for company N" with a button posting to /marketplace/install', async () => {
    const response = await installPage({ client_id: running.client.clientId, company_id: '7', user_id: '70' });

    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.body).toContain(`<h1>Install ${running.client.clientId} for company 7</h1>`);
    expect(response.body).toContain('<form method="post" action="/marketplace/install">');
    expect(response.body).toContain('name="company_id" value="7"');
    expect(response.body).toContain('name="user_id" value="70"');
    expect(response.body).toContain('<button type="submit">Install</button>');
  });

  it('redirects the Install button to the registered callback with a code and no state', async () => {
    const response = await installButton({ client_id: running.client.clientId, company_id: '7' });

    expect(response.statusCode).toBe(302);
    const location = new URL(response.headers.location ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect([...location.searchParams.keys()]).toEqual(['code']);
  });

  it('issues from the Install button a code for the company and user it posts', async () => {
    const response = await installButton({ client_id: running.client.clientId, company_id: '9', user_id: '90' });
    const code = new URL(response.headers.location ?? '').searchParams.get('code') ?? '';

    const { access_token } = await exchangeCode(running, code);

    expect(json<UserBody>(await usersMe(running, access_token)).data).toMatchObject({ id: 90, company_id: 9 });
  });

  it('exchanges a Marketplace code without a code_verifier', async () => {
    const { code } = running.sandbox.marketplaceInstall(running.client.clientId, 7);

    expect((await exchangeCode(running, code)).token_type).toBe('Bearer');
  });

  it('refuses the install page of an unknown client with a 400 page instead of redirecting', async () => {
    const response = await installPage({ client_id: 'nobody', company_id: '7' });

    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
    expect(response.body).toContain('client_id is invalid');
  });

  it('refuses the Install button of an unknown client with a 400 page instead of redirecting', async () => {
    const response = await installButton({ client_id: 'nobody', company_id: '7' });

    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
  });

  it('refuses an install without company_id with a 400 page', async () => {
    const response = await installButton({ client_id: running.client.clientId });

    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('company_id is missing');
  });

  it('refuses a company_id that is not a positive integer with a 400 page', async () => {
    const response = await installButton({ client_id: running.client.clientId, company_id: '0x7' });

    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
  });

  it('answers POST /admin/clients/:id/marketplace-install with the code and the callback URL', async () => {
    const response = await running.http.post(`admin/clients/${running.client.clientId}/marketplace-install`, {
      json: { companyId: 7, userId: 70 },
    });
    const { code, redirectURL } = json<{ code: string; redirectURL: string }>(response);
    const { access_token } = await exchangeCode(running, code);

    expect(response.statusCode).toBe(201);
    expect(new URL(redirectURL).searchParams.get('code')).toBe(code);
    expect(json<UserBody>(await usersMe(running, access_token)).data).toMatchObject({ id: 70, company_id: 7 });
  });

  it('answers 400 for an admin marketplace install without companyId', async () => {
    const response = await running.http.post(`admin/clients/${running.client.clientId}/marketplace-install`, { json: {} });

    expect(response.statusCode).toBe(400);
  });
});
