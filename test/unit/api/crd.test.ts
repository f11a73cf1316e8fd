import { describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { oauthAppCRD } from '../../../src/api/crd.ts';
import { chartCRDTemplatePath, crdFilePath, renderChartCRDTemplate, renderCRDFile } from '../../../src/api/crd-file.ts';

describe('crds/', () => {
  it('is what `npm run generate` makes from the zod schemas (run it after changing src/api)', async () => {
    expect(await readFile(crdFilePath, 'utf8')).toBe(renderCRDFile());
  });
});

describe("the Helm chart's CRD template", () => {
  it('is what `npm run generate` makes from the zod schemas (run it after changing src/api)', async () => {
    expect(await readFile(chartCRDTemplatePath, 'utf8')).toBe(renderChartCRDTemplate());
  });
});

/** The dotted path of every field in a schema (what `kubectl explain --recursive` lists), with its schema. */
function fields(schema: Record<string, unknown>, path: string): Array<[string, Record<string, unknown>]> {
  const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  const items = schema.items as Record<string, unknown> | undefined;
  const nested = Object.entries(properties).flatMap(([name, property]) => [[`${path}.${name}`, property] as [string, Record<string, unknown>], ...fields(property, `${path}.${name}`)]);
  return items ? [...nested, ...fields(items, `${path}[]`)] : nested;
}

describe('the OAuthApp CRD schema', () => {
  it('describes every field, so `kubectl explain oauthapp --recursive` has something to say about each', () => {
    const [served] = oauthAppCRD().spec.versions;
    const schema = served?.schema.openAPIV3Schema as unknown as Record<string, unknown>;
    // metadata is ObjectMeta: the apiserver publishes its own descriptions for it.
    const undescribed = fields(schema, 'oauthapp').filter(([path, property]) => path !== 'oauthapp.metadata' && !property.description).map(([path]) => path);
    expect(undescribed).toEqual([]);
  });
});
