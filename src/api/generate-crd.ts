// Writes crds/ and the Helm chart's CRD template from the zod schemas: `npm run generate`. A unit
// test fails when either is stale.
import { writeFile } from 'node:fs/promises';
import { chartCRDTemplatePath, crdFilePath, renderChartCRDTemplate, renderCRDFile } from './crd-file.ts';

for (const [path, render] of [
  [crdFilePath, renderCRDFile],
  [chartCRDTemplatePath, renderChartCRDTemplate],
] as const) {
  await writeFile(path, render());
  console.log(`wrote ${path}`);
}
