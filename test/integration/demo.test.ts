// The README's run command with no cluster configured: a local control plane, the sandbox and
// the operator, one app authorized through the callback and refreshed, then a clean exit.
import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const repo = fileURLToPath(new URL('../../', import.meta.url));

describe('npm start without a cluster', () => {
  it('runs the sandbox demo from authorization to a refresh and exits cleanly', async () => {
    const { KUBECONFIG: _ignored, OAUTHAPP_KUBECONFIG: _alsoIgnored, ...environment } = process.env;

    const { stdout } = await promisify(execFile)(process.execPath, ['src/start.ts', '--exit-after-refresh'], {
      cwd: repo,
      env: environment,
      timeout: 150_000,
    });

    expect(stdout).toContain('starting a local sandbox');
    expect(stdout).toContain('status.authorizationURL: http://127.0.0.1:');
    expect(stdout).toContain('callback answered 200');
    expect(stdout).toMatch(/authorized: Secret demo\/crm-sync-credentials access_token=<\d+ characters>/);
    expect(stdout).toMatch(/refreshed: Secret demo\/crm-sync-credentials/);
    expect(stdout).toMatch(/crm-sync\s+True\s+True\s+\d{4}-\d\d-\d\dT/);
  }, 180_000);
});
