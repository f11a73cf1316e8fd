// Writes crds/ and the Helm chart's CRD template from the zod schemas: `npm run generate`. A unit
// test fails when either is stale.
import { writeFile } from 'node:fs/promises';
import { generatedCRDs, renderChartCRDTemplate, renderCRDFile } from './crd-file.ts';

for (const { crd, file, chartTemplate } of generatedCRDs) {
  for (const [path, render] of [
    [file, renderCRDFile],
    [chartTemplate, renderChartCRDTemplate],
  ] as const) {
    await writeFile(path, render(crd()));
    console.log(`wrote ${path}`);
  }
}
