// One real control plane per test run: built (or taken from the cache), started on loopback,
// with the OAuthApp CRD installed, and helm and promtool. Tests find them through the environment
// variables set here.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlPlaneBinaries, helmBinary, promtoolBinary } from '../../src/localcluster/binaries.ts';
import { startControlPlane } from '../../src/localcluster/controlplane.ts';
import { installCRDs } from './crds.ts';
import { environmentKeys, setRunningControlPlane } from './environment.ts';

export default async function globalSetup(): Promise<void> {
  // helm and promtool are built here too (the chart and alert-rule tests use them), so that a fresh
  // machine needs no manual step.
  const [binDir, helm, promtool] = await Promise.all([controlPlaneBinaries(), helmBinary(), promtoolBinary()]);
  const controlPlane = await startControlPlane({ binDir, workDir: await mkdtemp(join(tmpdir(), 'oauthapp-controlplane-')) });
  setRunningControlPlane(controlPlane);
  process.env[environmentKeys.kubeconfig] = controlPlane.adminKubeconfigPath;
  process.env[environmentKeys.binDir] = binDir;
  process.env[environmentKeys.helm] = helm;
  process.env[environmentKeys.promtool] = promtool;
  await installCRDs(controlPlane.adminKubeconfigPath, binDir);
  process.stdout.write(`\ncontrol plane: kube-apiserver ${controlPlane.version} at ${controlPlane.serverURL}, binaries in ${binDir}\n`);
}
