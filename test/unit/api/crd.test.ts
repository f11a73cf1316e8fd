import { describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
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
