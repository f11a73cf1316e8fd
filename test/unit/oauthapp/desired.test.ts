// The target Secret workloads mount: exactly the keys DESIGN.md lists, our metadata on top of the
// user's, and a comparison that restores hand edits without fighting tools that add metadata.
import { describe, expect, it } from '@jest/globals';
import { oauthAppSpec, type OAuthAppSpec } from '../../../src/api/oauthapp.ts';
import { dataDigest, decodeData, encodeData, type Secret } from '../../../src/kube/objects.ts';
import { desiredTargetSecret, isOwnedBy, mergeForUpdate, rfc3339, targetMatches } from '../../../src/oauthapp/desired.ts';
import { managedByLabel, managedByValue } from '../../../src/oauthapp/labels.ts';
import { appUIDLabel, roleLabel, type AppState, type Tokens } from '../../../src/oauthapp/state.ts';

const app = { namespace: 'sales', name: 'crm-sync', uid: '6f1c2a4e-0d7b-4d7e-9a51-2b8f0c3d9e10' };

const spec = (target: Record<string, unknown> = {}): OAuthAppSpec =>
  oauthAppSpec.parse({
    clientId: 'b4d083d9216986345b32',
    clientSecretRef: { name: 'crm-sync-client', key: 'client_secret' },
    redirectURI: 'https://ops.example.com/oauth/callback',
    target,
  });

const tokens = (overrides: Partial<Tokens> = {}): Tokens => ({
  accessToken: 'access-one',
  tokenType: 'Bearer',
  expiresAt: '2030-01-01T13:00:00.000Z',
  scope: 'base,deals:full',
  apiDomain: 'https://acme.pipedrive.com',
  ...overrides,
});

const authorized = (tokenOverrides: Partial<Tokens> = {}): AppState => ({ refreshToken: 'refresh-one', tokens: tokens(tokenOverrides), record: {} });

const desired = (state: AppState = authorized(), target: Record<string, unknown> = {}) =>
  desiredTargetSecret({ app, spec: spec(target), clientSecret: 'client-secret-one', state });

const dataOf = (secret: Secret) => decodeData(secret.data);

/** A copy of a Secret as read back from the apiserver, changed by `edit`. */
const edited = (secret: Secret, edit: (copy: Secret) => void): Secret => {
  const copy = structuredClone(secret);
  copy.metadata.resourceVersion = '7';
  edit(copy);
  return copy;
};

describe('desiredTargetSecret', () => {
  it('holds exactly the keys DESIGN.md lists, with their values', () => {
    expect(dataOf(desired())).toEqual({
      client_id: 'b4d083d9216986345b32',
      client_secret: 'client-secret-one',
      access_token: 'access-one',
      token_type: 'Bearer',
      expires_at: '2030-01-01T13:00:00Z',
      scope: 'base,deals:full',
      api_domain: 'https://acme.pipedrive.com',
    });
  });

  it('holds only the client credentials before the first access token', () => {
    expect(dataOf(desired({ refreshToken: 'refresh-one', record: {} }))).toEqual({ client_id: 'b4d083d9216986345b32', client_secret: 'client-secret-one' });
  });

  it('includes refresh_token only with includeRefreshToken', () => {
    expect(dataOf(desired(authorized(), { includeRefreshToken: true })).refresh_token).toBe('refresh-one');
    expect(dataOf(desired(authorized(), { includeRefreshToken: false }))).not.toHaveProperty('refresh_token');
    expect(dataOf(desired(authorized()))).not.toHaveProperty('refresh_token');
  });

  it('writes no refresh_token while there is none, even with includeRefreshToken', () => {
    expect(dataOf(desired({ record: {} }, { includeRefreshToken: true }))).not.toHaveProperty('refresh_token');
  });

  it('includes api_domain only when the provider sent one', () => {
    const { apiDomain: _none, ...withoutDomain } = tokens();
    expect(dataOf(desired({ refreshToken: 'refresh-one', tokens: withoutDomain, record: {} }))).not.toHaveProperty('api_domain');
  });

  it('writes an empty scope when the provider sent none', () => {
    const { scope: _none, ...withoutScope } = tokens();
    expect(dataOf(desired({ refreshToken: 'refresh-one', tokens: withoutScope, record: {} })).scope).toBe('');
  });

  it.each([
    ['2030-01-01T13:00:00.999Z', '2030-01-01T13:00:00Z'],
    ['2030-01-01T13:00:00.000Z', '2030-01-01T13:00:00Z'],
    ['2030-01-01T14:00:00+01:00', '2030-01-01T13:00:00Z'],
  ])('writes expires_at %s as RFC 3339 in UTC to the second (%s)', (expiresAt, written) => {
    expect(dataOf(desired(authorized({ expiresAt }))).expires_at).toBe(written);
    expect(rfc3339(expiresAt)).toBe(written);
  });

  it('is an Opaque Secret named <app>-credentials in the app namespace by default', () => {
    const secret = desired();
    expect(secret.type).toBe('Opaque');
    expect(secret.metadata).toMatchObject({ name: 'crm-sync-credentials', namespace: 'sales' });
  });

  it('takes its name from spec.target.name', () => {
    expect(desired(authorized(), { name: 'pipedrive-token' }).metadata.name).toBe('pipedrive-token');
  });

  it('carries the spec labels and annotations plus the managed-by label', () => {
    const { labels, annotations } = desired(authorized(), { labels: { team: 'sales' }, annotations: { 'reloader.example.com/watch': 'true' } }).metadata;
    expect(labels).toEqual({ team: 'sales', [managedByLabel]: managedByValue, [roleLabel]: 'credentials', [appUIDLabel]: app.uid });
    expect(annotations).toEqual({ 'reloader.example.com/watch': 'true' });
  });

  it('keeps its own labels when the spec sets the same keys', () => {
    const { labels } = desired(authorized(), { labels: { [managedByLabel]: 'helm', [appUIDLabel]: 'other' } }).metadata;
    expect(labels).toMatchObject({ [managedByLabel]: managedByValue, [appUIDLabel]: app.uid });
  });

  it('is owned by its OAuthApp as controller', () => {
    expect(desired().metadata.ownerReferences).toEqual([
      { apiVersion: 'oauthapp.dev/v1alpha1', kind: 'OAuthApp', name: 'crm-sync', uid: app.uid, controller: true, blockOwnerDeletion: true },
    ]);
  });
});

describe('isOwnedBy', () => {
  it('is true for a Secret whose controller is the app', () => {
    expect(isOwnedBy(desired(), app.uid)).toBe(true);
  });

  it('is false for a Secret of something else, or one the app owns without being its controller', () => {
    const foreign = edited(desired(), (copy) => {
      copy.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'other-uid', controller: true }];
    });
    const notController = edited(desired(), (copy) => {
      copy.metadata.ownerReferences = [{ apiVersion: 'oauthapp.dev/v1alpha1', kind: 'OAuthApp', name: 'crm-sync', uid: app.uid }];
    });
    const unowned = edited(desired(), (copy) => {
      delete copy.metadata.ownerReferences;
    });
    expect(isOwnedBy(foreign, app.uid)).toBe(false);
    expect(isOwnedBy(notController, app.uid)).toBe(false);
    expect(isOwnedBy(unowned, app.uid)).toBe(false);
  });
});

describe('targetMatches', () => {
  const want = desired(authorized(), { labels: { team: 'sales' }, annotations: { note: 'ours' } });

  it('is true for the Secret as it was written', () => {
    expect(targetMatches(edited(want, () => {}), want)).toBe(true);
  });

  it('compares a cached copy that holds its data as a digest (the target cache) by that digest', () => {
    const cached = { ...edited(want, () => {}), data: undefined, dataDigest: dataDigest(want.data) };
    expect(targetMatches(cached, want)).toBe(true);
    const handEdited = { ...cached, dataDigest: dataDigest({ ...want.data, ...encodeData({ access_token: 'pasted-by-hand' }) }) };
    expect(targetMatches(handEdited, want)).toBe(false);
  });

  it('is false after a value was edited by hand', () => {
    const actual = edited(want, (copy) => {
      copy.data = { ...copy.data, ...encodeData({ access_token: 'pasted-by-hand' }) };
    });
    expect(targetMatches(actual, want)).toBe(false);
  });

  it('is false after a data key was added by hand', () => {
    const actual = edited(want, (copy) => {
      copy.data = { ...copy.data, ...encodeData({ extra: 'x' }) };
    });
    expect(targetMatches(actual, want)).toBe(false);
  });

  it('is false after a data key was removed by hand', () => {
    const actual = edited(want, (copy) => {
      const { access_token: _gone, ...rest } = copy.data ?? {};
      copy.data = rest;
    });
    expect(targetMatches(actual, want)).toBe(false);
  });

  it('is true when others only added labels and annotations', () => {
    const actual = edited(want, (copy) => {
      copy.metadata.labels = { ...copy.metadata.labels, 'backup.example.com/include': 'true' };
      copy.metadata.annotations = { ...copy.metadata.annotations, 'kubectl.kubernetes.io/last-applied-configuration': '{}' };
    });
    expect(targetMatches(actual, want)).toBe(true);
  });

  it('is false when one of our labels or annotations was removed or changed', () => {
    const withoutLabel = edited(want, (copy) => {
      const { [managedByLabel]: _gone, ...rest } = copy.metadata.labels ?? {};
      copy.metadata.labels = rest;
    });
    const changedAnnotation = edited(want, (copy) => {
      copy.metadata.annotations = { note: 'theirs' };
    });
    expect(targetMatches(withoutLabel, want)).toBe(false);
    expect(targetMatches(changedAnnotation, want)).toBe(false);
  });

  it('is false without our owner reference', () => {
    const actual = edited(want, (copy) => {
      copy.metadata.ownerReferences = [];
    });
    expect(targetMatches(actual, want)).toBe(false);
  });

  it('is false when the data changed because the state did', () => {
    expect(targetMatches(desired(authorized()), desired(authorized({ accessToken: 'access-two' })))).toBe(false);
  });
});

describe('mergeForUpdate', () => {
  const want = desired(authorized(), { labels: { team: 'sales' } });
  const othersOwner = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', name: 'crm', uid: 'argo-uid' };
  const actual = edited(desired(authorized({ accessToken: 'access-zero' })), (copy) => {
    copy.metadata.labels = { ...copy.metadata.labels, team: 'old', 'backup.example.com/include': 'true' };
    copy.metadata.annotations = { 'kubectl.kubernetes.io/last-applied-configuration': '{}' };
    copy.metadata.ownerReferences = [...(copy.metadata.ownerReferences ?? []), othersOwner];
    copy.data = { ...copy.data, ...encodeData({ extra: 'added by hand' }) };
  });
  const merged = mergeForUpdate(actual, want);

  it('keeps the labels and annotations others added, with ours winning', () => {
    expect(merged.metadata.labels).toMatchObject({ team: 'sales', 'backup.example.com/include': 'true', [managedByLabel]: managedByValue });
    expect(merged.metadata.annotations).toEqual({ 'kubectl.kubernetes.io/last-applied-configuration': '{}' });
  });

  it('keeps the owner references of others and ours once', () => {
    expect(merged.metadata.ownerReferences).toEqual([othersOwner, ...(want.metadata.ownerReferences ?? [])]);
  });

  it('writes exactly the desired data', () => {
    expect(merged.data).toEqual(want.data);
  });

  it('updates against the resourceVersion it read', () => {
    expect(merged.metadata.resourceVersion).toBe('7');
  });

  it('yields a Secret that matches the desired one', () => {
    expect(targetMatches(merged, want)).toBe(true);
  });
});
