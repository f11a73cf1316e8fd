import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { oauthAppCRD } from './crd.ts';

export const crdFilePath = fileURLToPath(new URL('../../crds/oauthapp.dev_oauthapps.yaml', import.meta.url));

export function renderCRDFile(): string {
  return `# Generated from src/api/oauthapp.ts by \`npm run generate\`. Do not edit by hand.\n${stringify(oauthAppCRD(), { lineWidth: 0 })}`;
}
