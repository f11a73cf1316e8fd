// The operator's version: package.json's, which sits one level above both src/ and dist/ (the
// image copies it beside dist/).
import { readFileSync } from 'node:fs';

export const operatorVersion: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
