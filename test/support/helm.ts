// helm, built from its Go module (hack/helm/build.sh, run by globalSetup), run as a user would.
import { fileURLToPath } from 'node:url';
import { requiredEnvironment } from './environment.ts';
import { runClient, type KubectlOptions, type KubectlResult } from './kubectl.ts';
import { parseManifests, type Manifest } from './manifests.ts';

export const chartDir = fileURLToPath(new URL('../../deploy/helm/oauthapp-operator/', import.meta.url));

export function helm(args: string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  return runClient(requiredEnvironment('helm'), args, options);
}

/** helm that must succeed; its output on success. */
export async function helmOK(args: string[], options: KubectlOptions = {}): Promise<string> {
  const result = await helm(args, options);
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

export interface Release {
  name: string;
  namespace: string;
  /** As a values file would give them. */
  values?: object;
}

/** `helm template` of the chart: the YAML it renders. */
export function helmTemplateYAML({ name, namespace, values = {} }: Release): Promise<string> {
  return helmOK(['template', name, chartDir, '--namespace', namespace, '--values', '-'], { input: JSON.stringify(values) });
}

/** `helm template` of the chart, as objects. */
export async function helmTemplate(release: Release): Promise<Manifest[]> {
  return parseManifests(await helmTemplateYAML(release));
}
