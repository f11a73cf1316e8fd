// The docs a user follows stay true: every Kubernetes object in their ```yaml blocks is accepted
// by the real apiserver (server-side dry run, after the CRD is installed), Helm values blocks use
// only values the chart has, every operator --flag they mention exists in src/config.ts, and every
// relative link (and its #anchor) resolves.
//
// Blocks are told apart by their first line:
//   # helm values     a values file for deploy/helm/oauthapp-operator: each key must exist in its
//                     values.yaml, `helm template` must render it (values.schema.json included),
//                     and the apiserver must accept what it renders from the values (dry run)
//   # kustomization   a kustomization.yaml beside a copy of deploy/ (as ../deploy): `kubectl kustomize`
//                     must build it, with the files it names taken from the page's blocks that a
//                     line such as "`callback-ingress.yaml`:" introduces
//   anything else     Kubernetes objects (several documents allowed): applied with --dry-run=server in
//                     a fresh namespace (their own metadata.namespace is dropped); kinds this apiserver
//                     does not serve (ExternalSecret, Certificate, ClusterIssuer, ServiceMonitor…)
//                     are parsed and must have apiVersion, kind and metadata.name.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { flags } from '../../src/config.ts';
import { helm } from '../support/helm.ts';
import { kubectl, kubectlOK } from '../support/kubectl.ts';
import { parseManifests } from '../support/manifests.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The pages this test keeps true. */
const pages = [
  'docs/README.md',
  'docs/quickstart-pipedrive.md',
  'docs/public-apps.md',
  'docs/callback-ingress-tls.md',
  'docs/external-secrets.md',
  'docs/operations.md',
  'docs/runbooks/rotate-client-secret.md',
  'docs/runbooks/reauthorize.md',
];

/** Flags of other programs the pages use (kubectl, helm, curl, vault); anything else must be an operator flag. */
const otherProgramsFlags = new Set([
  'all', // kubectl
  'all-namespaces',
  'dry-run',
  'field-selector',
  'from-literal',
  'overwrite',
  'prefix',
  'previous',
  'tail',
  'type',
  'validate',
  'install', // helm upgrade --install
  'reuse-values',
  'set',
  'create-namespace',
  'max-old-space-size', // NODE_OPTIONS
]);

/** Operator flags: src/config.ts's table, the negated boolean, and --help/--version (src/usage.ts). */
const operatorFlags = new Set([...Object.keys(flags), 'no-leader-elect', 'help', 'version']);

interface Block {
  page: string;
  /** 1-based line of the opening fence. */
  line: number;
  text: string;
  /** The file the block is, when the prose line before it says so: "`callback-ingress.yaml`:". */
  fileName?: string;
}

type Manifest = { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; spec?: Record<string, unknown> };

const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** The ```yaml blocks of a page. */
export function yamlBlocks(page: string, markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const open = /^(\s*)```yaml\s*$/.exec(lines[index] ?? '');
    if (!open) continue;
    const indent = open[1]?.length ?? 0;
    const body: string[] = [];
    let end = index + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end] ?? '')) body.push((lines[end] ?? '').slice(indent)), end++;
    let before = index - 1;
    while (before >= 0 && (lines[before] ?? '').trim() === '') before--;
    const named = /^`([\w.-]+\.yaml)`:$/.exec((lines[before] ?? '').trim());
    blocks.push({ page, line: index + 1, text: body.join('\n'), ...(named?.[1] ? { fileName: named[1] } : {}) });
    index = end;
  }
  return blocks;
}

/** The page without its fenced code blocks (headings and links are read from prose only). */
function prose(markdown: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (!fenced) out.push(line);
  }
  return out;
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1] ?? '');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

const kindOf = (block: Block) => {
  const first = block.text.split('\n').find((line) => line.trim() !== '')?.trim() ?? '';
  if (/^#\s*helm values\b/i.test(first)) return 'helm-values' as const;
  if (/^#\s*kustomization\b/i.test(first)) return 'kustomization' as const;
  return 'objects' as const;
};

const where = (block: Block) => `${block.page}:${block.line}`;

const allBlocks = pages.flatMap((page) => yamlBlocks(page, read(page)));

function manifestsOf(block: Block): Manifest[] {
  const documents = parseAllDocuments(block.text);
  const manifests: Manifest[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) throw new Error(`${where(block)}: not YAML: ${document.errors[0]?.message}`);
    const value = document.toJS() as unknown;
    if (value === null || value === undefined) continue;
    manifests.push(value as Manifest);
  }
  return manifests;
}

function expectIdentified(manifest: Manifest, block: Block): void {
  const label = `${where(block)}: ${JSON.stringify({ apiVersion: manifest.apiVersion, kind: manifest.kind, name: manifest.metadata?.name })}`;
  expect([label, typeof manifest.apiVersion === 'string' && /^([a-z0-9.-]+\/)?v\d+\w*$/.test(manifest.apiVersion)]).toEqual([label, true]);
  expect([label, typeof manifest.kind === 'string' && /^[A-Z]\w*$/.test(manifest.kind)]).toEqual([label, true]);
  expect([label, typeof manifest.metadata?.name === 'string' && manifest.metadata.name !== '']).toEqual([label, true]);
}

let namespace = '';
let servedVersions = new Set<string>();

/** Applies one object with a server-side dry run in the test namespace; kubectl's stderr on refusal. */
async function dryRun(manifest: Manifest): Promise<{ ok: boolean; message: string }> {
  const object = structuredClone(manifest);
  if (object.metadata) delete object.metadata.namespace;
  const result = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-n', namespace, '-f', '-'], { input: JSON.stringify(object) });
  return { ok: result.code === 0, message: `${result.stdout}${result.stderr}`.trim() };
}

beforeAll(async () => {
  namespace = await createTestNamespace('docs');
  servedVersions = new Set((await kubectlOK(['api-versions'])).split('\n').map((line) => line.trim()).filter(Boolean));
  expect(servedVersions.has('oauthapp.dev/v1alpha1')).toBe(true);
});

afterAll(async () => {
  if (namespace) await deleteTestNamespace(namespace);
});

describe('the docs pages', () => {
  it('exist and have yaml blocks to check', () => {
    for (const page of pages) expect([page, existsSync(join(root, page))]).toEqual([page, true]);
    expect(allBlocks.length).toBeGreaterThan(10);
    expect(allBlocks.some((block) => kindOf(block) === 'helm-values')).toBe(true);
  });

  it('hold Kubernetes objects the apiserver accepts (server-side dry run), or, for kinds it does not serve, well-formed ones', async () => {
    const refused: string[] = [];
    let applied = 0;
    for (const block of allBlocks.filter((candidate) => kindOf(candidate) === 'objects')) {
      const manifests = manifestsOf(block);
      expect([where(block), manifests.length > 0]).toEqual([where(block), true]);
      for (const manifest of manifests) {
        expectIdentified(manifest, block);
        if (!servedVersions.has(String(manifest.apiVersion))) continue;
        const result = await dryRun(manifest);
        applied++;
        if (!result.ok) refused.push(`${where(block)} ${String(manifest.kind)} ${String(manifest.metadata?.name)}: ${result.message}`);
      }
    }
    expect(refused).toEqual([]);
    // OAuthApps, Secrets, Deployments, an Ingress: most objects are checked by the apiserver itself.
    expect(applied).toBeGreaterThanOrEqual(7);
  });

  it('name, in each ExternalSecret, the Secret and key of an OAuthApp clientSecretRef on the same page', () => {
    for (const page of pages) {
      const manifests = yamlBlocks(page, read(page)).filter((block) => kindOf(block) === 'objects').flatMap(manifestsOf);
      const refs = manifests
        .filter((manifest) => manifest.kind === 'OAuthApp')
        .map((manifest) => manifest.spec?.clientSecretRef as { name?: string; key?: string } | undefined);
      for (const external of manifests.filter((manifest) => manifest.kind === 'ExternalSecret')) {
        const spec = external.spec as { target?: { name?: string }; data?: Array<{ secretKey?: string }> };
        const written = (spec.data ?? []).map((entry) => ({ name: spec.target?.name, key: entry.secretKey }));
        const matched = written.some((target) => refs.some((ref) => ref?.name === target.name && ref?.key === target.key));
        expect([page, matched]).toEqual([page, true]);
      }
    }
  });

  it('use only values the Helm chart has', () => {
    const defaults = parse(read('deploy/helm/oauthapp-operator/values.yaml')) as Record<string, unknown>;
    const unknown: string[] = [];
    const isMap = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
    // A key is checked where the chart's default is a map with keys; an empty map ({}) is free-form (labels, annotations).
    const check = (given: unknown, known: unknown, path: string, block: Block) => {
      if (!isMap(given) || !isMap(known) || Object.keys(known).length === 0) return;
      for (const [key, value] of Object.entries(given)) {
        if (!(key in known)) unknown.push(`${where(block)}: ${path}${key}`);
        else check(value, known[key], `${path}${key}.`, block);
      }
    };
    const blocks = allBlocks.filter((block) => kindOf(block) === 'helm-values');
    for (const block of blocks) {
      const values = parse(block.text) as unknown;
      expect([where(block), isMap(values)]).toEqual([where(block), true]);
      check(values, defaults, '', block);
    }
    expect(unknown).toEqual([]);
  });

  it('give Helm values the chart renders, into objects the apiserver accepts', async () => {
    const refused: string[] = [];
    for (const block of allBlocks.filter((candidate) => kindOf(candidate) === 'helm-values')) {
      const values = { ...(parse(block.text) as Record<string, unknown>), crds: { install: false } };
      const rendered = await helm(['template', 'oauthapp-operator', join(root, 'deploy/helm/oauthapp-operator'), '--namespace', 'oauthapp-system', '--values', '-'], { input: JSON.stringify(values) });
      expect([where(block), rendered.code, rendered.stderr]).toEqual([where(block), 0, '']);
      // Cluster-scoped RBAC is the chart's own business (helm.test.ts); what the values add is namespaced.
      for (const object of parseManifests(rendered.stdout).filter((manifest) => !manifest.kind.startsWith('Cluster'))) {
        if (!servedVersions.has(object.apiVersion)) continue;
        const result = await dryRun(object);
        if (!result.ok) refused.push(`${where(block)} ${object.kind} ${object.metadata.name}: ${result.message}`);
      }
    }
    expect(refused).toEqual([]);
  });

  it('show kustomizations that build (kubectl kustomize) beside deploy/', async () => {
    for (const block of allBlocks.filter((candidate) => kindOf(candidate) === 'kustomization')) {
      const kustomization = parse(block.text) as Manifest & { resources?: unknown };
      expect([where(block), String(kustomization.apiVersion).startsWith('kustomize.config.k8s.io/'), kustomization.kind]).toEqual([where(block), true, 'Kustomization']);
      expect([where(block), Array.isArray(kustomization.resources)]).toEqual([where(block), true]);
      const scratch = mkdtempSync(join(tmpdir(), 'docs-kustomize-'));
      try {
        symlinkSync(join(root, 'deploy'), join(scratch, 'deploy'));
        const dir = join(scratch, 'my-install');
        mkdirSync(dir);
        writeFileSync(join(dir, 'kustomization.yaml'), block.text);
        for (const resource of (kustomization.resources as unknown[]).map(String).filter((name) => name.endsWith('.yaml'))) {
          const file = allBlocks.find((candidate) => candidate.page === block.page && candidate.fileName === resource);
          expect([where(block), resource, file !== undefined]).toEqual([where(block), resource, true]);
          writeFileSync(join(dir, resource), file?.text ?? '');
        }
        const built = await kubectl(['kustomize', dir]);
        expect([where(block), built.code, built.stderr]).toEqual([where(block), 0, '']);
        const objects = parseManifests(built.stdout);
        // The patches took: each added argument is on the Deployment it targets.
        for (const added of block.text.matchAll(/value:\s*(--[a-z-]+=\S+)/g)) {
          const args = objects.filter((object) => object.kind === 'Deployment').flatMap((object) => stringify(object).includes(added[1] ?? '') ? [added[1]] : []);
          expect([where(block), args]).toEqual([where(block), [added[1]]]);
        }
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    }
  });

  it('mention only operator flags that src/config.ts defines', () => {
    const unknown: string[] = [];
    for (const page of pages) {
      for (const match of read(page).matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)) {
        const flag = match[1] ?? '';
        if (!operatorFlags.has(flag) && !otherProgramsFlags.has(flag)) unknown.push(`${page}: --${flag}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('link only to files (and headings) that exist', () => {
    const broken: string[] = [];
    for (const page of pages) {
      const markdown = read(page);
      for (const line of prose(markdown)) {
        for (const match of line.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
          const href = match[1] ?? '';
          if (/^[a-z][a-z0-9+.-]*:/i.test(href)) continue;
          const [path = '', anchor] = href.split('#');
          const target = path === '' ? join(root, page) : resolve(dirname(join(root, page)), path);
          const shown = `${page}: ${href}`;
          if (!target.startsWith(root) || !existsSync(target)) {
            broken.push(`${shown} (no file ${relative(root, target)})`);
            continue;
          }
          if (anchor !== undefined && target.endsWith('.md') && !anchors(readFileSync(target, 'utf8')).has(anchor)) broken.push(`${shown} (no heading #${anchor})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('are checked strictly enough to refuse an invalid OAuthApp', async () => {
    // The same path as the pages' objects: a misspelt field and a CEL rule are refused.
    const base = manifestsOf(allBlocks.find((block) => block.text.includes('kind: OAuthApp')) as Block).find((manifest) => manifest.kind === 'OAuthApp') as Manifest;
    const misspelt = structuredClone(base);
    const spec = misspelt.spec as Record<string, unknown>;
    spec.clientID = spec.clientId;
    delete spec.clientId;
    expect((await dryRun(misspelt)).ok).toBe(false);
    const custom = structuredClone(base);
    (custom.spec as Record<string, unknown>).provider = 'custom';
    const refusal = await dryRun(custom);
    expect(refusal.ok).toBe(false);
    expect(refusal.message).toContain('tokenURL is required when provider is custom');
    expect((await dryRun(base)).ok).toBe(true);
  });
});
