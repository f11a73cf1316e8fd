// Kubernetes objects as an install renders them (`kubectl kustomize`, `helm template`), and the
// little that tests need to pick them apart.
import { parseAllDocuments, stringify } from 'yaml';
import { kubectlOK } from './kubectl.ts';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}

/** Every object of a multi-document YAML stream (empty documents dropped). */
export function parseManifests(yaml: string): Manifest[] {
  return parseAllDocuments(yaml)
    .map((document) => document.toJS() as Manifest | null)
    .filter((object): object is Manifest => object !== null);
}

/** What `kubectl kustomize` renders, as objects. */
export async function kustomizeBuild(dir: string): Promise<Manifest[]> {
  return parseManifests(await kubectlOK(['kustomize', dir]));
}

export function findManifest<T extends Manifest>(objects: Manifest[], kind: string, name: string, namespace?: string): T {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name && object.metadata.namespace === namespace);
  if (!found) throw new Error(`no ${kind} ${namespace ? `${namespace}/` : ''}${name}`);
  return found as T;
}

export const toYAML = (objects: object[]) => objects.map((object) => stringify(object)).join('---\n');
