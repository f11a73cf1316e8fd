// The kubeconfig the user chose, read with the operator's loader: --context, and the namespace
// the commands use when -n is not given.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, describeKubeError, loadConfig } from '../../../src/cli/cluster.ts';
import { CliError } from '../../../src/cli/errors.ts';
import { KubeAPIError } from '../../../src/kube/errors.ts';

let dir = '';
let path = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-kubeconfig-'));
  path = join(dir, 'config');
  await writeFile(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'dev',
      clusters: [
        { name: 'dev', cluster: { server: 'https://dev.example:6443' } },
        { name: 'prod', cluster: { server: 'https://prod.example:6443/' } },
      ],
      users: [{ name: 'me', user: { token: 'not-a-real-token' } }],
      contexts: [
        { name: 'dev', context: { cluster: 'dev', user: 'me' } },
        { name: 'prod', context: { cluster: 'prod', user: 'me', namespace: 'sales' } },
      ],
    }),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadConfig and connect', () => {
  it('use the current context, with namespace default when it names none', async () => {
    const config = loadConfig({ kind: 'file', path }, undefined);
    expect(config.server).toBe('https://dev.example:6443');
    const cluster = await connect(config, undefined);
    expect(cluster.namespace).toBe('default');
    await cluster.close();
  });

  it('use --context, and its namespace unless -n says otherwise', async () => {
    const config = loadConfig({ kind: 'file', path }, 'prod');
    expect(config.server).toBe('https://prod.example:6443');
    const fromContext = await connect(config, undefined);
    expect(fromContext.namespace).toBe('sales');
    const fromFlag = await connect(config, 'ops');
    expect(fromFlag.namespace).toBe('ops');
    await Promise.all([fromContext.close(), fromFlag.close()]);
  });

  it('refuse a context the file does not define, and say when there is no kubeconfig at all', () => {
    expect(() => loadConfig({ kind: 'file', path }, 'staging')).toThrow('context "staging" is not defined');
    expect(() => loadConfig({ kind: 'none', problem: 'no kubeconfig: pass --kubeconfig' }, undefined)).toThrow(new CliError('no kubeconfig: pass --kubeconfig'));
  });
});

describe('describeKubeError', () => {
  const failure = (reason: ConstructorParameters<typeof KubeAPIError>[3], status: number, message: string) => new KubeAPIError('GET', '/apis/x', status, reason, message);

  it('says what could not be done and the apiserver\'s reason, without the request line', () => {
    expect(describeKubeError(failure('Forbidden', 403, 'oauthapps.oauthapp.dev "crm" is forbidden: User "me" cannot get'), 'get oauthapp "crm"', 'https://k').message).toBe(
      'cannot get oauthapp "crm": oauthapps.oauthapp.dev "crm" is forbidden: User "me" cannot get (Forbidden, HTTP 403)',
    );
    expect(describeKubeError(failure('Unauthorized', 401, 'Unauthorized'), 'get oauthapp "crm"', 'https://k').message).toBe(
      'cannot get oauthapp "crm": the apiserver did not accept the kubeconfig\'s credentials (401 Unauthorized)',
    );
  });

  it('marks an unreachable or failing apiserver as transient (a wait reads again), and nothing else', () => {
    const unreachable = describeKubeError(failure('NetworkError', 0, 'connect ECONNREFUSED'), 'get oauthapp "crm"', 'https://k:6443');
    expect(unreachable).toMatchObject({ message: 'cannot get oauthapp "crm": the apiserver at https://k:6443 is out of reach (connect ECONNREFUSED)', transient: true });
    expect(describeKubeError(failure('InternalError', 500, 'etcd'), 'x', 'https://k')).toMatchObject({ transient: true });
    expect(describeKubeError(failure('Forbidden', 403, 'no'), 'x', 'https://k')).toMatchObject({ transient: false });
  });
});
