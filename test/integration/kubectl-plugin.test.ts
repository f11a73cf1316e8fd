// The kubectl plugin as a user meets it: `kubectl oauthapp …` found by the real kubectl's plugin
// discovery on PATH, against the real apiserver, with the operator running and a sandbox provider.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientCheckTokenPrefix } from '../../src/oauth/client-check.ts';
import type { Presentation, SandboxStats } from '../../src/sandbox/stats.ts';
import { requiredEnvironment } from '../support/environment.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { consentForm } from '../support/person.ts';
import { apply, condition, getApp, opaqueSecret } from '../support/resources.ts';
import type { TestProvider } from '../support/sandbox.ts';
import { useTestbed } from '../support/testbed.ts';

const testbed = useTestbed('kubectl-plugin');
const entry = fileURLToPath(new URL('../../src/cli/kubectl-oauthapp.ts', import.meta.url));
let pluginDir = '';
let provider: TestProvider;
/** Everything the plugin printed, for the leak check. */
const printed: string[] = [];

beforeAll(async () => {
  pluginDir = await mkdtemp(join(tmpdir(), 'kubectl-plugin-'));
  const wrapper = join(pluginDir, 'kubectl-oauthapp');
  await writeFile(wrapper, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(entry)} "$@"\n`);
  await chmod(wrapper, 0o755);
  provider = await testbed.newProvider({}, testbed.operator.callbackURL);
});

afterAll(async () => {
  if (pluginDir) await rm(pluginDir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Running {
  /** Resolves with the output so far once `pattern` shows up on stdout. */
  stdoutMatching(pattern: RegExp): Promise<RegExpMatchArray>;
  done: Promise<Run>;
}

/** `kubectl oauthapp …`, with the wrapper's directory first on PATH and the run's kubeconfig. */
function startPlugin(args: string[]): Running {
  const child = spawn(join(requiredEnvironment('binDir'), 'kubectl'), ['oauthapp', ...args], {
    env: { ...process.env, PATH: [pluginDir, process.env.PATH ?? ''].join(delimiter), KUBECONFIG: requiredEnvironment('kubeconfig') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers: Array<() => void> = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const watcher of watchers) watcher();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      printed.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    done,
    stdoutMatching: (pattern) =>
      new Promise((resolve, reject) => {
        const look = () => {
          const match = stdout.match(pattern);
          if (match) resolve(match);
        };
        watchers.push(look);
        look();
        void done.then(() => reject(new Error(`the plugin ended without printing ${pattern}: ${stdout}${stderr}`)));
      }),
  };
}

const plugin = (...args: string[]) => startPlugin(args).done;
const inNamespace = () => ['-n', testbed.namespace];
/** The value printed after `label:` on its own line of `status`. */
const lineOf = (output: string, label: string) => output.split('\n').find((line) => line.startsWith(`${label}:`))?.slice(label.length + 1).trim();
const credentials = async (name: string) => (await testbed.admin.secretData(testbed.namespace, `${name}-credentials`)) ?? {};

describe('kubectl oauthapp', () => {
  it('is found by kubectl, and answers --help and --version', async () => {
    const help = await plugin('--help');
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('Usage: kubectl oauthapp COMMAND NAME [flags]');
    expect((await plugin('verify', '--help')).stdout).toContain('Usage: kubectl oauthapp verify NAME [flags]');
    expect((await plugin('--version')).stdout).toMatch(/^kubectl-oauthapp \d+\.\d+\.\d+\n$/);
  });
});

describe('kubectl oauthapp status', () => {
  it('shows a Ready app\'s conditions, expiry, target Secret and the replica holding the Lease', async () => {
    const app = await testbed.readyApp('shown', provider);
    const holder = await kubectlOK(['get', 'lease', 'oauthapp-operator', '-n', testbed.operatorNamespace, '-o', 'jsonpath={.spec.holderIdentity}']);
    expect(holder).not.toBe('');

    const { code, stdout, stderr } = await plugin('status', 'shown', ...inNamespace(), '--operator-namespace', testbed.operatorNamespace);

    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^Name: +shown$/m);
    expect(stdout).toMatch(/^Ready: +True \(TokenValid\)$/m);
    expect(stdout).toMatch(/^Target Secret: +shown-credentials$/m);
    expect(lineOf(stdout, 'Token expires')).toMatch(new RegExp(`^${app.status?.accessTokenExpiresAt} \\(in \\d+m`));
    expect(stdout).toMatch(/^Last failure: +none$/m);
    expect(lineOf(stdout, 'Leader')).toBe(`${holder}  [Lease ${testbed.operatorNamespace}/oauthapp-operator]`);
    for (const type of ['Ready', 'Authorized', 'ClientSecretValid']) {
      const shown = condition(app, type);
      expect(stdout).toMatch(new RegExp(`^  ${type} +${shown?.status} +${shown?.reason} +\\S`, 'm'));
    }
  });

  it('says "unknown" for the leader when the Lease cannot be read, and still succeeds', async () => {
    await testbed.readyApp('no-lease', provider);
    const { code, stdout } = await plugin('status', 'no-lease', ...inNamespace(), '--operator-namespace', 'no-operator-here');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Leader: +unknown \(.*not found.*\)/m);
  });

  it('fails with a clear error for an app that does not exist', async () => {
    const { code, stdout, stderr } = await plugin('status', 'missing', ...inNamespace());
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(`error: oauthapp "missing" not found in namespace "${testbed.namespace}"\n`);
    expect((await plugin('rotate', 'missing', ...inNamespace())).stderr).toContain(`oauthapp "missing" not found in namespace "${testbed.namespace}"`);
  });
});

describe('kubectl oauthapp rotate', () => {
  it('refreshes now, waits for the operator, and prints the new expiry', async () => {
    await testbed.readyApp('rotated', provider);
    const before = await credentials('rotated');

    const { code, stdout, stderr } = await plugin('rotate', 'rotated', ...inNamespace(), '--timeout', '40s');

    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const app = await getApp(testbed.namespace, 'rotated');
    const requested = app.metadata.annotations?.['oauthapp.dev/rotate'] ?? '';
    expect(new Date(requested).toISOString()).toBe(requested);
    expect(app.status?.lastRotateRequest).toBe(requested);
    expect(stdout).toBe(`rotated oauthapp "rotated" in namespace "${testbed.namespace}": the new access token expires at ${app.status?.accessTokenExpiresAt} (in ${stdout.match(/\(in ([^)]+)\)/)?.[1]})\n`);
    const after = await credentials('rotated');
    expect(after.access_token).toBeTruthy();
    expect(after.access_token).not.toBe(before.access_token);
    testbed.canaries.push(before.access_token ?? '', after.access_token ?? '');
  });
});

describe('kubectl oauthapp verify', () => {
  /**
   * Refresh requests with tokens the provider issued, and client checks (a token starting with
   * clientCheckTokenPrefix), wherever the sandbox's stats keep the latter.
   */
  const tokenRequests = () => {
    const stats: SandboxStats & { clientChecks?: readonly Presentation[] } = provider.sandbox.stats();
    const all = [...stats.presentedRefreshTokens, ...(stats.clientChecks ?? [])];
    const isCheck = (presentation: Presentation) => presentation.value.startsWith(clientCheckTokenPrefix);
    return { refreshes: all.filter((presentation) => !isCheck(presentation)), checks: all.filter(isCheck) };
  };

  it('says accepted for the right client secret, and spends no refresh token doing so', async () => {
    await testbed.readyApp('verified', provider);
    const before = tokenRequests();

    const { code, stdout } = await plugin('verify', 'verified', ...inNamespace());

    expect(code).toBe(0);
    expect(stdout).toBe(`accepted: the provider accepts the client secret of oauthapp "verified" in namespace "${testbed.namespace}" (${provider.tokenURL})\n`);
    // One token request, with a refresh token no provider issued: no grant was touched.
    const after = tokenRequests();
    expect(after.refreshes.length).toBe(before.refreshes.length);
    expect(after.checks.slice(before.checks.length).map((presentation) => presentation.outcome)).toEqual(['invalid_grant']);
    expect(condition(await getApp(testbed.namespace, 'verified'), 'Authorized')?.status).toBe('True');
  });

  it('says rejected, with the provider\'s words, once the Secret holds a wrong client secret', async () => {
    await testbed.readyApp('refused', provider);
    const wrong = `wrong-${provider.clientSecret.slice(0, 4)}-not-the-secret`;
    testbed.canaries.push(wrong);
    await apply(testbed.namespace, opaqueSecret('refused-client', { client_secret: wrong }));

    const { code, stdout } = await plugin('verify', 'refused', ...inNamespace());

    expect(code).toBe(1);
    expect(stdout).toMatch(new RegExp(`^rejected: the provider refused the client secret of oauthapp "refused" in namespace "${testbed.namespace}"`));
    expect(stdout).not.toContain(wrong);
  });
});

describe('kubectl oauthapp authorize', () => {
  it('prints the authorization URL, waits while a person consents, and exits 0 once the app is authorized', async () => {
    await testbed.applyApp('consenting', provider, { refreshToken: null });
    const running = startPlugin(['authorize', 'consenting', ...inNamespace(), '--timeout', '40s']);

    const [, url = ''] = await running.stdoutMatching(/^ {2}(http\S+)$/m);
    expect(url).toBe((await getApp(testbed.namespace, 'consenting')).status?.authorizationURL);
    const decision = await fetch(new URL('/oauth/authorize/decision', url), { method: 'POST', redirect: 'manual', body: consentForm(url, 'allow') });
    expect(decision.status).toBe(302);
    expect((await fetch(decision.headers.get('location') ?? '')).status).toBe(200);

    const { code, stdout } = await running.done;
    expect(code).toBe(0);
    expect(stdout).toMatch(/is authorized \(Authorized=True\)\n$/);
    await eventually('consenting Ready', async () => (condition(await getApp(testbed.namespace, 'consenting'), 'Ready')?.status === 'True' ? true : undefined));

    const again = await plugin('authorize', 'consenting', ...inNamespace());
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`oauthapp "consenting" in namespace "${testbed.namespace}" is already authorized (Authorized=True): nothing to do\n`);
  });
});

describe('everything the plugin printed', () => {
  it('holds no client secret or token, nor do the operator\'s logs, Events or status', async () => {
    const stats = provider.sandbox.stats();
    const canaries = [
      ...testbed.canaries,
      ...stats.presentedRefreshTokens.map((presentation) => presentation.value),
      ...stats.presentedAuthorizationCodes.map((presentation) => presentation.value),
    ];
    for (const name of ['shown', 'no-lease', 'rotated', 'verified', 'refused', 'consenting']) {
      const data = await credentials(name);
      canaries.push(data.access_token ?? '', data.refresh_token ?? '');
    }
    const values = canaries.filter((value) => value.length >= 8);
    expect(printed.length).toBeGreaterThan(10);
    const output = printed.join('\n');
    expect(values.filter((value) => output.includes(value))).toEqual([]);
    await expectNoSecretValuesLeaked(values, { namespace: testbed.namespace, logs: testbed.logs() });
  });
});
