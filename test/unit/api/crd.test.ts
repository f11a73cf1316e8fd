import { describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { oauthAppCRD, oauthInstallationCRD } from '../../../src/api/crd.ts';
import { generatedCRDs, renderChartCRDTemplate, renderCRDFile } from '../../../src/api/crd-file.ts';

describe.each(generatedCRDs.map((generated) => [generated.crd().spec.names.kind, generated] as const))('the %s CRD', (_kind, { crd, file, chartTemplate }) => {
  it('in crds/ is what `npm run generate` makes from the zod schemas (run it after changing src/api)', async () => {
    expect(await readFile(file, 'utf8')).toBe(renderCRDFile(crd()));
  });

  it("in the Helm chart's templates is what `npm run generate` makes from the zod schemas", async () => {
    expect(await readFile(chartTemplate, 'utf8')).toBe(renderChartCRDTemplate(crd()));
  });
});

/** The dotted path of every field in a schema (what `kubectl explain --recursive` lists), with its schema. */
function fields(schema: Record<string, unknown>, path: string): Array<[string, Record<string, unknown>]> {
  const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  const items = schema.items as Record<string, unknown> | undefined;
  const nested = Object.entries(properties).flatMap(([name, property]) => [[`${path}.${name}`, property] as [string, Record<string, unknown>], ...fields(property, `${path}.${name}`)]);
  return items ? [...nested, ...fields(items, `${path}[]`)] : nested;
}

describe.each([
  ['oauthapp', oauthAppCRD],
  ['oauthinstallation', oauthInstallationCRD],
] as const)('the %s CRD schema', (singular, crd) => {
  it(`describes every field, so \`kubectl explain ${singular} --recursive\` has something to say about each`, () => {
    const [served] = crd().spec.versions;
    const schema = served?.schema.openAPIV3Schema as unknown as Record<string, unknown>;
    // metadata is ObjectMeta: the apiserver publishes its own descriptions for it.
    const undescribed = fields(schema, singular).filter(([path, property]) => path !== `${singular}.metadata` && !property.description).map(([path]) => path);
    expect(undescribed).toEqual([]);
  });
});
