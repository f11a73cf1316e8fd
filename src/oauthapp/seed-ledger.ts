// Seed refresh tokens (spec.refreshTokenRef) that an earlier OAuthApp already used. The state
// Secret that remembers a used seed is keyed by the app's uid and goes with the app, so without
// this ledger an OAuthApp deleted and re-created with the same refreshTokenRef would plant the
// same, long since exchanged, token again: a replay that makes a strict provider revoke the grant.
// One Secret in the operator namespace, written only when a seeded app is deleted, read only when
// a seed is about to be planted.
import type { KubeClient } from '../kube/client.ts';
import { isAlreadyExists, isConflict } from '../kube/errors.ts';
import { decodeData, encodeData, type Secret } from '../kube/objects.ts';
import { managedByLabel, managedByValue } from './labels.ts';
import { roleLabel } from './state.ts';

export const seedLedgerSecretName = 'oauthapp-used-seeds';

/** Refresh tokens die after about 60 days unused (Pipedrive); a seed older than that is dead anyway. */
const rememberForMs = 90 * 24 * 3600_000;

type LedgerSecrets = Pick<KubeClient, 'getSecret' | 'createSecret' | 'replaceSecret'>;

export class SeedLedger {
  private readonly kube: LedgerSecrets;
  private readonly namespace: string;
  private readonly now: () => number;

  constructor(kube: LedgerSecrets, operatorNamespace: string, now: () => number) {
    this.kube = kube;
    this.namespace = operatorNamespace;
    this.now = now;
  }

  /** Whether an app other than `appUID` used this seed. */
  async usedByAnother(seedFingerprint: string, appUID: string): Promise<boolean> {
    const entry = entriesOf(await this.kube.getSecret(this.namespace, seedLedgerSecretName))[seedFingerprint];
    return entry !== undefined && entry.uid !== appUID;
  }

  /** Remembers that `appUID` used this seed (called before its state, which knew it, is deleted). */
  async remember(seedFingerprint: string, appUID: string): Promise<void> {
    for (;;) {
      const current = await this.kube.getSecret(this.namespace, seedLedgerSecretName);
      const cutoff = this.now() - rememberForMs;
      const kept = Object.entries(entriesOf(current)).filter(([, entry]) => Date.parse(entry.at) > cutoff);
      const entries = Object.fromEntries([...kept, [seedFingerprint, { uid: appUID, at: new Date(this.now()).toISOString() }]]);
      const secret = ledgerSecret(this.namespace, entries, current?.metadata.resourceVersion);
      try {
        await (current ? this.kube.replaceSecret(this.namespace, secret) : this.kube.createSecret(this.namespace, secret));
        return;
      } catch (error) {
        if (!isConflict(error) && !isAlreadyExists(error)) throw error;
      }
    }
  }
}

interface Entry {
  uid: string;
  at: string;
}

function entriesOf(secret: Secret | undefined): Record<string, Entry> {
  const entries: Record<string, Entry> = {};
  for (const [fingerprint, line] of Object.entries(decodeData(secret?.data))) {
    const [uid, at] = line.split(' ');
    if (uid && at && !Number.isNaN(Date.parse(at))) entries[fingerprint] = { uid, at };
  }
  return entries;
}

function ledgerSecret(namespace: string, entries: Record<string, Entry>, resourceVersion: string | undefined): Secret {
  return {
    metadata: {
      name: seedLedgerSecretName,
      namespace,
      ...(resourceVersion ? { resourceVersion } : {}),
      labels: { [managedByLabel]: managedByValue, [roleLabel]: 'seed-ledger' },
    },
    type: 'Opaque',
    data: encodeData(Object.fromEntries(Object.entries(entries).map(([fingerprint, entry]) => [fingerprint, `${entry.uid} ${entry.at}`]))),
  };
}
