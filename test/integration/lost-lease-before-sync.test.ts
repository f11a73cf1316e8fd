// A replica that loses its Lease before its caches have synced must still end (issue 10,
// sequence 4): it used to wait for workers that never started, so `ended` never resolved and the
// replica stayed up, reporting healthy, never to lead again.
// The caches are kept from syncing for real: the operator runs as a ServiceAccount that may use its
// own namespace (Lease, signing key, state Secrets) but not read the app namespace it watches, so
// those lists are Forbidden. Once it leads, the Lease is handed to another holder, as a replica
// that took over would.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config.ts';
import { leasePath, microTime, type Lease } from '../../src/kube/leader-election.ts';
import { createLogger } from '../../src/log.ts';
import { signingKeySecretName } from '../../src/oauthapp/signing-key.ts';
import { loadKubeConfig, startOperator, type RunningOperator } from '../../src/operator.ts';
import { eventually } from '../support/eventually.ts';
import { adminClient, type AdminClient } from '../support/kube.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';
import { serviceAccountKubeconfig, type ServiceAccountKubeconfig } from '../support/rbac.ts';

const leaseName = 'oauthapp-operator';
let namespace: string;
let operatorNamespace: string;
let admin: AdminClient;
let account: ServiceAccountKubeconfig;
let operator: RunningOperator | undefined;
const lines: string[] = [];
const logs = () => lines.join('');

beforeAll(async () => {
  [namespace, operatorNamespace] = await Promise.all([createTestNamespace('lease-sync'), createTestNamespace('lease-sync-operator')]);
  admin = await adminClient();
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'operator', namespace: operatorNamespace },
    rules: [
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'update'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    ],
  };
  await kubectlOK(['create', 'serviceaccount', 'operator', '-n', operatorNamespace]);
  await kubectlOK(['apply', '-f', '-'], { input: JSON.stringify(role) });
  await kubectlOK(['create', 'rolebinding', 'operator', '-n', operatorNamespace, '--role=operator', `--serviceaccount=${operatorNamespace}:operator`]);
  account = await serviceAccountKubeconfig(operatorNamespace, 'operator');
});

afterAll(async () => {
  await operator?.stop();
  await account?.remove();
  await admin?.close();
  await Promise.all([deleteTestNamespace(namespace), deleteTestNamespace(operatorNamespace)]);
});

const readLease = () => admin.http.json<Lease>({ method: 'GET', path: leasePath(operatorNamespace, leaseName) });

describe('a Lease lost before the caches synced', () => {
  it('ends the replica (ended resolves "lost") although no worker ever started', async () => {
    const parsed = parseConfig({
      argv: [
        `--kubeconfig=${account.path}`,
        `--namespaces=${namespace}`,
        `--operator-namespace=${operatorNamespace}`,
        '--leader-elect',
        '--log-level=debug',
        '--metrics-addr=127.0.0.1:0',
        '--callback-addr=127.0.0.1:0',
        '--shutdown-timeout=5',
      ],
      env: {},
      podNamespace: undefined,
    });
    if (!parsed.ok) throw new Error(parsed.error);
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    });
    operator = await startOperator(parsed.config, createLogger({ level: 'debug', destination }), loadKubeConfig(account.path));
    let synced = false;
    void operator.synced.then(() => (synced = true));
    let ended: string | undefined;
    void operator.ended.then((reason) => (ended = reason));

    const held = await eventually('the operator to take the Lease', async () => {
      const lease = await readLease().catch(() => undefined);
      return lease?.spec?.holderIdentity ? lease : undefined;
    });
    // The scenario: leading, with caches that cannot sync (their lists are refused).
    await eventually('a refused list', () => (lines.some((line) => line.includes('list/watch failed') && line.includes('Forbidden')) ? true : undefined));
    expect(synced).toBe(false);
    expect(logs()).not.toContain('leading: reconciling');

    // Another replica takes the Lease (as after a long pause of this one); the next renewal sees it.
    await eventually('the Lease handed to another holder', async () => {
      const current = await readLease();
      const now = microTime(Date.now());
      await admin.http.json({
        method: 'PUT',
        path: leasePath(operatorNamespace, leaseName),
        body: { ...current, spec: { ...current.spec, holderIdentity: 'another-replica', leaseDurationSeconds: 15, acquireTime: now, renewTime: now } },
      });
      return true;
    });
    expect(held.spec?.holderIdentity).not.toBe('another-replica');

    expect(await eventually('ended to resolve', () => ended, 30_000)).toBe('lost');
    expect(logs()).toContain('lost the leader Lease');
    // Still before the caches synced: the scenario really was "lost before sync".
    expect(synced).toBe(false);

    const signingKey = (await admin.kube.getSecret(operatorNamespace, signingKeySecretName))?.data?.key;
    expect(signingKey).toBeDefined();
    await expectNoSecretValuesLeaked([signingKey ?? ''], { namespace, logs: logs() });
  }, 90_000);
});
