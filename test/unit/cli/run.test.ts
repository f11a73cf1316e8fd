// The plugin from argv to exit code, without a cluster: help, version, usage and kubeconfig errors.
import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mainHelp, commandHelp } from '../../../src/cli/help.ts';
import { run, type Runtime } from '../../../src/cli/run.ts';
import { operatorVersion } from '../../../src/version.ts';

async function runWith(argv: string[], overrides: Partial<Runtime> = {}) {
  const output = { out: '', err: '' };
  const code = await run(argv, {
    env: {},
    home: '/nonexistent-home',
    exists: () => false,
    io: { out: (text) => (output.out += text), err: (text) => (output.err += text) },
    clock: { now: Date.now, sleep: async () => undefined },
    ...overrides,
  });
  return { code, ...output };
}

describe('run', () => {
  it('prints help and the version on stdout, exit 0', async () => {
    expect(await runWith(['--help'])).toEqual({ code: 0, out: mainHelp(), err: '' });
    expect(await runWith(['verify', '-h'])).toEqual({ code: 0, out: commandHelp('verify'), err: '' });
    expect(await runWith(['--version'])).toEqual({ code: 0, out: `kubectl-oauthapp ${operatorVersion}\n`, err: '' });
  });

  it('reports a usage error as one line on stderr, exit 1', async () => {
    expect(await runWith(['status'])).toEqual({ code: 1, out: '', err: "error: status needs the OAuthApp's name: kubectl oauthapp status NAME\n" });
  });

  it('reports a missing kubeconfig clearly, exit 1', async () => {
    expect(await runWith(['status', 'crm'])).toEqual({ code: 1, out: '', err: 'error: no kubeconfig: pass --kubeconfig, set $KUBECONFIG, or create /nonexistent-home/.kube/config\n' });
    const missing = await runWith(['status', 'crm', '--kubeconfig', '/nonexistent/kubeconfig']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^error: kubeconfig \/nonexistent\/kubeconfig: .*ENOENT/);
  });
});

describe('verify behind a proxy', () => {
  it('reads HTTPS_PROXY as the operator does, and refuses a bad one before any request', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-run-'));
    const kubeconfig = join(dir, 'config');
    // An apiserver nobody listens on: the proxy is judged before the app is read.
    await writeFile(kubeconfig, JSON.stringify({ 'current-context': 'c', clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }], contexts: [{ name: 'c', context: { cluster: 'c' } }] }));
    try {
      const result = await runWith(['verify', 'crm', '--kubeconfig', kubeconfig], { env: { HTTPS_PROXY: 'socks5://user:pass@proxy:1080' } });
      expect(result).toEqual({ code: 1, out: '', err: 'error: invalid HTTPS_PROXY: the scheme must be http:// or https://, not socks5://\n' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the kubectl-oauthapp executable', () => {
  const entry = fileURLToPath(new URL('../../../src/cli/kubectl-oauthapp.ts', import.meta.url));
  const exec = (args: string[]) => promisify(execFile)(process.execPath, [entry, ...args], { env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent-home' } });

  it('is a node script that prints its version', async () => {
    const { readFile } = await import('node:fs/promises');
    expect((await readFile(entry, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect((await exec(['--version'])).stdout).toBe(`kubectl-oauthapp ${operatorVersion}\n`);
  });

  it('exits non-zero with the error on stderr', async () => {
    await expect(exec(['status'])).rejects.toMatchObject({ code: 1, stderr: "error: status needs the OAuthApp's name: kubectl oauthapp status NAME\n" });
  });
});
