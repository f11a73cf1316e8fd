// Writes crds/ from the zod schemas: `npm run generate`. A unit test fails when crds/ is stale.
import { writeFile } from 'node:fs/promises';
import { renderCRDFile, crdFilePath } from './crd-file.ts';

await writeFile(crdFilePath, renderCRDFile());
console.log(`wrote ${crdFilePath}`);
