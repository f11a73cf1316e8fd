// Public apps (installations: multiple), as a vendor and the companies installing their app live
// them: Marketplace installs with no state of ours, a company installing again, uninstall
// callbacks (good, forged, missing credentials), vendor-side ends that revoke at the provider, a
// client-secret rotation reaching every installation, and a single app refusing a state-less code.
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { installationName } from '../../src/api/oauthinstallation.ts';
import { stateSecretName } from '../../src/oauthapp/state.ts';
import { eventually } from '../support/eventually.ts';
import { occurrences } from '../support/events.ts';
import { kubectlOK, tableRows } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { consent, visit } from '../support/person.ts';
import { apply, getApp, condition, oauthAppManifest, opaqueSecret } from '../support/resources.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('public-apps');

interface InstallationView {
  metadata: { name: string; uid: string; labels?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string }> };
  spec: { app: string; companyID: string };
  status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }>; installedAt?: string; uninstalledAt?: string; userID?: string };
}

const getInstallation = async (name: string): Promise<InstallationView | undefined> => {
  const text = await kubectlOK(['get', 'oauthinstallation', name, '-n', testbed.namespace, '-o', 'json', '--ignore-not-found']);
  return text.trim() ? (JSON.parse(text) as InstallationView) : undefined;
};

const installationWith = (name: string, predicate: (installation: InstallationView) => boolean, what: string) =>
  eventually(`${name}: ${what}`, async () => {
    const installation = await getInstallation(name);
    return installation && predicate(installation) ? installation : undefined;
  });

const ready = (installation: InstallationView) => installation.status?.conditions?.find((each) => each.type === 'Ready')?.status === 'True';

const secret = (name: string) => testbed.admin.secretData(testbed.namespace, name);

/** A public app at its own path under the operator's callback, on a provider of its own. */
async function publicApp(name: string, spec: Record<string, unknown> = {}): Promise<TestProvider> {
  const provider = await testbed.newProvider({}, `${testbed.operator.callbackURL}/${name}`);
  await testbed.applyApp(name, provider, { refreshToken: null, spec: { installations: 'multiple', revokeURL: `${provider.baseURL}/oauth/revoke`, ...spec } });
  await testbed.appWith(name, (app) => condition(app, 'Ready')?.reason === 'AcceptingInstallations', 'Ready=True, AcceptingInstallations');
  return provider;
}

/** "Install now" in the Marketplace: the browser lands on the app's callback with a code and no state. */
async function marketplaceInstall(provider: TestProvider, companyId: number, userId?: number): Promise<{ status: number; body: string }> {
  const { redirectURL } = provider.sandbox.marketplaceInstall(provider.clientId, companyId, userId);
  return visit(redirectURL);
}

/** Installed and Ready, with a Secret that holds a token the provider takes. */
async function installed(app: string, provider: TestProvider, companyId: number): Promise<Record<string, string>> {
  const name = installationName(app, String(companyId));
  await installationWith(name, ready, 'Ready=True');
  const data = await eventually(`${name}: its Secret`, async () => (await secret(name))?.access_token ? await secret(name) : undefined);
  expect(await provider.whoAmI(data?.access_token ?? '')).toBe(200);
  return data ?? {};
}

describe('Marketplace installs', () => {
  it('gives each of three companies an OAuthInstallation and a labelled Secret with its own working token', async () => {
    const provider = await publicApp('crm-three');
    for (const company of [101, 102, 103]) expect((await marketplaceInstall(provider, company, company * 10)).status).toBe(200);

    const tokens = new Set<string>();
    for (const company of [101, 102, 103]) {
      const data = await installed('crm-three', provider, company);
      tokens.add(data.access_token ?? '');
      expect(data.client_id).toBe(provider.clientId);
      expect(data.client_secret).toBe(provider.clientSecret);
      const installation = await getInstallation(`crm-three-${company}`);
      expect(installation?.spec).toEqual({ app: 'crm-three', companyID: String(company) });
      expect(installation?.status?.userID).toBe(String(company * 10));
      expect(installation?.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'OAuthApp', name: 'crm-three' });
    }
    expect(tokens.size).toBe(3);
    const selected = await kubectlOK(['get', 'secrets', '-n', testbed.namespace, '-l', 'oauthapp.dev/app=crm-three', '-o', 'jsonpath={.items[*].metadata.labels.oauthapp\\.dev/company-id}']);
    expect(selected.split(' ').sort()).toEqual(['101', '102', '103']);
    const rows = tableRows(await kubectlOK(['get', 'oinst', '-n', testbed.namespace, '-l', 'oauthapp.dev/app=crm-three']));
    expect(rows.map((row) => [row.NAME, row.COMPANY, row.READY])).toEqual([
      ['crm-three-101', '101', 'True'],
      ['crm-three-102', '102', 'True'],
      ['crm-three-103', '103', 'True'],
    ]);
    expect(Object.keys(rows[0] ?? {})).toEqual(['NAME', 'COMPANY', 'READY', 'EXPIRES', 'AGE']);
    // Each installation's series carries its app and its own name.
    const metrics = await (await fetch(`${testbed.operator.metricsURL}/metrics`)).text();
    for (const company of [101, 102, 103]) expect(metrics).toContain(`oauthapp_ready{namespace="${testbed.namespace}",name="crm-three",installation="crm-three-${company}"} 1`);
    expect(metrics).toContain(`oauthapp_ready{namespace="${testbed.namespace}",name="crm-three"} 1`);
    // The installation appears a moment before its grant is stored: its reconcile waits, it does not race the write.
    expect(testbed.logs().split('\n').filter((line) => line.includes('oinst:crm-three') && line.includes('reconcile failed'))).toEqual([]);
  }, 120_000);

  it('replaces the grant when the same company installs again, and keeps one installation', async () => {
    const provider = await publicApp('crm-again');
    await marketplaceInstall(provider, 201);
    const first = await installed('crm-again', provider, 201);
    const before = await getInstallation('crm-again-201');

    expect((await marketplaceInstall(provider, 201)).status).toBe(200);
    const second = await eventually('the new grant in the Secret', async () => {
      const data = await secret('crm-again-201');
      return data?.access_token && data.access_token !== first.access_token ? data : undefined;
    });
    expect(await provider.whoAmI(second.access_token ?? '')).toBe(200);
    const after = await getInstallation('crm-again-201');
    expect(after?.metadata.uid).toBe(before?.metadata.uid);
    const all = await kubectlOK(['get', 'oinst', '-n', testbed.namespace, '-l', 'oauthapp.dev/app=crm-again', '-o', 'name']);
    expect(all.trim().split('\n')).toEqual(['oauthinstallation.oauthapp.dev/crm-again-201']);
  }, 120_000);

  it('installs through the app\'s own authorization URL too (vendor-side install, with state and PKCE)', async () => {
    const provider = await publicApp('crm-vendor-side');
    const app = await getApp(testbed.namespace, 'crm-vendor-side');
    const callback = await consent(app.status?.authorizationURL ?? '', 'allow');
    expect((await visit(callback)).status).toBe(200);
    // The sandbox's consent form installs for company 1 unless told otherwise.
    await installed('crm-vendor-side', provider, 1);
  }, 60_000);
});

describe('two public apps with one callback path', () => {
  it('sends the path\'s installs to the older one; the newer one says why it receives none', async () => {
    const provider = await publicApp('crm-path-first');
    const second = await testbed.newProvider({}, provider.redirectURI);
    // creationTimestamp counts whole seconds: within one, the older is decided by uid.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await apply(testbed.namespace, opaqueSecret('crm-path-second-client', { client_secret: second.clientSecret }));
    await apply(
      testbed.namespace,
      oauthAppManifest({ name: 'crm-path-second', clientId: second.clientId, tokenURL: second.tokenURL, authorizeURL: second.authorizeURL, redirectURI: provider.redirectURI, spec: { installations: 'multiple' } }),
    );
    const newer = await testbed.appWith('crm-path-second', (app) => condition(app, 'Ready')?.reason === 'CallbackPathTaken', 'Ready=False, CallbackPathTaken');
    expect(condition(newer, 'Ready')?.message).toContain('crm-path-first');
    expect(newer.status?.authorizationURL).toBeUndefined();

    await marketplaceInstall(provider, 121);
    await installed('crm-path-first', provider, 121);
  }, 60_000);
});

describe('a single app', () => {
  it('refuses a state-less code (400) and sends nothing to the provider', async () => {
    const provider = await testbed.newProvider({}, `${testbed.operator.callbackURL}/single-app`);
    await testbed.readyApp('single-app', provider);
    const codesBefore = provider.sandbox.stats().presentedAuthorizationCodes.length;
    const answer = await marketplaceInstall(provider, 301);
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('state');
    expect(provider.sandbox.stats().presentedAuthorizationCodes).toHaveLength(codesBefore);
    expect(await getInstallation(installationName('single-app', '301'))).toBeUndefined();
  }, 60_000);
});

describe('the uninstall callback', () => {
  it('with the app\'s credentials marks the installation Uninstalled, drops its tokens and deletes its Secret', async () => {
    const provider = await publicApp('crm-uninstall');
    await marketplaceInstall(provider, 401);
    await marketplaceInstall(provider, 402);
    await installed('crm-uninstall', provider, 401);
    const kept = await installed('crm-uninstall', provider, 402);

    expect(await provider.sandbox.uninstall(provider.clientId, 401)).toEqual({ status: 200 });
    const gone = await installationWith('crm-uninstall-401', (installation) => installation.status?.uninstalledAt !== undefined, 'uninstalledAt');
    expect(gone.status?.conditions?.find((each) => each.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Uninstalled' });
    await eventually('its Secret deleted', async () => ((await secret('crm-uninstall-401')) === undefined ? true : undefined));
    const state = await testbed.admin.secretData(testbed.operatorNamespace, stateSecretName(gone.metadata.uid));
    expect(Object.keys(state ?? {})).toEqual(['record.json']);
    // The other company is untouched.
    expect((await secret('crm-uninstall-402'))?.access_token).toBe(kept.access_token);

    // Installing again brings it back.
    await marketplaceInstall(provider, 401);
    await installed('crm-uninstall', provider, 401);
  }, 120_000);

  it.each([
    ['a forged secret', 'secret'],
    ['no credentials', 'none'],
  ] as const)('with %s gets 401 and changes nothing', async (_title, forgery) => {
    const name = `crm-forged-${forgery}`;
    const provider = await publicApp(name);
    await marketplaceInstall(provider, 501);
    const before = await installed(name, provider, 501);

    const forged = forgery === 'none' ? 'none' : { clientId: provider.clientId, clientSecret: 'not-the-secret' };
    const answer = await fetch(provider.redirectURI, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json', ...(forged === 'none' ? {} : { authorization: `Basic ${Buffer.from(`${forged.clientId}:${forged.clientSecret}`).toString('base64')}` }) },
      body: JSON.stringify({ client_id: provider.clientId, company_id: 501, user_id: 1, timestamp: new Date().toISOString() }),
    });
    expect(answer.status).toBe(401);

    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const installation = await getInstallation(`${name}-501`);
    expect(installation?.status?.uninstalledAt).toBeUndefined();
    expect(ready(installation as InstallationView)).toBe(true);
    expect((await secret(`${name}-501`))?.access_token).toBe(before.access_token);
  }, 60_000);

  it('that is older than the company\'s latest install (a replay) changes nothing', async () => {
    const provider = await publicApp('crm-replay');
    await marketplaceInstall(provider, 601);
    const before = await installed('crm-replay', provider, 601);
    const oneHourAgo = new Date(Date.now() - 3_600_000).toISOString();

    // The provider revokes its grants on uninstall: send the late DELETE ourselves.
    const answer = await fetch(provider.redirectURI, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${provider.clientId}:${provider.clientSecret}`).toString('base64')}` },
      body: JSON.stringify({ client_id: provider.clientId, company_id: 601, user_id: 1, timestamp: oneHourAgo }),
    });
    expect(answer.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await getInstallation('crm-replay-601'))?.status?.uninstalledAt).toBeUndefined();
    expect((await secret('crm-replay-601'))?.access_token).toBe(before.access_token);
  }, 60_000);
});

describe('ending an installation from the vendor side', () => {
  it('revokes its refresh token at the provider before the installation and its Secret go', async () => {
    const provider = await publicApp('crm-revoke');
    await marketplaceInstall(provider, 701);
    const data = await installed('crm-revoke', provider, 701);
    const revocations = provider.sandbox.stats().revocations;

    await kubectlOK(['delete', 'oinst', 'crm-revoke-701', '-n', testbed.namespace, '--wait=true', '--timeout=60s']);
    expect(provider.sandbox.stats().revocations).toBe(revocations + 1);
    // The grant is gone at the provider: its access token no longer works.
    expect(await provider.whoAmI(data.access_token ?? '')).toBe(401);
    // Deleted by the finalizer itself: the company can install again at once, garbage collector or not.
    expect(await secret('crm-revoke-701')).toBeUndefined();
  }, 90_000);

  it('keeps the installation while its revocation fails, says so in an Event, and retries until it succeeds', async () => {
    const provider = await publicApp('crm-revoke-fails', { revokeURL: 'http://127.0.0.1:1/oauth/revoke' });
    await marketplaceInstall(provider, 711);
    const data = await installed('crm-revoke-fails', provider, 711);

    await kubectlOK(['delete', 'oinst', 'crm-revoke-fails-711', '-n', testbed.namespace, '--wait=false']);
    await eventually('a RevocationFailed Event', async () => ((await occurrences(testbed.namespace, 'crm-revoke-fails-711', 'RevocationFailed')) > 0 ? true : undefined));
    expect(await getInstallation('crm-revoke-fails-711')).toBeDefined();
    expect(await provider.whoAmI(data.access_token ?? '')).toBe(200);

    // The vendor fixes the endpoint: the next retry revokes, and the installation goes.
    await kubectlOK(['patch', 'oauthapp', 'crm-revoke-fails', '-n', testbed.namespace, '--type=merge', '-p', JSON.stringify({ spec: { revokeURL: `${provider.baseURL}/oauth/revoke` } })]);
    await eventually('the installation gone', async () => ((await getInstallation('crm-revoke-fails-711')) === undefined ? true : undefined), 60_000);
    expect(await provider.whoAmI(data.access_token ?? '')).toBe(401);
  }, 120_000);

  it('deleting the app revokes every installation first', async () => {
    const provider = await publicApp('crm-app-gone');
    await marketplaceInstall(provider, 801);
    await marketplaceInstall(provider, 802);
    const first = await installed('crm-app-gone', provider, 801);
    const second = await installed('crm-app-gone', provider, 802);

    await kubectlOK(['delete', 'oauthapp', 'crm-app-gone', '-n', testbed.namespace, '--wait=true', '--timeout=60s']);
    expect(await provider.whoAmI(first.access_token ?? '')).toBe(401);
    expect(await provider.whoAmI(second.access_token ?? '')).toBe(401);
    expect(await kubectlOK(['get', 'oinst', '-n', testbed.namespace, '-l', 'oauthapp.dev/app=crm-app-gone', '-o', 'name'])).toBe('');
  }, 90_000);
});

describe('a client-secret rotation', () => {
  it('reaches every installation\'s Secret, and refreshes keep working for all', async () => {
    const provider = await publicApp('crm-rotate');
    const companies = [901, 902, 903];
    for (const company of companies) await marketplaceInstall(provider, company);
    for (const company of companies) await installed('crm-rotate', provider, company);

    const rotated = provider.sandbox.rotateClientSecret(provider.clientId, `rotated-${randomBytes(16).toString('hex')}`);
    testbed.canaries.push(rotated);
    await apply(testbed.namespace, opaqueSecret('crm-rotate-client', { client_secret: rotated }));
    for (const company of companies) {
      await eventually(`crm-rotate-${company} carries the new secret`, async () => ((await secret(`crm-rotate-${company}`))?.client_secret === rotated ? true : undefined));
    }
    const refreshesBefore = provider.sandbox.stats().presentedRefreshTokens.length;
    for (const company of companies) await kubectlOK(['annotate', 'oinst', `crm-rotate-${company}`, '-n', testbed.namespace, 'oauthapp.dev/rotate=after-rotation', '--overwrite']);
    for (const company of companies) {
      const refreshed = await installationWith(`crm-rotate-${company}`, (installation) => (installation.status as { lastRotateRequest?: string } | undefined)?.lastRotateRequest === 'after-rotation' && ready(installation), 'refreshed with the new secret');
      expect(refreshed.status?.conditions?.find((each) => each.type === 'ClientSecretValid')).toMatchObject({ status: 'True' });
      expect(await provider.whoAmI((await secret(`crm-rotate-${company}`))?.access_token ?? '')).toBe(200);
    }
    expect(provider.sandbox.stats().presentedRefreshTokens.length - refreshesBefore).toBe(companies.length);

    // Pipedrive may sign an uninstall with the replaced secret for a moment: still believed.
    const answer = await fetch(provider.redirectURI, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${provider.clientId}:${provider.clientSecret}`).toString('base64')}` },
      body: JSON.stringify({ client_id: provider.clientId, company_id: 903, user_id: 1, timestamp: new Date().toISOString() }),
    });
    expect(answer.status).toBe(200);
    await installationWith('crm-rotate-903', (installation) => installation.status?.uninstalledAt !== undefined, 'uninstalled with the previous secret');
  }, 180_000);
});

describe('secrets', () => {
  it('never reach logs, Events or status', async () => {
    await expectNoSecretValuesLeaked(testbed.canaries, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
