// Helpers for the chaos tests (test/integration/chaos-*.test.ts): the iteration count, a TCP proxy
// that can hold a connection at a chosen point, provider-side accounting of replays, and a leak
// check that also covers /metrics and a private control plane.
import { expect } from '@jest/globals';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Presentation } from '../../src/sandbox/server.ts';
import { kubectlOK } from './kubectl.ts';

/** How many rounds each chaos test runs: small under `npm test`, large under `npm run test:chaos`. */
export function chaosIterations(fallback = 3): number {
  const value = Number(process.env.CHAOS_ITERATIONS ?? fallback);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

/**
 * - `forward`: a plain TCP relay.
 * - `hold-request`: accepts connections and keeps what the client writes; nothing reaches the
 *   upstream (the client has sent its request, the server has not seen it).
 * - `hold-response`: the request is relayed, the upstream's answer is kept back (the server has
 *   processed the request, the client has not seen the answer).
 * - `blackhole`: like hold-request for new connections, and existing ones stop relaying both ways
 *   (a stalled, silent connection).
 */
export type ProxyMode = 'forward' | 'hold-request' | 'hold-response' | 'blackhole';

export interface HoldingProxy {
  readonly port: number;
  mode: ProxyMode;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections whose request bytes reached the upstream. */
  readonly requestsRelayed: number;
  /** Connections whose client has written bytes the upstream has not seen. */
  readonly requestsHeld: number;
  /** Connections holding an answer from the upstream. */
  readonly responsesHeld: number;
  /** Bytes of answers written to clients. */
  readonly responseBytesDelivered: number;
  /** Existing connections go silent both ways (a stalled watch); new ones are relayed as the mode says. */
  stallExisting(): void;
  /** Writes every held answer to its client and goes back to `forward`. */
  releaseResponses(): void;
  /** Goes back to `forward` and drops every held or stalled connection (the client sees a reset). */
  reset(): void;
  close(): Promise<void>;
}

interface Relay {
  client: Socket;
  upstream: Socket | undefined;
  heldRequest: Buffer[];
  heldResponse: Buffer[];
  stalled: boolean;
  relayed: boolean;
}

export async function startHoldingProxy(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<HoldingProxy> {
  const relays = new Set<Relay>();
  let mode: ProxyMode = 'forward';
  let requestsRelayed = 0;
  let accepted = 0;
  let responseBytesDelivered = 0;

  const openUpstream = (relay: Relay) => {
    const upstream = connect(upstreamPort, upstreamHost);
    relay.upstream = upstream;
    upstream.on('data', (chunk: Buffer) => {
      if (relay.stalled) return;
      if (mode === 'hold-response' || relay.heldResponse.length > 0) {
        relay.heldResponse.push(chunk);
        return;
      }
      responseBytesDelivered += chunk.length;
      relay.client.write(chunk);
    });
    upstream.on('error', () => relay.client.destroy());
    upstream.on('close', () => {
      if (relay.heldResponse.length === 0 && !relay.stalled) relay.client.end();
    });
  };

  const server: Server = createServer((client) => {
    const relay: Relay = { client, upstream: undefined, heldRequest: [], heldResponse: [], stalled: false, relayed: false };
    relays.add(relay);
    accepted += 1;
    if (mode === 'blackhole') relay.stalled = true;
    client.on('data', (chunk: Buffer) => {
      if (relay.stalled) return;
      if (mode === 'hold-request' && !relay.upstream) {
        relay.heldRequest.push(chunk);
        return;
      }
      if (!relay.upstream) openUpstream(relay);
      if (!relay.relayed) {
        relay.relayed = true;
        requestsRelayed += 1;
      }
      relay.upstream?.write(chunk);
    });
    client.on('error', () => undefined);
    client.on('close', () => {
      relay.upstream?.destroy();
      relays.delete(relay);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');

  return {
    port: address.port,
    get mode() {
      return mode;
    },
    set mode(next: ProxyMode) {
      mode = next;
      if (next === 'blackhole') for (const relay of relays) relay.stalled = true;
    },
    get accepted() {
      return accepted;
    },
    get requestsRelayed() {
      return requestsRelayed;
    },
    get requestsHeld() {
      return [...relays].filter((relay) => relay.heldRequest.length > 0).length;
    },
    get responsesHeld() {
      return [...relays].filter((relay) => relay.heldResponse.length > 0).length;
    },
    get responseBytesDelivered() {
      return responseBytesDelivered;
    },
    stallExisting() {
      for (const relay of relays) relay.stalled = true;
    },
    releaseResponses() {
      mode = 'forward';
      for (const relay of relays) {
        const held = Buffer.concat(relay.heldResponse);
        relay.heldResponse = [];
        if (held.length > 0) {
          responseBytesDelivered += held.length;
          relay.client.write(held);
        }
        if (relay.upstream?.destroyed) relay.client.end();
      }
    },
    reset() {
      mode = 'forward';
      for (const relay of [...relays]) {
        if (relay.stalled || relay.heldRequest.length > 0 || relay.heldResponse.length > 0) {
          relay.client.destroy();
          relay.upstream?.destroy();
          relays.delete(relay);
        }
      }
    },
    async close() {
      for (const relay of relays) {
        relay.client.destroy();
        relay.upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Refresh-token values presented again after the provider had already accepted them: with a
 * strictly rotating provider that revokes on replay, each one revoked a grant. (Requests refused
 * by an injected fault were not processed, so presenting that value again is no replay.)
 */
export function replays(presentations: readonly Presentation[]): string[] {
  const exchanged = new Set<string>();
  const replayed = new Set<string>();
  for (const presentation of presentations) {
    if (exchanged.has(presentation.value)) replayed.add(presentation.value);
    if (presentation.outcome === 'ok') exchanged.add(presentation.value);
  }
  return [...replayed];
}

export interface LeakCheck {
  /** Client secrets and tokens in play. */
  canaries: readonly string[];
  namespace: string;
  logs: string;
  /** /metrics bodies scraped during the run. */
  metrics: readonly string[];
  kubeconfig?: string;
}

/** No canary in operator logs, Events, OAuthApp objects (status) or /metrics; fails naming the place. */
export async function expectNoLeaks({ canaries, namespace, logs, metrics, kubeconfig }: LeakCheck): Promise<void> {
  const options = kubeconfig ? { kubeconfig } : {};
  const [events, apps] = await Promise.all([
    kubectlOK(['get', 'events.events.k8s.io', '-n', namespace, '-o', 'json'], options),
    kubectlOK(['get', 'oauthapps', '-n', namespace, '-o', 'json'], options),
  ]);
  const values = [...new Set(canaries.filter((value) => value.length >= 8))];
  expect(values.length).toBeGreaterThan(0);
  expect(logs).toMatch(/\S/);
  const places: Record<string, string> = { logs, events, 'OAuthApp objects (status)': apps, metrics: metrics.join('\n') };
  for (const [place, text] of Object.entries(places)) {
    const leaked = values.filter((value) => text.includes(value));
    expect({ place, leaked: leaked.length }).toEqual({ place, leaked: 0 });
  }
}

/** Prints one result line to the terminal (jest keeps process.stdout). */
export function report(line: string): void {
  process.stdout.write(`[chaos] ${line}\n`);
}
