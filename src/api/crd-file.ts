import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { oauthAppCRD } from './crd.ts';

export const crdFilePath = fileURLToPath(new URL('../../crds/oauthapp.dev_oauthapps.yaml', import.meta.url));
export const chartCRDTemplatePath = fileURLToPath(new URL('../../deploy/helm/oauthapp-operator/templates/crd-oauthapps.yaml', import.meta.url));

const render = (object: object) => stringify(object, { lineWidth: 0 });

export function renderCRDFile(): string {
  return `# Generated from src/api/oauthapp.ts by \`npm run generate\`. Do not edit by hand.\n${render(oauthAppCRD())}`;
}

/**
 * The same CRD as a Helm template (cert-manager's chart does the same): installed only with
 * crds.install, kept by `helm uninstall` with crds.keep, labelled as the release's.
 */
export function renderChartCRDTemplate(): string {
  const { apiVersion, kind, metadata, spec } = oauthAppCRD();
  return [
    '{{- /* Generated from src/api/oauthapp.ts by `npm run generate`. Do not edit by hand. */ -}}',
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
