import { randomBytes } from 'node:crypto';
import { kubectlOK } from './kubectl.ts';

/** A fresh namespace for one test file, so tests never see each other's objects. */
export async function createTestNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kubectlOK(['create', 'namespace', name]);
  return name;
}

export async function deleteTestNamespace(name: string): Promise<void> {
  await kubectlOK(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
}
