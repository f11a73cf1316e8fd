// State Secrets whose OAuthApp (or OAuthInstallation) is gone without its finalizer having run (the finalizer removed by
// hand, a namespace force-deleted, an app deleted while no operator ran) would keep a live refresh
// token forever. The leader looks now and then and deletes them; the used seed is remembered first,
// as the finalizer does.
import type { KubeClient } from '../kube/client.ts';
import type { ObjectCache } from '../kube/informer.ts';
import type { KubeObject, Secret } from '../kube/objects.ts';
import { parseKey, type KeyKind } from './keys.ts';
import type { Logger } from '../log.ts';
import type { SeedLedger } from './seed-ledger.ts';
import { appAnnotation, appUIDLabel, decodeState } from './state.ts';

export interface OrphanSweepDependencies {
  states: ObjectCache<Secret>;
  apps: ObjectCache<KubeObject>;
  installations: ObjectCache<KubeObject>;
  kube: Pick<KubeClient, 'getOAuthApp' | 'getOAuthInstallation' | 'deleteSecret'>;
  seeds: Pick<SeedLedger, 'remember'>;
  /** Whether this install watches the namespace (--namespaces): others' apps are not ours to judge. */
  watches: (namespace: string) => boolean;
  logger: Logger;
}

/** The app or installation a state Secret belongs to, from its label and annotation. */
function ownerOf(secret: Secret): { namespace: string; name: string; kind: KeyKind; uid: string } | undefined {
  const key = secret.metadata.annotations?.[appAnnotation];
  const uid = secret.metadata.labels?.[appUIDLabel];
  if (!key?.includes('/') || !uid) return undefined;
  return { ...parseKey(key), uid };
}

export class OrphanSweep {
  private readonly deps: OrphanSweepDependencies;
  /**
   * State Secrets whose app was missing at the last sweep. One is deleted only when its app is
   * missing twice in a row, so a Secret written for an app the caches have not seen yet survives.
   */
  private suspects = new Set<string>();

  constructor(dependencies: OrphanSweepDependencies) {
    this.deps = dependencies;
  }

  /** One sweep; returns the names of the state Secrets it deleted. */
  async sweep(): Promise<string[]> {
    const { states, kube, seeds, watches, logger } = this.deps;
    const missing = new Set<string>();
    const deleted: string[] = [];
    for (const secret of states.list()) {
      const owner = ownerOf(secret);
      if (!owner || !watches(owner.namespace)) continue;
      const installation = owner.kind === 'installation';
      const cache = installation ? this.deps.installations : this.deps.apps;
      if (cache.get(owner.namespace, owner.name)?.metadata.uid === owner.uid) continue;
      // The cache may lag behind a new app: only a live read says it is gone.
      const live = await (installation ? kube.getOAuthInstallation(owner.namespace, owner.name) : kube.getOAuthApp(owner.namespace, owner.name));
      if (live?.metadata.uid === owner.uid) continue;
      const name = secret.metadata.name;
      missing.add(name);
      if (!this.suspects.has(name)) continue;
      const seed = seedOf(secret);
      if (seed) await seeds.remember(seed, owner.uid);
      await kube.deleteSecret(secret.metadata.namespace ?? '', name, secret.metadata.uid ? { uid: secret.metadata.uid } : undefined);
      states.observeDelete(secret.metadata.namespace, name);
      deleted.push(name);
      logger.info({ [installation ? 'installation' : 'app']: `${owner.namespace}/${owner.name}`, uid: owner.uid }, `deleted the state of an ${installation ? 'OAuthInstallation' : 'OAuthApp'} that no longer exists`);
    }
    this.suspects = new Set([...missing].filter((name) => !deleted.includes(name)));
    return deleted;
  }
}

function seedOf(secret: Secret): string | undefined {
  try {
    return decodeState(secret).record.seedFingerprint;
  } catch {
    return undefined;
  }
}
