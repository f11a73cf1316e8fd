// verify: the token request it sends (a client check, never a real refresh token), how each
// answer reads, and that no secret value is printed.
import { describe, expect, it } from '@jest/globals';
import { CliError } from '../../../src/cli/errors.ts';
import { anyProviderAddress, formatVerdict, verifyCommand } from '../../../src/cli/verify.ts';
import { clientCheckTokenPrefix } from '../../../src/oauth/client-check.ts';
import { TokenRequestError } from '../../../src/oauth/errors.ts';
import type { TokenClient } from '../../../src/oauth/token-client.ts';
import type { TokenRequest } from '../../../src/oauth/token-request.ts';
import { fakeCluster, fakeContext } from './fake-cluster.ts';

const secret = 's3cr3t-value-of-the-client';
const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const spec = {
  provider: 'custom',
  tokenURL: 'https://idp.example/token',
  authorizeURL: 'https://idp.example/authorize',
  clientAuthentication: 'client_secret_post',
  clientId: 'client-1',
  clientSecretRef: { name: 'crm-client', key: 'client_secret' },
  redirectURI: 'https://ops.example/oauth/callback',
};

/** A token client that records each request and answers with `answer`. */
function tokenClient(answer: () => never): TokenClient & { requests: TokenRequest[] } {
  const requests: TokenRequest[] = [];
  return {
    requests,
    async requestToken(request) {
      requests.push(request);
      answer();
    },
  };
}

const answered = (code: 'invalid_grant' | 'invalid_client' | 'server_error', description?: string, retryAfterMs?: number) => () => {
  throw new TokenRequestError(`the provider answered ${code}`, { code, delivery: 'answered', status: code === 'server_error' ? 503 : 400, description, retryAfterMs });
};

function setup() {
  const cluster = fakeCluster();
  cluster.apps = [{ metadata: { name: 'crm', namespace: 'sales' }, spec }];
  cluster.secrets['crm-client'] = { metadata: { name: 'crm-client' }, data: { client_secret: base64(`${secret}\n`) } };
  return { cluster, ...fakeContext(cluster) };
}

describe('verify', () => {
  it('sends a client check (a refresh token no provider issued) with the spec\'s endpoint, client and secret, and says accepted on invalid_grant', async () => {
    const { context, output } = setup();
    const tokens = tokenClient(answered('invalid_grant'));
    expect(await verifyCommand(context, 'crm', tokens)).toBe(0);
    expect(output.out).toBe('accepted: the provider accepts the client secret of oauthapp "crm" in namespace "sales" (https://idp.example/token)\n');
    const [request] = tokens.requests;
    expect(tokens.requests).toHaveLength(1);
    expect(request).toMatchObject({ tokenURL: 'https://idp.example/token', clientAuthentication: 'client_secret_post', clientId: 'client-1', clientSecret: secret });
    expect(request?.grant.type).toBe('refresh_token');
    expect(request?.grant.type === 'refresh_token' ? request.grant.refreshToken : '').toMatch(new RegExp(`^${clientCheckTokenPrefix}`));
  });

  it('says rejected with the provider\'s words on invalid_client (exit 1), and never prints the secret', async () => {
    const { context, output } = setup();
    expect(await verifyCommand(context, 'crm', tokenClient(answered('invalid_client', `bad secret ${secret}`)))).toBe(1);
    expect(output.out).toBe('rejected: the provider refused the client secret of oauthapp "crm" in namespace "sales" (https://idp.example/token) (the provider said: "bad secret [redacted]")\n');
    expect(output.out + output.err).not.toContain(secret);
  });

  it('says unknown with the reason on any other answer (exit 2)', async () => {
    const { context, output } = setup();
    expect(await verifyCommand(context, 'crm', tokenClient(answered('server_error', undefined, 30_000)))).toBe(2);
    expect(output.out).toBe('unknown: server_error: the provider answered server_error\n');
  });

  it('uses the pipedrive preset\'s token URL when the spec names none', async () => {
    const { cluster, context } = setup();
    cluster.apps = [{ metadata: { name: 'crm', namespace: 'sales' }, spec: { clientId: 'client-1', clientSecretRef: spec.clientSecretRef, redirectURI: spec.redirectURI } }];
    const tokens = tokenClient(answered('invalid_grant'));
    await verifyCommand(context, 'crm', tokens);
    expect(tokens.requests[0]).toMatchObject({ tokenURL: 'https://oauth.pipedrive.com/oauth/token', clientAuthentication: 'client_secret_basic' });
  });

  it('fails naming the Secret when it or its key is missing, before any request', async () => {
    const { cluster, context } = setup();
    const tokens = tokenClient(answered('invalid_grant'));
    cluster.secrets['crm-client'] = { metadata: { name: 'crm-client' }, data: { other: base64('x') } };
    await expect(verifyCommand(context, 'crm', tokens)).rejects.toThrow('Secret sales/crm-client has no value under key client_secret (spec.clientSecretRef)');
    delete cluster.secrets['crm-client'];
    await expect(verifyCommand(context, 'crm', tokens)).rejects.toThrow('Secret sales/crm-client does not exist (spec.clientSecretRef)');
    expect(tokens.requests).toHaveLength(0);
  });

  it('fails on a spec the operator could not use, and ignores fields it does not know', async () => {
    const { cluster, context } = setup();
    const tokens = tokenClient(answered('invalid_grant'));
    cluster.apps = [{ metadata: { name: 'crm', namespace: 'sales' }, spec: { ...spec, tokenURL: undefined } }];
    await expect(verifyCommand(context, 'crm', tokens)).rejects.toThrow('oauthapp "crm" in namespace "sales": tokenURL is required when provider is custom');
    cluster.apps = [{ metadata: { name: 'crm', namespace: 'sales' }, spec: { ...spec, clientId: '' } }];
    await expect(verifyCommand(context, 'crm', tokens)).rejects.toThrow('oauthapp "crm" in namespace "sales" has a spec the operator cannot use: spec.clientId:');
    expect(tokens.requests).toHaveLength(0);
    cluster.apps = [{ metadata: { name: 'crm', namespace: 'sales' }, spec: { ...spec, aFieldOfALaterVersion: { x: 1 } } }];
    expect(await verifyCommand(context, 'crm', tokens)).toBe(0);
  });
});

describe('the client secret verify reads', () => {
  it('is read as the operator reads it: a trailing newline is not part of it', async () => {
    const { context, cluster } = setup();
    const tokens = tokenClient(answered('invalid_grant'));
    cluster.secrets['crm-client'] = { metadata: { name: 'crm-client' }, data: { client_secret: base64('abc\r\n') } };
    await verifyCommand(context, 'crm', tokens);
    expect(tokens.requests[0]?.clientSecret).toBe('abc');
  });

  it.each([
    [{ client_secret: base64(' \n') }, 'Secret sales/crm-client has no value under key client_secret (spec.clientSecretRef)'],
    [{ client_secret: base64('x'.repeat(64 * 1024 + 1)) }, 'Secret sales/crm-client, key client_secret, holds 65537 bytes; at most 65536 are used'],
    [{ toString: base64('x') }, 'Secret sales/crm-client has no value under key client_secret'],
  ])('is refused in the operator\'s words when it cannot be used (%#), and nothing is sent', async (data, message) => {
    const { context, cluster } = setup();
    const tokens = tokenClient(answered('invalid_grant'));
    cluster.secrets['crm-client'] = { metadata: { name: 'crm-client' }, data };
    await expect(verifyCommand(context, 'crm', tokens)).rejects.toThrow(message);
    await expect(verifyCommand(context, 'crm', tokens)).rejects.toThrow(CliError);
    expect(tokens.requests).toHaveLength(0);
  });
});

describe('the address policy of a user-run verify', () => {
  it('allows loopback and private providers, but never cloud metadata', () => {
    for (const address of ['127.0.0.1', '::1', '10.1.2.3', '192.168.1.1', '172.16.0.1', 'fd00::1', '8.8.8.8']) expect(anyProviderAddress.check(address)).toEqual({ allowed: true });
    expect(anyProviderAddress.check('169.254.169.254')).toEqual({ allowed: false, category: 'metadata' });
  });
});

describe('formatVerdict', () => {
  it('starts with the verdict, which the exit code repeats', () => {
    expect(formatVerdict({ verdict: 'accepted' }, 'x')).toEqual({ text: 'accepted: the provider accepts the client secret of x\n', exitCode: 0 });
    expect(formatVerdict({ verdict: 'rejected' }, 'x')).toEqual({ text: 'rejected: the provider refused the client secret of x\n', exitCode: 1 });
    expect(formatVerdict({ verdict: 'unknown', reason: 'timeout: no answer' }, 'x')).toEqual({ text: 'unknown: timeout: no answer\n', exitCode: 2 });
  });
});
