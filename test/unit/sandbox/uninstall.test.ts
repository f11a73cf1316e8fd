import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Client } from '../../../src/sandbox/server.ts';
import {
  type CallbackServer,
  type Running,
  basicAuth,
  json,
  refresh,
  startCallbackServer,
  startSandbox,
  tokenRequest,
} from './harness.ts';

describe('sandbox uninstall', () => {
  let running: Running;
  let callback: CallbackServer;
  /** A public app whose callback URL is the local callback server. */
  let app: Client;
  beforeEach(async () => {
    running = await startSandbox();
    callback = await startCallbackServer(200);
    app = running.sandbox.registerClient({ redirectUri: `${callback.origin}/pipedrive/callback` });
  });
  afterEach(async () => {
    await running.close();
    await callback.close();
  });

  const installFor = (companyId: number): string => running.sandbox.issueRefreshToken(app.clientId, { companyId });
  const refreshAsApp = (refreshToken: string) =>
    tokenRequest(running, { grant_type: 'refresh_token', refresh_token: refreshToken }, app);
  const sent = () => {
    const [request] = callback.requests;
    if (request === undefined) throw new Error('the callback got no request');
    return request;
  };

  it('sends DELETE to the registered callback URL with Basic auth of the app\'s current secret', async () => {
    await running.sandbox.uninstall(app.clientId, 7);

    expect(callback.requests).toHaveLength(1);
    expect(sent().method).toBe('DELETE');
    expect(sent().path).toBe('/pipedrive/callback');
    expect(sent().headers.authorization).toBe(basicAuth(app.clientId, app.clientSecret));
  });

  it('sends the JSON body with client_id, numeric company_id and user_id, and an ISO timestamp', async () => {
    await running.sandbox.uninstall(app.clientId, 7, { userId: 70, timestamp: '2026-12-01T10:00:00.000Z' });

    expect(sent().headers['content-type']).toBe('application/json');
    expect(JSON.parse(sent().body)).toEqual({
      client_id: app.clientId,
      company_id: 7,
      user_id: 70,
      timestamp: '2026-12-01T10:00:00.000Z',
    });
  });

  it('sends user 1 and the sandbox clock as timestamp when told nothing else', async () => {
    await running.sandbox.uninstall(app.clientId, 7);

    expect(JSON.parse(sent().body)).toMatchObject({ user_id: 1, timestamp: new Date(running.clock.now()).toISOString() });
  });

  it('authenticates with the secret in force after a rotation', async () => {
    const newSecret = running.sandbox.rotateClientSecret(app.clientId);

    await running.sandbox.uninstall(app.clientId, 7);

    expect(sent().headers.authorization).toBe(basicAuth(app.clientId, newSecret));
  });

  it('revokes every grant of the uninstalling company', async () => {
    const first = installFor(7);
    const second = installFor(7);

    await running.sandbox.uninstall(app.clientId, 7);

    expect(json<{ error: string }>(await refreshAsApp(first)).error).toBe('invalid_grant');
    expect(json<{ error: string }>(await refreshAsApp(second)).error).toBe('invalid_grant');
  });

  it('leaves the grants of other companies working', async () => {
    installFor(7);
    const otherCompany = installFor(8);

    await running.sandbox.uninstall(app.clientId, 7);

    expect((await refreshAsApp(otherCompany)).statusCode).toBe(200);
  });

  it('leaves other apps\' grants in the same company working', async () => {
    installFor(7);
    const otherApp = running.sandbox.issueRefreshToken(running.client.clientId, { companyId: 7 });

    await running.sandbox.uninstall(app.clientId, 7);

    expect((await refresh(running, otherApp)).statusCode).toBe(200);
  });

  it('has revoked the grants by the time the callback hears of the uninstall', async () => {
    const refreshToken = installFor(7);
    let statusDuringCallback: number | undefined;
    callback.beforeAnswer = async () => {
      statusDuringCallback = (await refreshAsApp(refreshToken)).statusCode;
    };

    await running.sandbox.uninstall(app.clientId, 7);

    expect(statusDuringCallback).toBe(400);
  });

  it('resolves to the status the callback answered with', async () => {
    callback.status = 503;

    await expect(running.sandbox.uninstall(app.clientId, 7)).resolves.toEqual({ status: 503 });
  });

  it('sends forged credentials when given other ones', async () => {
    await running.sandbox.uninstall(app.clientId, 7, { credentials: { clientId: app.clientId, clientSecret: 'forged' } });

    expect(sent().headers.authorization).toBe(basicAuth(app.clientId, 'forged'));
  });

  it('sends no Authorization header with credentials \'none\'', async () => {
    await running.sandbox.uninstall(app.clientId, 7, { credentials: 'none' });

    expect(sent().method).toBe('DELETE');
    expect(sent().headers.authorization).toBeUndefined();
  });

  it('sends the DELETE to options.url instead of the callback URL when given', async () => {
    await running.sandbox.uninstall(app.clientId, 7, { url: `${callback.origin}/elsewhere` });

    expect(sent().path).toBe('/elsewhere');
  });

  it('rejects with SANDBOX_CALLBACK_FAILED when the callback cannot be reached, with the grants revoked', async () => {
    const refreshToken = installFor(7);
    const unreachable = await startCallbackServer();
    await unreachable.close();

    await expect(running.sandbox.uninstall(app.clientId, 7, { url: `${unreachable.origin}/cb` })).rejects.toMatchObject({
      code: 'SANDBOX_CALLBACK_FAILED',
    });
    expect((await refreshAsApp(refreshToken)).statusCode).toBe(400);
  });

  it('rejects with SANDBOX_CLIENT_NOT_FOUND for an unknown app and sends nothing', async () => {
    await expect(running.sandbox.uninstall('nobody', 7)).rejects.toMatchObject({ code: 'SANDBOX_CLIENT_NOT_FOUND' });
    expect(callback.requests).toHaveLength(0);
  });

  it('answers POST /admin/clients/:id/uninstall with the callback\'s status after sending the DELETE', async () => {
    const refreshToken = installFor(7);
    callback.status = 204;

    const response = await running.http.post(`admin/clients/${app.clientId}/uninstall`, {
      json: { companyId: 7, userId: 70, timestamp: '2026-12-01T10:00:00.000Z' },
    });

    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({ status: 204 });
    expect(JSON.parse(sent().body)).toMatchObject({ company_id: 7, user_id: 70, timestamp: '2026-12-01T10:00:00.000Z' });
    expect((await refreshAsApp(refreshToken)).statusCode).toBe(400);
  });

  it('answers 400 for an admin uninstall whose companyId is not a positive integer', async () => {
    const response = await running.http.post(`admin/clients/${app.clientId}/uninstall`, { json: { companyId: '7' } });

    expect(response.statusCode).toBe(400);
    expect(callback.requests).toHaveLength(0);
  });
});
