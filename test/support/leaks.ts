// Every integration test doubles as a leak check: no secret value in logs, Events or status.
import { expect } from '@jest/globals';
import { kubectlOK } from './kubectl.ts';

export interface LeakSources {
  namespace: string;
  /** Operator log output. */
  logs: string;
  /** The cluster to read Events and OAuthApps from; default the shared test control plane. */
  kubeconfig?: string;
}

/** Fails naming where a value surfaced; `values` are the client secrets and tokens in play. */
export async function expectNoSecretValuesLeaked(values: readonly string[], { namespace, logs, kubeconfig }: LeakSources): Promise<void> {
  const options = kubeconfig ? { kubeconfig } : {};
  const [events, apps] = await Promise.all([
    kubectlOK(['get', 'events.events.k8s.io', '-n', namespace, '-o', 'json'], options),
    kubectlOK(['get', 'oauthapps', '-n', namespace, '-o', 'json'], options),
  ]);
  const places = { logs, events, 'OAuthApp objects (status)': apps };
  const canaries = values.filter((value) => value.length >= 8);
  expect(canaries.length).toBeGreaterThan(0);
  expect(logs).toMatch(/\S/);
  for (const [place, text] of Object.entries(places)) {
    const leaked = canaries.filter((value) => text.includes(value));
    expect({ place, leaked: leaked.length }).toEqual({ place, leaked: 0 });
  }
}
