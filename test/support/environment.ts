// How the control plane started in global-setup reaches the test files (other processes and
// module registries): environment variables for the paths, a global for teardown.
import type { RunningControlPlane } from '../../src/localcluster/controlplane.ts';

export const environmentKeys = {
  kubeconfig: 'OAUTHAPP_TEST_KUBECONFIG',
  binDir: 'OAUTHAPP_TEST_BIN_DIR',
  helm: 'OAUTHAPP_TEST_HELM',
  promtool: 'OAUTHAPP_TEST_PROMTOOL',
} as const;

const globalKey = Symbol.for('oauthapp-operator.test.controlPlane');
type WithControlPlane = { [globalKey]?: RunningControlPlane };

export function setRunningControlPlane(controlPlane: RunningControlPlane): void {
  (globalThis as WithControlPlane)[globalKey] = controlPlane;
}

export function runningControlPlane(): RunningControlPlane | undefined {
  return (globalThis as WithControlPlane)[globalKey];
}

export function requiredEnvironment(key: keyof typeof environmentKeys): string {
  const value = process.env[environmentKeys[key]];
  if (!value) throw new Error(`${environmentKeys[key]} is not set: run integration tests through jest's integration project`);
  return value;
}
