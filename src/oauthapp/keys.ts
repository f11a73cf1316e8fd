// Work-queue keys. An OAuthApp is "namespace/name"; an OAuthInstallation "namespace/oinst:name"
// (no object name holds a ':'). So one queue, one provider limiter, one state store and one
// refresher serve both kinds, and the queue's fairness between namespaces covers both.
import { objectKey, splitKey } from '../kube/objects.ts';

export const installationMarker = 'oinst:';

export type KeyKind = 'app' | 'installation';

/** The identity name (state.ts AppIdentity) of an installation. */
export const installationIdentityName = (name: string) => `${installationMarker}${name}`;

export const installationKey = (namespace: string, name: string) => objectKey(namespace, installationIdentityName(name));

export function parseKey(key: string): { namespace: string; name: string; kind: KeyKind } {
  const { namespace, name } = splitKey(key);
  return name.startsWith(installationMarker) ? { namespace, name: name.slice(installationMarker.length), kind: 'installation' } : { namespace, name, kind: 'app' };
}
