// Builds the OAuthApp and OAuthInstallation CustomResourceDefinitions from their zod schemas, so the
// apiserver's validation and the controller's parsing cannot drift apart.
import { z } from 'zod';
import { group, kind, oauthAppSpec, oauthAppStatus, plural, version } from './oauthapp.ts';
import { installationKind, installationPlural, oauthInstallationSpec, oauthInstallationStatus } from './oauthinstallation.ts';

type JSONSchema = { [key: string]: unknown };

/**
 * zod emits JSON Schema; a CRD wants a structural OpenAPI v3 schema, which forbids
 * `additionalProperties: false` (unknown fields are pruned or refused by the apiserver instead).
 */
function toStructural(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toStructural);
  if (schema === null || typeof schema !== 'object') return schema;
  const result: JSONSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$schema' || (key === 'additionalProperties' && value === false)) continue;
    // x-kubernetes-* extensions hold data (CEL rules, list keys), not nested schemas.
    result[key] = key.startsWith('x-kubernetes-') ? value : toStructural(value);
  }
  return result;
}

const openAPI = (schema: z.ZodType) =>
  toStructural(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' }));

const conditionColumn = (type: string, description: string) => ({
  name: type,
  type: 'string',
  jsonPath: `.status.conditions[?(@.type=="${type}")].status`,
  description,
});

const readyField = (field: 'reason' | 'message') => `.status.conditions[?(@.type=="Ready")].${field}`;

interface CRDInput {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  columns: Array<Record<string, unknown>>;
}

function customResourceDefinition({ kind, plural, singular, shortNames, description, spec, status, columns }: CRDInput) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${group}`,
      labels: { 'app.kubernetes.io/name': 'oauthapp-operator' },
    },
    spec: {
      group,
      names: { kind, listKind: `${kind}List`, plural, singular, shortNames, categories: ['oauth'] },
      scope: 'Namespaced',
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'Versioned schema of this representation of an object.' },
                kind: { type: 'string', description: 'The REST resource this object represents.' },
                metadata: { type: 'object' },
                spec: openAPI(spec),
                status: openAPI(status),
              },
            },
          },
        },
      ],
    },
  };
}

const readyColumn = conditionColumn('Ready', 'Whether the target Secret holds a valid access token and no person needs to act');
// A string, not a date: kubectl prints future dates as <invalid>.
const expiresColumn = { name: 'Expires', type: 'string', jsonPath: '.status.accessTokenExpiresAt', description: 'When the current access token expires (UTC)' };
const wideColumns = [
  { name: 'Reason', type: 'string', priority: 1, jsonPath: readyField('reason'), description: "Ready's reason" },
  { name: 'Message', type: 'string', priority: 1, jsonPath: readyField('message'), description: "Ready's message" },
];
const ageColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export function oauthAppCRD() {
  return customResourceDefinition({
    kind,
    plural,
    singular: 'oauthapp',
    shortNames: ['oapp'],
    description: 'OAuthApp keeps an OAuth 2.0 app\'s client_id, client_secret and a fresh access_token in a Secret that workloads mount.',
    spec: oauthAppSpec,
    status: oauthAppStatus,
    columns: [
      readyColumn,
      conditionColumn('Authorized', 'Whether the operator holds a usable refresh token'),
      { name: 'Secret', type: 'string', jsonPath: '.status.targetSecretName', description: 'The Secret workloads mount' },
      expiresColumn,
      ...wideColumns,
      ageColumn,
    ],
  });
}

export function oauthInstallationCRD() {
  return customResourceDefinition({
    kind: installationKind,
    plural: installationPlural,
    singular: 'oauthinstallation',
    shortNames: ['oinst'],
    description:
      'OAuthInstallation is one company\'s install of a public OAuthApp (installations: multiple): its grant, refresh schedule and Secret. The operator creates it when the company installs; deleting it revokes the grant.',
    spec: oauthInstallationSpec,
    status: oauthInstallationStatus,
    columns: [
      { name: 'Company', type: 'string', jsonPath: '.spec.companyID', description: 'The installing company' },
      readyColumn,
      { name: 'Secret', type: 'string', priority: 1, jsonPath: '.status.targetSecretName', description: 'The Secret workloads mount' },
      expiresColumn,
      ...wideColumns,
      ageColumn,
    ],
  });
}
