// A client secret the provider has not accepted yet (a rotation, a new app) is checked at once
// with oauth/client-check.ts, so ClientSecretValid is known within seconds instead of at the next
// refresh, up to 40 minutes later. The check spends nothing: its refresh token is one no provider
// issued.
// - Off the workers, as token requests are: a reconcile asks (`look`) and goes on; the check wakes
//   the apps waiting for it when its verdict is in.
// - One check per distinct secret (token URL, client authentication, client id, secret): a client
//   secret shared by thousands of apps is checked once, and its verdict handed to each app that
//   looks within `verdictTTLMs`.
// - An answer that says neither (5xx, timeout, a 400 of another kind) is asked again after a
//   backoff (10 s doubling to 5 min); the next refresh uses the secret anyway.
import { exponentialBackoff } from '../controller/backoff.ts';
import type { ClientCheck, ClientCheckRequest } from '../oauth/client-check.ts';
import { fingerprint } from './state.ts';

/** What an app learns from a look. */
export type ClientSecretLook =
  | { verdict: 'accepted' }
  | { verdict: 'rejected'; description?: string | undefined }
  /** A check is out (the app is woken when it ends), or waits out a backoff of `lookAgainMs`. */
  | { verdict: 'pending'; lookAgainMs?: number };

export interface ClientSecretChecksDependencies {
  check: (request: ClientCheckRequest) => Promise<ClientCheck>;
  /** Puts an app's key back on the queue. */
  wake: (appKey: string) => void;
  now: () => number;
  random: () => number;
  /** Told of a check that said neither, with why (never a secret). */
  onUnknown?: (reason: string) => void;
}

/**
 * Long enough for every app sharing a secret to take the verdict (they look within seconds of the
 * change), short enough that a secret the provider starts accepting later is checked again.
 */
export const verdictTTLMs = 2 * 60_000;

type Entry =
  | { phase: 'running'; waiters: Set<string>; attempts: number }
  | { phase: 'decided'; look: Extract<ClientSecretLook, { verdict: 'accepted' | 'rejected' }>; at: number }
  | { phase: 'backoff'; attempts: number; retryAt: number };

export class ClientSecretChecks {
  private readonly deps: ClientSecretChecksDependencies;
  private readonly entries = new Map<string, Entry>();
  private lastForgotAt = Number.NEGATIVE_INFINITY;

  constructor(dependencies: ClientSecretChecksDependencies) {
    this.deps = dependencies;
  }

  /** Secrets it knows something about (a check out, a verdict, a backoff). */
  get size(): number {
    return this.entries.size;
  }

  /** The verdict on `request`'s secret if known; else starts a check, unless one is out or backing off. */
  look(request: ClientCheckRequest, waiter: string): ClientSecretLook {
    const key = checkKey(request);
    const now = this.deps.now();
    const entry = this.entries.get(key);
    if (entry?.phase === 'decided' && now - entry.at < verdictTTLMs) return entry.look;
    if (entry?.phase === 'running') {
      entry.waiters.add(waiter);
      return { verdict: 'pending' };
    }
    if (entry?.phase === 'backoff' && now < entry.retryAt) return { verdict: 'pending', lookAgainMs: entry.retryAt - now };
    this.forgetOldVerdicts(now);
    this.start(key, request, waiter, entry?.phase === 'backoff' ? entry.attempts : 0);
    return { verdict: 'pending' };
  }

  private start(key: string, request: ClientCheckRequest, waiter: string, attempts: number): void {
    const running: Entry = { phase: 'running', waiters: new Set([waiter]), attempts };
    this.entries.set(key, running);
    void this.deps
      .check(request)
      .catch((error: unknown): ClientCheck => ({ verdict: 'unknown', reason: error instanceof Error ? error.message : String(error) }))
      .then((check) => {
        const now = this.deps.now();
        if (check.verdict === 'unknown') {
          const attempt = running.attempts + 1;
          const backoffMs = Math.max(exponentialBackoff({ attempt, random: this.deps.random }), check.retryAfterMs ?? 0);
          this.entries.set(key, { phase: 'backoff', attempts: attempt, retryAt: now + backoffMs });
          this.deps.onUnknown?.(check.reason);
        } else {
          this.entries.set(key, { phase: 'decided', look: check, at: now });
        }
        for (const appKey of running.waiters) this.deps.wake(appKey);
      });
  }

  /** At most once per half TTL: thousands of apps with secrets of their own each start a check. */
  private forgetOldVerdicts(now: number): void {
    if (now - this.lastForgotAt < verdictTTLMs / 2) return;
    this.lastForgotAt = now;
    for (const [key, entry] of this.entries) {
      const since = entry.phase === 'decided' ? entry.at : entry.phase === 'backoff' ? entry.retryAt : now;
      if (now - since >= verdictTTLMs) this.entries.delete(key);
    }
  }
}

/** Secrets are never keys of a long-lived map: a fingerprint of the whole request stands for it. */
const checkKey = (request: ClientCheckRequest): string =>
  fingerprint([request.tokenURL, request.clientAuthentication, request.clientId, request.clientSecret].join('\u0000'));
