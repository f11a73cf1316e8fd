// Which kubeconfig the plugin reads, as kubectl picks it.
import { describe, expect, it } from '@jest/globals';
import { kubeconfigSource } from '../../../src/cli/kubeconfig-path.ts';

const files = (...present: string[]) => (path: string) => present.includes(path);

describe('kubeconfigSource', () => {
  it('takes --kubeconfig first, whatever else is set', () => {
    expect(kubeconfigSource({ flag: '/flag', env: { KUBECONFIG: '/env' }, home: '/home/u', exists: files('/env', '/home/u/.kube/config') })).toEqual({ kind: 'file', path: '/flag' });
  });

  it('then the first existing file of $KUBECONFIG', () => {
    expect(kubeconfigSource({ flag: undefined, env: { KUBECONFIG: '/missing::/b:/c' }, home: '/home/u', exists: files('/b', '/c') })).toEqual({ kind: 'file', path: '/b' });
    expect(kubeconfigSource({ flag: undefined, env: { KUBECONFIG: '/missing' }, home: '/home/u', exists: files('/home/u/.kube/config') })).toEqual({
      kind: 'none',
      problem: 'no file named in $KUBECONFIG exists (/missing)',
    });
  });

  it('then ~/.kube/config, then the pod\'s service account', () => {
    expect(kubeconfigSource({ flag: undefined, env: {}, home: '/home/u', exists: files('/home/u/.kube/config') })).toEqual({ kind: 'file', path: '/home/u/.kube/config' });
    expect(kubeconfigSource({ flag: undefined, env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, home: '/home/u', exists: files() })).toEqual({ kind: 'in-cluster' });
    expect(kubeconfigSource({ flag: undefined, env: {}, home: '/home/u', exists: files() })).toEqual({
      kind: 'none',
      problem: 'no kubeconfig: pass --kubeconfig, set $KUBECONFIG, or create /home/u/.kube/config',
    });
  });
});
