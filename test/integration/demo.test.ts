// The README's run command with no cluster configured: a local control plane, the sandbox and
// the operator, one app authorized through the callback and refreshed, then a clean exit. While it
// runs, the test reads the demo's secrets through the kubeconfig it prints, for the leak check.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/** Keys whose values are secret, in the demo's Secrets (target, client, state, signing key). */
const secretKeys = new Set(['client_secret', 'access_token', 'refresh_token', 'key']);

/** The secret values the demo's cluster holds (decoded, and as stored in base64). */
async function demoSecretValues(kubeconfig: string): Promise<string[]> {
  const list = async (namespace: string) =>
    (JSON.parse(await kubectlOK(['get', 'secrets', '-n', namespace, '-o', 'json'], { kubeconfig })) as { items: Array<{ data?: Record<string, string> }> }).items;
  const secrets = [...(await list('demo')), ...(await list('oauthapp-system'))];
  return secrets.flatMap((secret) =>
    Object.entries(secret.data ?? {})
      .filter(([key]) => secretKeys.has(key))
      .flatMap(([, value]) => [Buffer.from(value, 'base64').toString('utf8'), value]),
  );
}

describe('npm start without a cluster', () => {
  it('runs the sandbox demo from authorization to a refresh and exits cleanly', async () => {
    const { KUBECONFIG: _ignored, OAUTHAPP_KUBECONFIG: _alsoIgnored, ...environment } = process.env;

    const child = spawn(process.execPath, ['src/start.ts', '--exit-after-refresh'], { cwd: repo, env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    try {
      // Between the first authorization and the first refresh (about 30 s): the demo's cluster is up.
      await eventually('the demo authorized its app', () => (stdout.includes('authorized: Secret') ? true : undefined), 120_000, 100);
      const kubeconfig = /try: kubectl --kubeconfig (\S+) get oapp/.exec(stdout)?.[1];
      expect(kubeconfig).toBeDefined();
      const canaries = await demoSecretValues(kubeconfig ?? '');
      // The client secret, the first tokens (a refresh token after the consent) and the signing key.
      expect(canaries.length).toBeGreaterThanOrEqual(8);
      await expectNoSecretValuesLeaked(canaries, { namespace: 'demo', logs: stdout + stderr, kubeconfig: kubeconfig ?? '' });

      expect(await exited).toBe(0);
      for (const value of canaries.filter((each) => each.length >= 8)) expect((stdout + stderr).includes(value)).toBe(false);
    } finally {
      clearTimeout(timer);
      child.kill('SIGKILL');
    }

    expect(stdout).toContain('starting a local sandbox');
    expect(stdout).toContain('status.authorizationURL: http://127.0.0.1:');
    expect(stdout).toContain('callback answered 200');
    expect(stdout).toMatch(/authorized: Secret demo\/crm-sync-credentials access_token=<\d+ characters>/);
    expect(stdout).toMatch(/refreshed: Secret demo\/crm-sync-credentials/);
    expect(stdout).toMatch(/company 7 installed it from the Marketplace: the callback answered 200/);
    expect(stdout).toMatch(/acme-marketplace-8 +8 +Uninstalled/);
    expect(stdout).toMatch(/crm-sync\s+True\s+True\s+crm-sync-credentials\s+\d{4}-\d\d-\d\dT/);
  }, 180_000);
});
