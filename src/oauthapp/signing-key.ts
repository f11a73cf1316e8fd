// The key that signs OAuth `state` values: one per installation, in a Secret in the operator's
// namespace, made by whichever replica first needs it and shared by all of them.
//
// Rotation (docs/runbooks/rotate-state-signing-key.md): ops set the annotation oauthapp.dev/rotate
// on that Secret to a new value. Every replica re-reads the Secret every 10 s, at the same instants
// of the wall clock, so that they all see a change together; one that sees a value not acted on
// yet rotates with an update guarded by the resourceVersion it read, so exactly one replica wins
// and the others, after a conflict, read its result. The rotation moves `key` to `previous-key`,
// puts 32 fresh bytes in `key`, and records the value acted on and the time in annotations. States
// sealed with the previous key are accepted for one state lifetime after that time
// (src/oauth/state-token.ts).
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../kube/client.ts';
import { isAlreadyExists, isConflict, isNotFound, isTransient, KubeAPIError } from '../kube/errors.ts';
import type { Secret } from '../kube/objects.ts';
import { managedByLabel, managedByValue, rotateAnnotation } from './labels.ts';
import { roleLabel } from './state.ts';

export const signingKeySecretName = 'oauthapp-state-signing-key';
/** The data key that holds the key the last rotation replaced. */
export const previousKeyField = 'previous-key';
/** The oauthapp.dev/rotate value the last rotation acted on (as status.lastRotateRequest on an OAuthApp). */
export const lastRotateRequestAnnotation = 'oauthapp.dev/last-rotate-request';
/** When the last rotation happened (RFC 3339): the previous key's grace is counted from it. */
export const rotatedAtAnnotation = 'oauthapp.dev/rotated-at';
/** As for an OAuthApp's oauthapp.dev/rotate: a longer value is not acted on (use a timestamp). */
export const maxRotateRequestLength = 256;
/** How often every replica re-reads the Secret (on multiples of it, wall clock). */
export const signingKeyRefreshMs = 10_000;

/** Key length: 32 random bytes, from which HKDF derives the state encryption key and the PKCE key. */
const keyBytes = 32;
/** Each lost race means another replica wrote a key we then read: a few are plenty. */
const maxAttempts = 5;

export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
  readonly code = 'SIGNING_KEY';
}

export type SigningKeySecrets = Pick<KubeClient, 'getSecret' | 'createSecret' | 'replaceSecret'>;

/** The installation's keys as the Secret holds them. */
export interface SigningKeys {
  /** Seals new states and derives new PKCE verifiers. */
  key: Buffer;
  /** The key the last rotation replaced and when (ms epoch), when the Secret holds both usably. */
  previous?: { key: Buffer; rotatedAt: number } | undefined;
}

export interface SigningKeySync {
  keys: SigningKeys;
  /** What this call wrote, if anything: a first key, a repaired one, or a rotation for this request value. */
  wrote?: { kind: 'created' | 'repaired' } | { kind: 'rotated'; request: string };
  /** An oauthapp.dev/rotate value that was not acted on, and why (it is tried again on the next read). */
  pendingRotation?: string;
  /** A write of this call lost to another writer's (then read). */
  lostRace?: true;
}

/** A stored key, if it is one: base64 of exactly 32 bytes. */
function usableKey(stored: string | undefined): Buffer | undefined {
  if (!stored) return undefined;
  const key = Buffer.from(stored, 'base64');
  return key.length === keyBytes ? key : undefined;
}

/** The keys of a Secret whose `key` is usable. A previous key without a readable rotation time is not accepted. */
function keysOf(secret: Secret, key: Buffer): SigningKeys {
  const previous = usableKey(secret.data?.[previousKeyField]);
  const rotatedAt = Date.parse(secret.metadata.annotations?.[rotatedAtAnnotation] ?? '');
  return previous && Number.isSafeInteger(rotatedAt) ? { key, previous: { key: previous, rotatedAt } } : { key };
}

type RotateRequest = { kind: 'none' } | { kind: 'pending'; value: string } | { kind: 'refused'; why: string };

/** The oauthapp.dev/rotate value, compared with the one the last rotation recorded. */
function rotateRequestOf(secret: Secret): RotateRequest {
  const annotations = secret.metadata.annotations ?? {};
  const value = annotations[rotateAnnotation];
  if (value === undefined || value === '' || value === annotations[lastRotateRequestAnnotation]) return { kind: 'none' };
  if (value.length > maxRotateRequestLength) {
    return { kind: 'refused', why: `the ${rotateAnnotation} annotation is ${value.length} characters long; at most ${maxRotateRequestLength} are acted on (use a timestamp)` };
  }
  return { kind: 'pending', value };
}

/**
 * Reads the keys, creating the Secret or repairing its `key` when needed, and performs a requested
 * rotation. Every write carries the resourceVersion it read (or is a create), so of replicas doing
 * this at once exactly one writes; a lost race is followed by a fresh read, which then finds the
 * winner's keys. A Secret whose `key` is missing or not 32 bytes (edited, or restored from a
 * backup without data) is repaired first; a rotation requested meanwhile follows on the next call.
 */
export async function syncSigningKeys(kube: SigningKeySecrets, namespace: string, now: () => number = Date.now): Promise<SigningKeySync> {
  const where = `Secret ${namespace}/${signingKeySecretName}`;
  let lost: { lostRace?: true } = {};
  for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
    if (attempt > 1) lost = { lostRace: true };
    const existing = await kube.getSecret(namespace, signingKeySecretName);
    const stored = usableKey(existing?.data?.key);
    if (existing && stored) {
      const request = rotateRequestOf(existing);
      if (request.kind === 'none') return { keys: keysOf(existing, stored), ...lost };
      if (request.kind === 'refused') return { keys: keysOf(existing, stored), pendingRotation: request.why, ...lost };
      const rotated = await rotate(kube, namespace, existing, request.value, now());
      if (rotated === 'lost') continue;
      if (typeof rotated === 'string') return { keys: keysOf(existing, stored), pendingRotation: `${where} could not be rotated: ${rotated}`, ...lost };
      return { keys: rotated, wrote: { kind: 'rotated', request: request.value }, ...lost };
    }
    const key = randomBytes(keyBytes);
    const data = { key: key.toString('base64') };
    try {
      if (existing) {
        // Other data keys and metadata are kept; resourceVersion makes this lose to any other writer.
        const written = await kube.replaceSecret(namespace, { ...existing, data: { ...existing.data, ...data } });
        return { keys: keysOf(written, key), wrote: { kind: 'repaired' }, ...lost };
      }
      await kube.createSecret(namespace, {
        metadata: { name: signingKeySecretName, namespace, labels: { [managedByLabel]: managedByValue, [roleLabel]: 'signing-key' } },
        type: 'Opaque',
        data,
      });
      return { keys: { key }, wrote: { kind: 'created' }, ...lost };
    } catch (error) {
      if (isAlreadyExists(error) || isConflict(error) || isNotFound(error)) continue;
      if (error instanceof KubeAPIError && error.reason === 'Invalid') {
        // An immutable Secret (or one of another type) cannot be repaired in place.
        throw new SigningKeyError(`${where} has no usable key (base64 of ${keyBytes} bytes in data.key) and cannot be updated: delete it and the operator creates a new one`, { cause: error });
      }
      throw error;
    }
  }
  throw new SigningKeyError(`${where}: still no usable key after ${maxAttempts} attempts; something else keeps rewriting it`);
}

/**
 * One rotation: `key` becomes `previous-key` (replacing an older one), a fresh key becomes `key`,
 * and the request value and the time are recorded, in one update guarded by the resourceVersion
 * read. 'lost': another writer came first (read again). A string: why it could not be written
 * (an immutable Secret, no permission, an apiserver error); the current keys stay in use.
 */
async function rotate(kube: SigningKeySecrets, namespace: string, existing: Secret, request: string, at: number): Promise<SigningKeys | 'lost' | string> {
  const key = randomBytes(keyBytes);
  const rotation: Secret = {
    ...existing,
    metadata: {
      ...existing.metadata,
      annotations: { ...existing.metadata.annotations, [lastRotateRequestAnnotation]: request, [rotatedAtAnnotation]: new Date(at).toISOString() },
    },
    data: { ...existing.data, key: key.toString('base64'), [previousKeyField]: existing.data?.key ?? '' },
  };
  try {
    const written = await kube.replaceSecret(namespace, rotation);
    return keysOf(written, key);
  } catch (error) {
    if (isConflict(error) || isNotFound(error)) return 'lost';
    if (error instanceof KubeAPIError) {
      return error.reason === 'Invalid' ? `the apiserver refused the update (${error.reason}; an immutable Secret cannot be rotated: delete it for a new key, without grace)` : `${error.reason}: ${error.message}`;
    }
    return error instanceof Error ? error.message : String(error);
  }
}

/** Reads the key, or creates it (and acts on a pending rotation request): the key that seals new states. */
export async function loadOrCreateSigningKey(kube: SigningKeySecrets, namespace: string): Promise<Buffer> {
  return (await syncSigningKeys(kube, namespace)).keys.key;
}

/** Waits between attempts of the first read at start: about a minute in all. */
const startRetryDelaysMs = [500, 1_000, 2_000, 4_000, 8_000, 15_000, 30_000];

async function retryTransient<T>(attempt: () => Promise<T>, delaysMs: readonly number[]): Promise<T> {
  for (const delayMs of delaysMs) {
    try {
      return await attempt();
    } catch (error) {
      if (!isTransient(error)) throw error;
      await sleep(delayMs);
    }
  }
  return attempt();
}

export interface SigningKeyRefreshOptions {
  kube: SigningKeySecrets;
  namespace: string;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** Default signingKeyRefreshMs. */
  intervalMs?: number;
  /**
   * The keys changed: a rotation (`rotatedFor`: by this replica, for that request value; `lostRace`:
   * this replica tried to write too and another came first), a repair, a hand edit.
   */
  onChange: (keys: SigningKeys, change: { rotatedFor?: string | undefined; lostRace?: boolean }) => void;
  /** A read or a requested rotation failed; said once until it changes or succeeds. The keys stay as they were. */
  onProblem: (message: string) => void;
  /** Waits between attempts of the first read when the apiserver answers 429/5xx or cannot be reached. */
  startRetries?: readonly number[];
}

export interface SigningKeyRefresh {
  /** The keys in use now. */
  readonly keys: SigningKeys;
  stop(): void;
}

/**
 * Loads the keys (as loadOrCreateSigningKey) and re-reads them every `intervalMs`, at multiples of
 * it on the wall clock so that replicas read (and race to rotate) together and switch to new keys
 * within one apiserver round trip of each other. A read that fails keeps the keys in use.
 *
 * The previous key's grace is counted from the Secret's rotated-at, but never from later than this
 * process first saw that previous key: a wrong or future rotated-at cannot stretch it.
 */
export async function startSigningKeyRefresh(options: SigningKeyRefreshOptions): Promise<SigningKeyRefresh> {
  const { kube, namespace, now, intervalMs = signingKeyRefreshMs, onChange, onProblem } = options;
  const firstSeen = new Map<string, number>();
  const capped = (keys: SigningKeys): SigningKeys => {
    if (!keys.previous) return keys;
    const id = keys.previous.key.toString('base64');
    const seen = firstSeen.get(id) ?? now();
    firstSeen.clear();
    firstSeen.set(id, seen);
    return { key: keys.key, previous: { key: keys.previous.key, rotatedAt: Math.min(keys.previous.rotatedAt, seen) } };
  };
  let lastProblem: string | undefined;
  const problem = (message: string | undefined) => {
    if (message !== undefined && message !== lastProblem) onProblem(message);
    lastProblem = message;
  };

  // At start a busy or restarting apiserver (429, 5xx, a reset) is waited out, not a reason to exit:
  // the process would only be restarted into the same apiserver, later.
  const initial = await retryTransient(() => syncSigningKeys(kube, namespace, now), options.startRetries ?? startRetryDelaysMs);
  let keys = capped(initial.keys);
  problem(initial.pendingRotation);
  if (initial.wrote?.kind === 'rotated') onChange(keys, { rotatedFor: initial.wrote.request });

  let stopped = false;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  const refresh = async () => {
    if (running) return;
    running = true;
    try {
      const synced = await syncSigningKeys(kube, namespace, now);
      if (stopped) return;
      const next = capped(synced.keys);
      problem(synced.pendingRotation);
      if (!sameKeys(keys, next)) {
        keys = next;
        onChange(keys, { rotatedFor: synced.wrote?.kind === 'rotated' ? synced.wrote.request : undefined, lostRace: synced.lostRace === true });
      }
    } catch (error) {
      if (!stopped) problem(`could not read ${namespace}/${signingKeySecretName}: ${error instanceof Error ? error.message : String(error)}; the keys in use stay`);
    } finally {
      running = false;
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      void refresh();
      schedule();
    }, intervalMs - (now() % intervalMs));
    timer.unref();
  };
  schedule();

  return {
    get keys() {
      return keys;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function sameKeys(a: SigningKeys, b: SigningKeys): boolean {
  return a.key.equals(b.key) && a.previous?.rotatedAt === b.previous?.rotatedAt && (a.previous?.key.equals(b.previous?.key ?? Buffer.alloc(0)) ?? b.previous === undefined);
}
