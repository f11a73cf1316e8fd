// What the fault-injecting apiserver proxy (apiserver-proxy.ts) decides, apart from how it relays:
// the requests it sees, how a fault is matched to them (counted rules, or a seeded random
// schedule), and the Kubernetes Status bodies it answers with instead of the apiserver.
import { mulberry32 } from './prng.ts';

/** A request as the proxy sees it, once its body has been read. */
export interface ProxiedRequest {
  /** 1, 2, … in the order the proxy received them (per proxy). */
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** The body of a write (POST, PUT, PATCH, DELETE); undefined for reads. */
  readonly body: string | undefined;
  readonly write: boolean;
  /** `?watch=true` (or a `/watch/` path): the answer is a stream of events. */
  readonly watch: boolean;
}

/**
 * Which requests a fault applies to: a predicate, or fields that must all hold. `path` is exact,
 * a glob where `*` stands for any characters but `/`, or a RegExp.
 */
export type RequestMatch =
  | ((request: ProxiedRequest) => boolean)
  | {
      method?: string | readonly string[];
      path?: string | RegExp;
      watch?: boolean;
      body?: (body: string) => boolean;
    };

/**
 * - `dropResponse`: forward the request, wait for the apiserver's whole answer, then reset the
 *   client's stream (or its whole connection): the write committed, the client sees an error.
 * - `delayResponse`: forward, and hand the answer over `ms` after it arrived.
 * - `reset`: do not forward; reset the connection the request came on (every stream on it).
 * - `refuse`: like `reset`, and refuse new connections for `ms`.
 * - `stallWatches`: forward, and hold the events of every open watch (and of watches opened
 *   meanwhile) for `ms`; events are delivered late, in order, none dropped.
 * - `status`: do not forward; answer with this status and a Kubernetes Status body.
 * dropResponse and delayResponse never apply to watches.
 */
export type Fault =
  | { kind: 'dropResponse'; scope?: 'stream' | 'connection' }
  | { kind: 'delayResponse'; ms: number }
  | { kind: 'reset' }
  | { kind: 'refuse'; ms: number }
  | { kind: 'stallWatches'; ms: number }
  | { kind: 'status'; status: 429 | 500 | 503; retryAfterSeconds?: number };

export type FaultKind = Exclude<Fault['kind'], 'status'> | 'status429' | 'status500' | 'status503';

export const faultKind = (fault: Fault): FaultKind => (fault.kind === 'status' ? `status${fault.status}` : fault.kind);

/** A fault injected by `proxy.inject()`. */
export interface Injection {
  /** Requests it has matched so far. */
  readonly hits: number;
  /** Resolves once the fault has been carried out `times` times (for a drop: after the reset). */
  readonly applied: Promise<void>;
  /** Stops matching further requests. */
  cancel(): void;
}

export function matches(match: RequestMatch | undefined, request: ProxiedRequest): boolean {
  if (match === undefined) return true;
  if (typeof match === 'function') return match(request);
  if (match.method !== undefined) {
    const methods = typeof match.method === 'string' ? [match.method] : match.method;
    if (!methods.includes(request.method)) return false;
  }
  if (match.path !== undefined && !pathPattern(match.path).test(request.path)) return false;
  if (match.watch !== undefined && match.watch !== request.watch) return false;
  if (match.body !== undefined && (request.body === undefined || !match.body(request.body))) return false;
  return true;
}

function pathPattern(path: string | RegExp): RegExp {
  if (path instanceof RegExp) return path;
  const escaped = path.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('[^/]*')}$`);
}

/** Whether a fault can apply to this request at all. */
export const applicable = (fault: Fault, request: ProxiedRequest) =>
  !((fault.kind === 'dropResponse' || fault.kind === 'delayResponse') && request.watch);

interface Rule {
  fault: Fault;
  match: RequestMatch | undefined;
  remaining: number;
  hits: number;
  applied: number;
  times: number;
  resolve: () => void;
}

/** Counted faults, the oldest matching one first. */
export class FaultRules {
  private rules: Rule[] = [];

  add(fault: Fault, match: RequestMatch | undefined, times: number): Injection {
    let resolve = () => undefined as void;
    const applied = new Promise<void>((done) => (resolve = done));
    const rule: Rule = { fault, match, remaining: times, hits: 0, applied: 0, times, resolve };
    this.rules.push(rule);
    const rules = this;
    return {
      get hits() {
        return rule.hits;
      },
      applied,
      cancel: () => rules.remove(rule),
    };
  }

  /** The fault for this request, if a rule matches; `done()` once it has been carried out. */
  take(request: ProxiedRequest): { fault: Fault; done: () => void } | undefined {
    const rule = this.rules.find((each) => applicable(each.fault, request) && matches(each.match, request));
    if (!rule) return undefined;
    rule.hits += 1;
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.remove(rule);
    return {
      fault: rule.fault,
      done: () => {
        rule.applied += 1;
        if (rule.applied === rule.times) rule.resolve();
      },
    };
  }

  clear(): void {
    this.rules = [];
  }

  private remove(rule: Rule): void {
    this.rules = this.rules.filter((each) => each !== rule);
  }
}

/** Probabilities per request (each at most 1, together at most 1). */
export interface ChaosRates {
  /** Per write: forward it, then drop its answer. */
  dropWriteResponse?: number;
  /** Per read or write (not watches): answer late. */
  delayResponse?: number;
  /** Per request: reset its connection instead of forwarding. */
  reset?: number;
  /** Per request: stall every watch for a while (the request itself is forwarded). */
  stallWatches?: number;
  /** Per request: reset its connection and refuse new ones for a while. */
  refuse?: number;
  status429?: number;
  /** 500 or 503, half each. */
  status5xx?: number;
}

export interface ChaosOptions {
  seed: number;
  rates: ChaosRates;
  /** Upper bounds; each fault draws its own length in [half, whole]. */
  durations?: { delayMs?: number; stallWatchMs?: number; refuseMs?: number };
  /** Only these requests are considered (and count towards the sequence). */
  match?: RequestMatch;
}

export interface ChaosDecision {
  seq: number;
  method: string;
  path: string;
  fault: FaultKind | undefined;
}

/**
 * The seeded schedule: every considered request draws two numbers, whatever it gets, so the same
 * seed and the same request sequence give the same decisions.
 */
export class ChaosSchedule {
  readonly seed: number;
  readonly decisions: ChaosDecision[] = [];
  private readonly random: () => number;
  private readonly options: ChaosOptions;

  constructor(options: ChaosOptions) {
    const total = Object.values(options.rates).reduce((sum: number, rate) => sum + (rate ?? 0), 0);
    if (total > 1) throw new Error(`chaos rates add up to ${total}, more than 1`);
    this.options = options;
    this.seed = options.seed;
    this.random = mulberry32(options.seed);
  }

  decide(request: ProxiedRequest): Fault | undefined {
    if (!matches(this.options.match, request)) return undefined;
    const [pick, size] = [this.random(), this.random()];
    const { rates, durations = {} } = this.options;
    const length = (max: number) => Math.round(max * (0.5 + size / 2));
    const candidates: Array<[number | undefined, Fault]> = [
      [request.write ? rates.dropWriteResponse : 0, { kind: 'dropResponse' }],
      [rates.delayResponse, { kind: 'delayResponse', ms: length(durations.delayMs ?? 2_000) }],
      [rates.reset, { kind: 'reset' }],
      [rates.stallWatches, { kind: 'stallWatches', ms: length(durations.stallWatchMs ?? 3_000) }],
      [rates.refuse, { kind: 'refuse', ms: length(durations.refuseMs ?? 1_000) }],
      [rates.status429, { kind: 'status', status: 429, retryAfterSeconds: 1 }],
      [rates.status5xx, { kind: 'status', status: size < 0.5 ? 500 : 503 }],
    ];
    let threshold = 0;
    let chosen: Fault | undefined;
    for (const [rate, fault] of candidates) {
      threshold += rate ?? 0;
      if (pick < threshold) {
        chosen = fault;
        break;
      }
    }
    if (chosen && !applicable(chosen, request)) chosen = undefined;
    this.decisions.push({ seq: request.seq, method: request.method, path: request.path, fault: chosen && faultKind(chosen) });
    return chosen;
  }
}

const statusReasons = { 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable' } as const;

/** A metav1.Status failure, as the apiserver writes it. */
export function statusBody(status: 429 | 500 | 503, retryAfterSeconds?: number): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `injected by the apiserver proxy: ${statusReasons[status]}`,
    reason: statusReasons[status],
    ...(retryAfterSeconds === undefined ? {} : { details: { retryAfterSeconds } }),
    code: status,
  });
}
