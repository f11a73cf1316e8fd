import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { oauthAppCRD, oauthInstallationCRD } from './crd.ts';

type CRD = ReturnType<typeof oauthAppCRD>;

/** Each CRD, with where `npm run generate` writes it: crds/ and the Helm chart's templates. */
export const generatedCRDs: ReadonlyArray<{ crd: () => CRD; file: string; chartTemplate: string }> = [
  {
    crd: oauthAppCRD,
    file: fileURLToPath(new URL('../../crds/oauthapp.dev_oauthapps.yaml', import.meta.url)),
    chartTemplate: fileURLToPath(new URL('../../deploy/helm/oauthapp-operator/templates/crd-oauthapps.yaml', import.meta.url)),
  },
  {
    crd: oauthInstallationCRD,
    file: fileURLToPath(new URL('../../crds/oauthapp.dev_oauthinstallations.yaml', import.meta.url)),
    chartTemplate: fileURLToPath(new URL('../../deploy/helm/oauthapp-operator/templates/crd-oauthinstallations.yaml', import.meta.url)),
  },
];

const render = (object: object) => stringify(object, { lineWidth: 0 });

export function renderCRDFile(crd: CRD): string {
  return `# Generated from src/api/ by \`npm run generate\`. Do not edit by hand.\n${render(crd)}`;
}

/**
 * The same CRD as a Helm template (cert-manager's chart does the same): installed only with
 * crds.install, kept by `helm uninstall` with crds.keep, labelled as the release's.
 */
export function renderChartCRDTemplate(crd: CRD): string {
  const { apiVersion, kind, metadata, spec } = crd;
  return [
    '{{- /* Generated from src/api/ by `npm run generate`. Do not edit by hand. */ -}}',
    '{{- if .Values.crds.install }}',
    render({ apiVersion, kind }).trimEnd(),
    'metadata:',
    `  name: ${metadata.name}`,
    '  {{- if .Values.crds.keep }}',
    '  annotations:',
    '    helm.sh/resource-policy: keep',
    '  {{- end }}',
    '  labels:',
    '    {{- include "oauthapp-operator.labels" . | nindent 4 }}',
    render({ spec }).trimEnd(),
    '{{- end }}',
    '',
  ].join('\n');
}
