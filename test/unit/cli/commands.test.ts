// The commands against a scripted cluster: what each prints, how long it waits, how it ends.
import { describe, expect, it } from '@jest/globals';
import { authorizeCommand } from '../../../src/cli/authorize.ts';
import { CliError } from '../../../src/cli/errors.ts';
import { rotateCommand, rotateOutcome, type RotateOutcome } from '../../../src/cli/rotate.ts';
import type { OAuthAppStatus } from '../../../src/api/oauthapp.ts';
import { statusCommand } from '../../../src/cli/status.ts';
import { condition, fakeCluster, fakeContext } from './fake-cluster.ts';

const meta = { name: 'crm', namespace: 'sales' };

describe('status', () => {
  it('prints the leader as unknown when the Lease cannot be read, and succeeds', async () => {
    const cluster = fakeCluster();
    cluster.apps = [{ metadata: meta, status: { conditions: [condition('Ready', 'True', 'TokenValid')] } }];
    cluster.lease = new CliError('cannot get lease oauthapp-operator in namespace "ops": forbidden');
    const { context, output } = fakeContext(cluster);
    expect(await statusCommand(context, 'crm', 'ops')).toBe(0);
    expect(output.out).toContain('Leader:         unknown (cannot get lease oauthapp-operator in namespace "ops": forbidden)  [Lease ops/oauthapp-operator]\n');
  });

  it('prints the holder of the Lease', async () => {
    const cluster = fakeCluster();
    cluster.apps = [{ metadata: meta }];
    cluster.lease = { spec: { holderIdentity: 'pod-b', renewTime: '2026-12-01T16:59:59.000000Z', leaseDurationSeconds: 15 } };
    const { context, output } = fakeContext(cluster);
    await statusCommand(context, 'crm', 'ops');
    expect(output.out).toContain('Leader:         pod-b  [Lease ops/oauthapp-operator]\n');
  });

  it('fails, naming the app and namespace, when the app does not exist', async () => {
    const { context } = fakeContext(fakeCluster('prod'));
    await expect(statusCommand(context, 'gone', 'ops')).rejects.toThrow('oauthapp "gone" not found in namespace "prod"');
  });
});

describe('authorize', () => {
  const url = 'https://oauth.example/authorize?state=s1';
  const unauthorized = (authorizationURL?: string) => ({
    metadata: meta,
    status: { conditions: [condition('Authorized', 'False', 'AuthorizationRequired')], ...(authorizationURL ? { authorizationURL } : {}) },
  });
  const authorized = { metadata: meta, status: { conditions: [condition('Authorized', 'True', 'RefreshTokenValid')] } };

  it('exits 0 at once for an app that is already authorized', async () => {
    const cluster = fakeCluster();
    cluster.apps = [authorized];
    const { context, output, elapsed } = fakeContext(cluster);
    expect(await authorizeCommand(context, 'crm', 600_000)).toBe(0);
    expect(output.out).toBe('oauthapp "crm" in namespace "sales" is already authorized (Authorized=True): nothing to do\n');
    expect(elapsed()).toBe(0);
  });

  it('prints the URL once (and again when it changes), waits, and reports the authorization', async () => {
    const cluster = fakeCluster();
    cluster.apps = [unauthorized(), unauthorized(url), unauthorized(url), unauthorized(`${url}2`), authorized];
    const { context, output, elapsed } = fakeContext(cluster);
    expect(await authorizeCommand(context, 'crm', 600_000)).toBe(0);
    expect(output.out).toBe(
      [
        'Open this URL in a browser to authorize oauthapp "crm" in namespace "sales":',
        '',
        `  ${url}`,
        '',
        'The operator issued a new authorization URL; open this one instead:',
        '',
        `  ${url}2`,
        '',
        'oauthapp "crm" in namespace "sales" is authorized (Authorized=True)',
        '',
      ].join('\n'),
    );
    expect(output.err).toContain('Waiting for the operator to publish an authorization URL');
    expect(elapsed()).toBe(4_000);
  });

  it('gives up after --timeout, saying why the app is not authorized', async () => {
    const cluster = fakeCluster();
    cluster.apps = [unauthorized(url)];
    const { context, elapsed } = fakeContext(cluster);
    await expect(authorizeCommand(context, 'crm', 30_000)).rejects.toThrow('timed out after 30s waiting for oauthapp "crm" in namespace "sales" to be authorized: Authorized=False (AuthorizationRequired): Authorized is False');
    expect(elapsed()).toBe(30_000);
  });
});

describe('rotateOutcome', () => {
  const value = '2026-12-01T17:00:00.000Z';
  it.each([
    ['an older request', { lastRotateRequest: 'earlier', conditions: [condition('Ready', 'True', 'TokenValid')] }, 'pending'],
    ['no status', undefined, 'pending'],
    ['Ready after acting on it', { lastRotateRequest: value, conditions: [condition('Ready', 'True', 'TokenValid')] }, 'refreshed'],
    [
      'Ready but the refresh failed (the old token still works), with a retry',
      { lastRotateRequest: value, nextRefreshTime: '2026-12-01T17:00:10Z', lastFailure: { reason: 'ServerError', time: value, attempts: 1 }, conditions: [condition('Ready', 'True', 'TokenValid')] },
      'retrying',
    ],
    ['blocked: a person must act', { lastRotateRequest: value, conditions: [condition('Ready', 'False', 'NotAuthorized')] }, 'stuck'],
  ] satisfies Array<[string, OAuthAppStatus | undefined, RotateOutcome]>)('%s: %s', (_what, status, outcome) => {
    expect(rotateOutcome(status, value)).toBe(outcome);
  });
});

describe('rotate', () => {
  const before = { metadata: meta, status: { lastRotateRequest: 'old', accessTokenExpiresAt: '2026-12-01T17:10:00Z', conditions: [condition('Ready', 'True', 'TokenValid')] } };
  const refreshed = (rotate: string | undefined) => ({
    metadata: meta,
    status: { lastRotateRequest: rotate, accessTokenExpiresAt: '2026-12-01T18:00:00Z', conditions: [condition('Ready', 'True', 'TokenValid')] },
  });

  it('sets the annotation to now, waits until the operator echoes it, and prints the new expiry', async () => {
    const cluster = fakeCluster();
    cluster.apps = [before, before, refreshed];
    const { context, output, elapsed } = fakeContext(cluster);
    expect(await rotateCommand(context, 'crm', { timeoutMs: 120_000, wait: true })).toBe(0);
    expect(cluster.rotates).toEqual(['2026-12-01T17:00:00.000Z']);
    expect(output.out).toBe('rotated oauthapp "crm" in namespace "sales": the new access token expires at 2026-12-01T18:00:00Z (in 59m58s)\n');
    expect(elapsed()).toBe(2_000);
  });

  it('only sets the annotation with --no-wait', async () => {
    const cluster = fakeCluster();
    cluster.apps = [before];
    const { context, output, elapsed } = fakeContext(cluster);
    expect(await rotateCommand(context, 'crm', { timeoutMs: 120_000, wait: false })).toBe(0);
    expect(output.out).toBe('rotate requested for oauthapp "crm" in namespace "sales": oauthapp.dev/rotate=2026-12-01T17:00:00.000Z\n');
    expect(elapsed()).toBe(0);
  });

  it('fails at once when the operator acted on the request but a person must act', async () => {
    const cluster = fakeCluster();
    cluster.apps = [(rotate) => ({ metadata: meta, status: { lastRotateRequest: rotate, conditions: [condition('Ready', 'False', 'NotAuthorized', 'open status.authorizationURL')] } })];
    const { context } = fakeContext(cluster);
    await expect(rotateCommand(context, 'crm', { timeoutMs: 120_000, wait: true })).rejects.toThrow(
      'the operator acted on the rotate request for oauthapp "crm" in namespace "sales", but no new token came of it: Ready=False (NotAuthorized): open status.authorizationURL',
    );
  });

  it('times out when the operator never acts on the request', async () => {
    const cluster = fakeCluster();
    cluster.apps = [before];
    const { context, elapsed } = fakeContext(cluster);
    await expect(rotateCommand(context, 'crm', { timeoutMs: 5_000, wait: true })).rejects.toThrow('timed out after 5s waiting for oauthapp "crm" in namespace "sales" to act on oauthapp.dev/rotate=2026-12-01T17:00:00.000Z');
    expect(elapsed()).toBe(5_000);
  });
});
