// Public apps under apiserver faults. On a seeded random schedule, companies install a public app
// from the Marketplace, install it again, uninstall it, have it refreshed on demand, or have their
// installation deleted by the vendor, while the fault-injecting proxy between the operator process
// and the apiserver drops the answers of committed writes, resets connections and answers 429 and
// 5xx. The provider is strict (rotating refresh tokens; a replay revokes the grant). Once the
// faults end: no refresh token was sent twice, every installed company's Secret holds a token the
// provider takes, every uninstalled company has no Secret and an Uninstalled installation, every
// deleted installation is gone with its grant revoked, and no secret reached a log, Event or
// status. A failing seed replays with CHAOS_SEED=<seed>; CHAOS_ITERATIONS sets how many run.
import { describe, expect, it } from '@jest/globals';
import { installationName } from '../../src/api/oauthinstallation.ts';
import { freePort } from '../../src/localcluster/ports.ts';
import { chaosIterations, expectNoLeaks, replays, report } from '../support/chaos.ts';
import { eventually } from '../support/eventually.ts';
import { mulberry32 } from '../support/prng.ts';
import type { OperatorProcess } from '../support/operator-process.ts';
import { namespace, useProxiedStage } from '../support/proxied-stage.ts';
import { oauthAppManifest, opaqueSecret } from '../support/resources.ts';
import { startTestProvider, type TestProvider } from '../support/sandbox.ts';

const stage = useProxiedStage('chaos-installations');
const companies = [11, 12, 13, 14];
const actionsPerSeed = 14;

type Fate = 'never' | 'installed' | 'uninstalled' | 'deleted';

interface Company {
  id: number;
  fate: Fate;
  /** An access token of the grant a deletion should have revoked. */
  deletedToken?: string;
}

interface InstallationView {
  status?: { conditions?: Array<{ type: string; status: string; reason: string }>; uninstalledAt?: string };
}

const seeds = (): number[] => {
  const fixed = Number(process.env.CHAOS_SEED);
  if (Number.isInteger(fixed) && fixed > 0) return [fixed];
  const base = Number(process.env.CHAOS_SEED_BASE) || Math.floor(Math.random() * 1_000_000);
  return Array.from({ length: chaosIterations(2) }, (_, index) => base + index);
};

describe('public apps under apiserver faults', () => {
  let callbackURL = '';
  let operator: OperatorProcess | undefined;

  it('starts the operator behind the faulty proxy', async () => {
    const port = await freePort();
    callbackURL = `http://127.0.0.1:${port}/oauth/callback`;
    operator = stage.startOperator({ leaderElect: false, flags: [`--callback-addr=127.0.0.1:${port}`, '--callback-rate-limit=100000/min', '--token-request-timeout=2'] });
    await eventually('the callback listening', async () => ((await fetch(callbackURL).catch(() => undefined))?.status === 400 ? true : undefined), 60_000);
  }, 90_000);

  it.each(seeds())('seed %i: installs, uninstalls, refreshes and deletions lose nothing and send no refresh token twice', async (seed) => {
    const random = mulberry32(seed);
    const app = `pub-${seed}`;
    const provider = await startTestProvider({ rotateRefreshTokens: true, revokeGrantOnReplay: true, expiresIn: 8 }, `${callbackURL}/${app}`);
    stage.canaries.push(provider.clientSecret);
    try {
      await publicApp(app, provider);
      const state: Company[] = companies.map((id) => ({ id, fate: 'never' }));
      const schedule = stage.proxy.chaos({
        seed,
        rates: { dropWriteResponse: 0.08, delayResponse: 0.05, reset: 0.03, status429: 0.03, status5xx: 0.05 },
        durations: { delayMs: 800, refuseMs: 500, stallWatchMs: 1_000 },
      });
      const done: string[] = [];
      for (let step = 0; step < actionsPerSeed; step++) {
        const company = state[Math.floor(random() * state.length)] as Company;
        done.push(await act(app, provider, company, random()));
        await new Promise((resolve) => setTimeout(resolve, 200 + random() * 800));
      }
      stage.proxy.calm();
      report(`[chaos-installations] seed ${seed}: ${done.join(', ')}; ${schedule.decisions.filter((decision) => decision.fault).length} faults`);

      for (const company of state) {
        await settled(app, provider, company, seed).catch(async (error: unknown) => {
          throw new Error(`${error instanceof Error ? error.message : String(error)}\n${await evidence(app, company)}`);
        });
      }
      expect({ seed, replays: replays(provider.sandbox.stats().presentedRefreshTokens) }).toEqual({ seed, replays: [] });
    } finally {
      stage.proxy.calm();
      await provider.close();
    }
  }, 240_000);

  it('never lets a secret reach logs, Events or status', async () => {
    await expectNoLeaks({ canaries: stage.canaries, namespace, logs: operator?.output() ?? '', metrics: [], kubeconfig: stage.cluster.controlPlane.adminKubeconfigPath });
  });
});

async function publicApp(app: string, provider: TestProvider): Promise<void> {
  const apply = (manifest: object) => stage.cluster.run(['apply', '-n', namespace, '-f', '-'], JSON.stringify(manifest));
  await apply(opaqueSecret(`${app}-client`, { client_secret: provider.clientSecret }));
  await apply(
    oauthAppManifest({
      name: app,
      clientId: provider.clientId,
      tokenURL: provider.tokenURL,
      authorizeURL: provider.authorizeURL,
      redirectURI: provider.redirectURI,
      spec: { installations: 'multiple', revokeURL: `${provider.baseURL}/oauth/revoke` },
    }),
  );
  await eventually(`${app} accepting installs`, async () => {
    const view = JSON.parse(await stage.cluster.run(['get', 'oauthapp', app, '-n', namespace, '-o', 'json'])) as InstallationView;
    return view.status?.conditions?.some((each) => each.type === 'Ready' && each.reason === 'AcceptingInstallations') ? true : undefined;
  }, 60_000);
}

/** One step of a company's life; returns what it did, for the report. */
async function act(app: string, provider: TestProvider, company: Company, draw: number): Promise<string> {
  const name = installationName(app, String(company.id));
  const installed = company.fate === 'installed';
  if (!installed || draw < 0.3) {
    // As a company does when its install fails: try again (a new Marketplace code each time).
    await eventually(`company ${company.id} installed`, async () => {
      const { redirectURL } = provider.sandbox.marketplaceInstall(provider.clientId, company.id);
      return (await fetch(redirectURL, { redirect: 'manual' })).status === 200 ? true : undefined;
    }, 60_000);
    company.fate = 'installed';
    return `install ${company.id}`;
  }
  if (draw < 0.55) {
    const timestamp = new Date().toISOString();
    const first = await provider.sandbox.uninstall(provider.clientId, company.id, { timestamp });
    // Pipedrive does not retry; this test does, so that a 200 is what it checks.
    if (first.status !== 200) {
      await eventually(`company ${company.id} uninstalled`, async () => ((await provider.sandbox.uninstall(provider.clientId, company.id, { timestamp })).status === 200 ? true : undefined), 60_000);
    }
    company.fate = 'uninstalled';
    return `uninstall ${company.id}`;
  }
  if (draw < 0.85) {
    await stage.cluster.run(['annotate', 'oinst', name, '-n', namespace, `oauthapp.dev/rotate=${Date.now()}`, '--overwrite']);
    return `refresh ${company.id}`;
  }
  const token = (await stage.cluster.admin.secretData(namespace, name))?.access_token;
  await stage.cluster.run(['delete', 'oinst', name, '-n', namespace, '--wait=false']);
  company.fate = 'deleted';
  if (token) company.deletedToken = token;
  return `delete ${company.id}`;
}

/** The company's end state, once the faults are over. */
async function settled(app: string, provider: TestProvider, company: Company, seed: number): Promise<void> {
  const name = installationName(app, String(company.id));
  const installation = async () => {
    const text = await stage.cluster.run(['get', 'oinst', name, '-n', namespace, '-o', 'json', '--ignore-not-found']);
    return text.trim() ? (JSON.parse(text) as InstallationView) : undefined;
  };
  const secret = () => stage.cluster.admin.secretData(namespace, name);
  const what = `seed ${seed}, company ${company.id} (${company.fate})`;
  switch (company.fate) {
    case 'installed': {
      const token = await eventually(`${what}: Ready with a working token`, async () => {
        const ready = (await installation())?.status?.conditions?.some((each) => each.type === 'Ready' && each.status === 'True');
        const data = await secret();
        return ready && data?.access_token && (await provider.whoAmI(data.access_token)) === 200 ? data.access_token : undefined;
      }, 90_000);
      stage.canaries.push(token);
      return;
    }
    case 'uninstalled':
      await eventually(`${what}: Uninstalled, no Secret`, async () => ((await installation())?.status?.uninstalledAt !== undefined && (await secret()) === undefined ? true : undefined), 90_000);
      return;
    case 'deleted':
      await eventually(`${what}: gone`, async () => ((await installation()) === undefined ? true : undefined), 90_000);
      if (company.deletedToken) expect({ what, status: await provider.whoAmI(company.deletedToken) }).toEqual({ what, status: 401 });
      return;
    case 'never':
      expect({ what, installation: await installation() }).toEqual({ what, installation: undefined });
  }
}

/** What the operator holds for a company: the installation's status and its state's bookkeeping (no token values). */
async function evidence(app: string, company: Company): Promise<string> {
  const name = installationName(app, String(company.id));
  const installation = await stage.cluster.run(['get', 'oinst', name, '-n', namespace, '-o', 'json', '--ignore-not-found']);
  const uid = installation.trim() ? (JSON.parse(installation) as { metadata: { uid: string } }).metadata.uid : '';
  const state = uid ? await stage.cluster.admin.secretData('oauthapp-system', `oauthapp-state-${uid}`) : undefined;
  return [`installation: ${installation.trim() ? JSON.stringify(JSON.parse(installation).status) : 'none'}`, `state keys: ${Object.keys(state ?? {}).join(',')}`, `record: ${state?.['record.json'] ?? 'none'}`].join('\n');
}
