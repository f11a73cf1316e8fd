// The no-cluster `npm start`: a real local control plane, the Pipedrive-compatible sandbox and the
// operator, with one OAuthApp taken through its first authorization and a refresh, and a public app
// installed by two companies and uninstalled by one, so a newcomer sees the whole product on a
// laptop without a cluster or a Pipedrive account.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadKubeConfigFile } from '../kube/kubeconfig.ts';
import { parseConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { startOperator } from '../operator.ts';
import { createSandbox } from '../sandbox/server.ts';
import { KubeHTTP } from '../kube/http.ts';
import { KubeClient } from '../kube/client.ts';
import { decodeData, encodeData } from '../kube/objects.ts';
import { controlPlaneBinaries } from './binaries.ts';
import { startControlPlane } from './controlplane.ts';
import { freePort } from './ports.ts';
import { waitUntil } from './wait.ts';
import { showPublicApp } from './demo-public-app.ts';

export interface DemoOptions {
  /** Stop once a refresh has been shown, instead of running until interrupted. */
  exitAfterRefresh: boolean;
  print: (line: string) => void;
  /** Resolves when the person wants to stop (Ctrl-C). */
  interrupted: Promise<void>;
}

const namespace = 'demo';
const operatorNamespace = 'oauthapp-system';
const tokenLifetimeSeconds = 45;
/** The keys that are not secret; the others are shown by length only. */
const shownInFull = new Set(['client_id', 'token_type', 'expires_at', 'scope', 'api_domain']);

export async function runDemo({ exitAfterRefresh, print, interrupted }: DemoOptions): Promise<void> {
  print('No cluster configured (no --kubeconfig, $KUBECONFIG or in-cluster service account): starting a local sandbox.');
  const binDir = await controlPlaneBinaries();
  const controlPlane = await startControlPlane({ binDir, workDir: await mkdtemp(join(tmpdir(), 'oauthapp-demo-')) });
  const stops: Array<() => Promise<unknown>> = [() => controlPlane.stop()];
  try {
    const kubectl = (args: string[]) =>
      promisify(execFile)(join(binDir, 'kubectl'), args, { env: { ...process.env, KUBECONFIG: controlPlane.adminKubeconfigPath } });
    const crds = fileURLToPath(new URL('../../crds/', import.meta.url));
    await kubectl(['apply', '--server-side', '-f', crds]);
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
    await kubectl(['create', 'namespace', namespace]);
    await kubectl(['create', 'namespace', operatorNamespace]);
    print(`kube-apiserver ${controlPlane.version} at ${controlPlane.serverURL}`);
    print(`  try: kubectl --kubeconfig ${controlPlane.adminKubeconfigPath} get oapp -n ${namespace}`);

    const sandbox = createSandbox({ expiresIn: tokenLifetimeSeconds });
    stops.unshift(() => sandbox.close());
    const sandboxURL = await sandbox.listen({ host: '127.0.0.1', port: 0 });
    const callbackPort = await freePort();
    // Like a provider following RFC 9700: the sandbox refuses this app's authorization requests without PKCE.
    const client = sandbox.registerClient({ redirectUri: `http://127.0.0.1:${callbackPort}/oauth/callback`, requirePkce: true });
    print(`sandbox provider (Pipedrive-compatible) at ${sandboxURL}, access tokens live ${tokenLifetimeSeconds} s`);

    const parsed = parseConfig({
      argv: [
        `--kubeconfig=${controlPlane.adminKubeconfigPath}`,
        `--operator-namespace=${operatorNamespace}`,
        `--callback-addr=127.0.0.1:${callbackPort}`,
        '--metrics-addr=127.0.0.1:0',
        '--log-level=warn',
        // The sandbox listens on loopback and stands in for the pipedrive preset's endpoints.
        '--allow-loopback-providers',
        '--allow-preset-overrides',
      ],
      env: {},
      podNamespace: undefined,
    });
    if (!parsed.ok) throw new Error(parsed.error);
    const operator = await startOperator(parsed.config, createLogger({ level: 'warn' }));
    stops.unshift(() => operator.stop());
    print(`operator running: metrics at ${operator.metricsURL}/metrics, callback at ${operator.callbackURL}`);

    const config = loadKubeConfigFile(controlPlane.adminKubeconfigPath);
    const http = await KubeHTTP.fromKubeConfig(config);
    stops.unshift(() => http.close());
    const kube = new KubeClient(http);
    await kube.createSecret(namespace, { metadata: { name: 'crm-sync-client' }, type: 'Opaque', data: encodeData({ client_secret: client.clientSecret }) });
    const manifest = {
      apiVersion: 'oauthapp.dev/v1alpha1',
      kind: 'OAuthApp',
      metadata: { name: 'crm-sync', namespace },
      spec: {
        provider: 'pipedrive',
        tokenURL: `${sandboxURL}/oauth/token`,
        authorizeURL: `${sandboxURL}/oauth/authorize`,
        clientId: client.clientId,
        clientSecretRef: { name: 'crm-sync-client', key: 'client_secret' },
        redirectURI: client.redirectUri,
      },
    };
    const manifestPath = join(controlPlane.workDir, 'crm-sync.json');
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
    await kubectl(['apply', '-f', manifestPath]);
    print(`applied OAuthApp ${namespace}/crm-sync (no refresh token yet)`);

    const getApp = async () => JSON.parse((await kubectl(['get', 'oauthapp', 'crm-sync', '-n', namespace, '-o', 'json'])).stdout) as { status?: { authorizationURL?: string } };
    let authorizationURL = '';
    await waitUntil('an authorization URL in status', 30_000, async () => {
      authorizationURL = (await getApp()).status?.authorizationURL ?? '';
      return authorizationURL !== '';
    });
    print(`status.authorizationURL: ${authorizationURL}`);
    print('accepting the consent page as a person would (the sandbox redirects to the operator callback)…');
    const query = new URL(authorizationURL).searchParams;
    const decision = await fetch(`${sandboxURL}/oauth/authorize/decision`, {
      method: 'POST',
      redirect: 'manual',
      // The consent form's fields, the PKCE challenge included.
      body: new URLSearchParams({
        ...Object.fromEntries(['client_id', 'redirect_uri', 'state', 'code_challenge', 'code_challenge_method'].map((name) => [name, query.get(name) ?? ''])),
        decision: 'allow',
      }),
    });
    const callback = await fetch(decision.headers.get('location') ?? '', { redirect: 'manual' });
    print(`callback answered ${callback.status}`);

    const showSecret = async (label: string) => {
      const data = decodeData((await kube.getSecret(namespace, 'crm-sync-credentials'))?.data);
      const masked = Object.entries(data)
        .map(([key, value]) => `${key}=${shownInFull.has(key) ? value : `<${value.length} characters>`}`)
        .join(' ');
      print(`${label}: Secret ${namespace}/crm-sync-credentials ${masked}`);
      return data.access_token;
    };
    let firstToken: string | undefined;
    await waitUntil('the target Secret', 30_000, async () => (firstToken = (await kube.getSecret(namespace, 'crm-sync-credentials'))?.data?.access_token) !== undefined);
    await showSecret('authorized');
    print((await kubectl(['get', 'oapp', '-n', namespace])).stdout.trimEnd());
    await showPublicApp({
      sandbox,
      sandboxURL,
      callbackURL: operator.callbackURL,
      namespace,
      kube,
      kubectl,
      apply: async (object) => {
        const path = join(controlPlane.workDir, 'public-app.json');
        await writeFile(path, JSON.stringify(object, null, 2));
        await kubectl(['apply', '-f', path]);
      },
      print,
    });
    print(`waiting for the first refresh (due at about two thirds of the ${tokenLifetimeSeconds} s lifetime)…`);
    await waitUntil('a refreshed access token', tokenLifetimeSeconds * 1000, async () => (await kube.getSecret(namespace, 'crm-sync-credentials'))?.data?.access_token !== firstToken);
    await showSecret('refreshed');
    print((await kubectl(['get', 'oapp', '-n', namespace])).stdout.trimEnd());

    if (!exitAfterRefresh) {
      print('running; Ctrl-C stops the operator, the sandbox and the local control plane');
      await interrupted;
    }
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
  }
}
