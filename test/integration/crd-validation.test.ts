// The real apiserver refuses invalid OAuthApps with a message naming the field, and the
// controller's zod schema (which the CRD is generated from) refuses exactly the same manifests.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { oauthAppSpec } from '../../src/api/oauthapp.ts';
import { kubectl, kubectlOK } from '../support/kubectl.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { zodFieldPaths } from '../support/zod-paths.ts';

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; spec: Record<string, unknown> };

const pipedriveExample = parse(await readFile(new URL('../../examples/pipedrive.yaml', import.meta.url), 'utf8')) as Manifest;
const customExample = parse(await readFile(new URL('../../examples/custom-provider.yaml', import.meta.url), 'utf8')) as Manifest;

const withSpec = (base: Manifest, name: string, change: (spec: Record<string, unknown>) => void): Manifest => {
  const manifest = structuredClone(base);
  manifest.metadata.name = name;
  change(manifest.spec);
  return manifest;
};

interface InvalidCase {
  title: string;
  base?: Manifest;
  change: (spec: Record<string, unknown>) => void;
  /** The field the apiserver's message must name. */
  field: string;
}

const invalidCases: InvalidCase[] = [
  { title: 'clientId missing', change: (s) => delete s.clientId, field: 'spec.clientId' },
  { title: 'clientId empty', change: (s) => (s.clientId = ''), field: 'spec.clientId' },
  { title: 'clientId longer than 256 characters', change: (s) => (s.clientId = 'x'.repeat(257)), field: 'spec.clientId' },
  { title: 'unknown provider', change: (s) => (s.provider = 'github'), field: 'spec.provider' },
  { title: 'custom provider without tokenURL', base: customExample, change: (s) => delete s.tokenURL, field: 'spec.tokenURL' },
  { title: 'custom provider without authorizeURL', base: customExample, change: (s) => delete s.authorizeURL, field: 'spec.authorizeURL' },
  { title: 'tokenURL over plain http to a remote host', change: (s) => (s.tokenURL = 'http://oauth.example.com/token'), field: 'spec.tokenURL' },
  { title: 'tokenURL that is not a URL', change: (s) => (s.tokenURL = 'oauth token endpoint'), field: 'spec.tokenURL' },
  { title: 'authorizeURL with a non-http scheme', change: (s) => (s.authorizeURL = 'ftp://oauth.example.com/authorize'), field: 'spec.authorizeURL' },
  { title: 'redirectURI over plain http to a remote host', change: (s) => (s.redirectURI = 'http://ops.example.com/oauth/callback'), field: 'spec.redirectURI' },
  { title: 'redirectURI missing', change: (s) => delete s.redirectURI, field: 'spec.redirectURI' },
  { title: 'clientSecretRef missing', change: (s) => delete s.clientSecretRef, field: 'spec.clientSecretRef' },
  { title: 'clientSecretRef name not a DNS subdomain', change: (s) => (s.clientSecretRef = { name: 'Crm_Sync', key: 'client_secret' }), field: 'spec.clientSecretRef.name' },
  { title: 'clientSecretRef key missing', change: (s) => (s.clientSecretRef = { name: 'crm-sync-client' }), field: 'spec.clientSecretRef.key' },
  {
    title: 'clientSecretRef into another namespace',
    change: (s) => (s.clientSecretRef = { name: 'crm-sync-client', key: 'client_secret', namespace: 'kube-system' }),
    field: 'spec.clientSecretRef.namespace',
  },
  { title: 'client secret inline in the spec', change: (s) => (s.clientSecret = 'hunter2'), field: 'spec.clientSecret' },
  { title: 'client_secret_post with the pipedrive provider', change: (s) => (s.clientAuthentication = 'client_secret_post'), field: 'spec.clientAuthentication' },
  { title: 'unknown client authentication method', base: customExample, change: (s) => (s.clientAuthentication = 'private_key_jwt'), field: 'spec.clientAuthentication' },
  { title: 'renewBefore in words', change: (s) => (s.renewBefore = '15 minutes'), field: 'spec.renewBefore' },
  { title: 'renewBefore of zero', change: (s) => (s.renewBefore = '0s'), field: 'spec.renewBefore' },
  { title: 'an empty scope', change: (s) => (s.scopes = ['deals:read', '']), field: 'spec.scopes[1]' },
  { title: 'authorizeParams overriding state', base: customExample, change: (s) => (s.authorizeParams = { state: 'fixed' }), field: 'spec.authorizeParams' },
  { title: 'authorizeParams weakening PKCE', base: customExample, change: (s) => (s.authorizeParams = { code_challenge_method: 'plain' }), field: 'spec.authorizeParams' },
  { title: 'issuer with the pipedrive provider', change: (s) => (s.issuer = 'https://oauth.pipedrive.com'), field: 'spec.issuer' },
  { title: 'issuer over plain http to a remote host', base: customExample, change: (s) => (s.issuer = 'http://auth.example.com'), field: 'spec.issuer' },
  { title: 'target name not a DNS subdomain', change: (s) => (s.target = { name: 'CRM Credentials' }), field: 'spec.target.name' },
  { title: 'includeRefreshToken not a boolean', change: (s) => (s.target = { includeRefreshToken: 'sometimes' }), field: 'spec.target.includeRefreshToken' },
  { title: 'restart target of an unsupported kind', change: (s) => (s.rolloutRestartTargets = [{ kind: 'Pod', name: 'worker' }]), field: 'spec.rolloutRestartTargets[0].kind' },
  {
    title: 'the same restart target twice',
    change: (s) => (s.rolloutRestartTargets = [{ kind: 'Deployment', name: 'worker' }, { kind: 'Deployment', name: 'worker' }]),
    field: 'spec.rolloutRestartTargets[1]',
  },
  { title: 'refreshTokenRef without a name', change: (s) => (s.refreshTokenRef = { key: 'refresh_token' }), field: 'spec.refreshTokenRef.name' },
  // Size limits: one OAuthApp must not make the operator copy, send or hold unbounded data.
  { title: 'more than 64 target labels', change: (s) => (s.target = { labels: manyEntries(65, 'v') }), field: 'spec.target.labels' },
  { title: 'more than 32 target annotations', change: (s) => (s.target = { annotations: manyEntries(33, 'v') }), field: 'spec.target.annotations' },
  { title: 'a target annotation longer than 4096 characters', change: (s) => (s.target = { annotations: { note: 'x'.repeat(4097) } }), field: 'spec.target.annotations.note' },
  { title: 'more than 32 authorizeParams', base: customExample, change: (s) => (s.authorizeParams = manyEntries(33, 'v')), field: 'spec.authorizeParams' },
  { title: 'an authorizeParams value longer than 1024 characters', base: customExample, change: (s) => (s.authorizeParams = { prompt: 'x'.repeat(1025) }), field: 'spec.authorizeParams.prompt' },
  { title: 'more than 64 scopes', change: (s) => (s.scopes = Array.from({ length: 65 }, (_, index) => `scope-${index}`)), field: 'spec.scopes' },
  { title: 'a scope longer than 256 characters', change: (s) => (s.scopes = ['x'.repeat(257)]), field: 'spec.scopes[0]' },
];

function manyEntries(count: number, value: string): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, index) => [`key-${index}`, value]));
}

let namespace: string;

beforeAll(async () => {
  namespace = await createTestNamespace('crd');
});

afterAll(async () => {
  await deleteTestNamespace(namespace);
});

const apply = (manifest: Manifest) => kubectl(['apply', '-n', namespace, '-f', '-'], { input: stringify(manifest) });

describe('kubectl apply of an invalid OAuthApp', () => {
  it.each(invalidCases.map((c, index) => [c.title, c, index] as const))('refuses %s, naming the field', async (_title, invalid, index) => {
    const manifest = withSpec(invalid.base ?? pipedriveExample, `invalid-${index}`, invalid.change);

    const result = await apply(manifest);

    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(invalid.field);
    expect(zodFieldPaths(oauthAppSpec.safeParse(manifest.spec), 'spec')).toContain(invalid.field);
  });
});

describe('kubectl apply of a valid OAuthApp', () => {
  it.each([
    ['pipedrive', pipedriveExample],
    ['custom', customExample],
  ] as const)('accepts the %s example, which the controller schema also accepts', async (_provider, example) => {
    const result = await apply(example);

    expect(result).toMatchObject({ code: 0 });
    expect(oauthAppSpec.safeParse(example.spec).success).toBe(true);
  });

  it('keeps clientId immutable once set', async () => {
    const original = withSpec(pipedriveExample, 'immutable-client', () => undefined);
    await kubectlOK(['apply', '-n', namespace, '-f', '-'], { input: stringify(original) });

    const result = await apply(withSpec(original, 'immutable-client', (s) => (s.clientId = 'another-app')));

    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('spec.clientId');
    expect(result.stderr).toContain('immutable');
  });

  it('defaults provider and target.includeRefreshToken on the server', async () => {
    const minimal = withSpec(pipedriveExample, 'defaults', (s) => {
      delete s.provider;
      delete s.target;
      delete s.renewBefore;
    });
    await kubectlOK(['apply', '-n', namespace, '-f', '-'], { input: stringify(minimal) });

    const stored = JSON.parse(await kubectlOK(['get', 'oauthapp', 'defaults', '-n', namespace, '-o', 'json'])) as Manifest;

    expect(stored.spec).toMatchObject({ provider: 'pipedrive', target: { includeRefreshToken: false } });
  });
});

describe('kubectl get oapp', () => {
  it('lists OAuthApps by short name with Ready, Authorized, Secret, Expires and Age columns', async () => {
    await kubectlOK(['apply', '-n', namespace, '-f', '-'], { input: stringify(withSpec(pipedriveExample, 'columns', () => undefined)) });

    const table = await kubectlOK(['get', 'oapp', 'columns', '-n', namespace]);

    expect(table.split('\n')[0]?.split(/\s+/)).toEqual(['NAME', 'READY', 'AUTHORIZED', 'SECRET', 'EXPIRES', 'AGE']);
  });

  it('explains each field from the schema descriptions', async () => {
    const explanation = await kubectlOK(['explain', 'oauthapp.spec.renewBefore']);

    expect(explanation).toContain('a third of the token lifetime');
  });

  it('explains status fields too, such as the reasons a condition gives', async () => {
    const explanation = (await kubectlOK(['explain', 'oauthapp.status.conditions.reason'])).replace(/\s+/g, ' ');

    expect(explanation).toContain('NotAuthorized');
  });

  it('says that status.authorizationURL is a capability, so reading status is a privilege', async () => {
    const explanation = (await kubectlOK(['explain', 'oauthapp.status.authorizationURL'])).replace(/\s+/g, ' ');

    expect(explanation).toContain('This URL is a capability: whoever opens it may connect their own account');
    expect(explanation).toContain('Reading OAuthApp status is therefore a privilege');
  });
});
