// Flags and their OAUTHAPP_* environment variables, validated with zod. A flag wins over its
// variable; a bad value is reported in one line that names the flag and what it accepts.
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { durationPattern, parseDurationMs } from './api/fields.ts';
import { acquireJitter } from './kube/leader-election.ts';
import { parseCIDR } from './oauth/address-policy.ts';
import { proxySettingsFrom, type ProxySettings } from './oauth/proxy.ts';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, 'must be HOST:PORT (HOST may be empty for all interfaces), e.g. :8080 or 127.0.0.1:8080')
  .refine((value) => Number(value.slice(value.lastIndexOf(':') + 1)) <= 65_535, 'port must be at most 65535');

const positiveInt = (max: number) =>
  z.coerce.number().int('must be a whole number').min(1, 'must be at least 1').max(max, `must be at most ${max}`);

const namespaceName = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be namespace names (lowercase RFC 1123 labels)');

/** What one process runs: the OAuth callback server, the controller (reconciles, leader election), or both. */
export const componentNames = ['callback', 'controller'] as const;
export type Component = (typeof componentNames)[number];
const components = z
  .string()
  .transform((value) => [...new Set(value.split(',').map((name) => name.trim()).filter(Boolean))])
  .pipe(z.array(z.enum(componentNames, 'must be callback, controller or both (callback,controller)')).min(1, 'must name at least one component: callback, controller'));

/** `N/s`, `N/min` or `N/h`: requests per client IP per window. */
const ratePeriods: Record<string, number> = { s: 1_000, sec: 1_000, second: 1_000, m: 60_000, min: 60_000, minute: 60_000, h: 3_600_000, hour: 3_600_000 };
const rateLimit = z
  .string()
  .regex(/^\d{1,6}\/[a-z]+$/, 'must be N/PERIOD, e.g. 60/min (PERIOD: s, min or h)')
  .transform((value, context) => {
    const [count = '', period = ''] = value.split('/');
    const windowMs = ratePeriods[period];
    if (windowMs === undefined || Number(count) < 1) {
      context.addIssue({ code: 'custom', message: 'must be N/PERIOD with N at least 1 and PERIOD s, min or h, e.g. 60/min' });
      return z.NEVER;
    }
    return { max: Number(count), windowMs };
  });

/** An IP address or a CIDR block, as fastify's trustProxy (proxy-addr) takes them. */
const proxyAddress = z.string().refine((value) => {
  const [address = '', prefix, extra] = value.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}, 'must be IP addresses or CIDR blocks, such as 10.0.0.0/8 or fd00::/8');

const commaList = (value: string) => value.split(',').map((item) => item.trim()).filter(Boolean);

// A host name, IPv4 address or bracketed IPv6 address, where `*` stands for any run of characters.
const hostGlob = z
  .string()
  .regex(/^(?:[A-Za-z0-9*](?:[A-Za-z0-9*.-]*[A-Za-z0-9*])?|\[[0-9A-Fa-f:.*]+\])$/, 'must be host names or globs such as *.example.com, or * for any host')
  .transform((glob) => glob.toLowerCase());

const cidr = z.string().refine((value) => {
  try {
    parseCIDR(value);
    return true;
  } catch {
    return false;
  }
}, 'must be IP networks in CIDR notation, such as 10.0.0.0/8 or fd00::/8');

const booleanFlag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1')]);

/** Go's time.ParseDuration syntax (what controller-runtime's duration flags take), to milliseconds. */
const duration = z
  .string()
  .regex(durationPattern, 'must be a duration such as 15s, 1m30s or 500ms')
  .transform(parseDurationMs)
  .pipe(z.number().min(1, 'must be at least 1ms').max(3_600_000, 'must be at most 1h'));

interface Flag {
  schema: z.ZodType;
  type: 'string' | 'boolean';
  /** The value's placeholder in --help (string flags). */
  arg?: string;
  /** The default as one would type it: parsed by the flag's own schema. */
  default?: string;
  /** The default in words, for defaults that depend on the environment (applied in parseConfig). */
  defaultText?: string;
  /** What the flag means, for --help. */
  help: string;
}

/**
 * Every flag: its schema, default and meaning. The one source of --help, and of the defaults
 * parseConfig applies.
 */
export const flags = {
  kubeconfig: { schema: z.string().min(1, 'must be a path'), type: 'string', arg: 'PATH', defaultText: '$KUBECONFIG, else in-cluster config', help: 'cluster to manage' },
  namespaces: {
    schema: z
      .string()
      .transform((value) => value.split(',').map((name) => name.trim()).filter(Boolean))
      .pipe(z.array(namespaceName).min(1, 'must name at least one namespace (omit the flag to watch all)')),
    type: 'string',
    arg: 'a,b',
    defaultText: 'all namespaces',
    help: 'namespaces whose OAuthApps and Secrets it watches',
  },
  'operator-namespace': { schema: namespaceName, type: 'string', arg: 'NS', defaultText: "the pod's namespace, else oauthapp-system", help: 'where state Secrets and the Lease live' },
  'leader-elect': { schema: booleanFlag, type: 'boolean', default: 'true', help: 'elect one active replica through the Lease oauthapp-operator (coordination.k8s.io/v1)' },
  'leader-elect-lease-duration': { schema: duration, type: 'string', arg: 'DURATION', default: '15s', help: 'how long other replicas wait after the last renewal they saw before taking the Lease' },
  'leader-elect-renew-deadline': { schema: duration, type: 'string', arg: 'DURATION', default: '10s', help: 'how long the leader keeps leading without a successful renewal; shorter than the lease duration' },
  'leader-elect-retry-period': { schema: duration, type: 'string', arg: 'DURATION', default: '2s', help: `between attempts to acquire or renew the Lease; shorter than the renew deadline / ${acquireJitter} (client-go's jitter factor)` },
  'metrics-addr': { schema: hostPort, type: 'string', arg: 'HOST:PORT', default: ':8080', help: '/metrics, /healthz, /readyz' },
  'callback-addr': { schema: hostPort, type: 'string', arg: 'HOST:PORT', default: ':8081', help: 'the OAuth callback server, /oauth/callback' },
  components: { schema: components, type: 'string', arg: 'LIST', default: 'callback,controller', help: 'what this process runs: callback (the callback server alone: no reconciles, no Lease), controller (everything but the callback server), or both' },
  // The callback server's defaults (src/http/callback-server.ts, defaultCallbackLimits).
  'callback-rate-limit': { schema: rateLimit, type: 'string', arg: 'N/PERIOD', default: '60/min', help: 'requests per client IP (IPv6: per /64) at the callback per s, min or h; more get 429 with Retry-After' },
  'callback-max-connections': { schema: positiveInt(65_536), type: 'string', arg: 'N', default: '256', help: 'connections the callback server keeps open at once; more are closed on accept' },
  'callback-trusted-proxies': {
    schema: z
      .string()
      .transform((value) => value.split(',').map((item) => item.trim()).filter(Boolean))
      .pipe(z.array(proxyAddress)),
    type: 'string',
    arg: 'CIDR,...',
    defaultText: 'none',
    help: "proxies (e.g. the Ingress controller's pod range) whose X-Forwarded-For names the callback's client for the rate limit",
  },
  'log-level': { schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), type: 'string', arg: 'LEVEL', default: 'info', help: 'fatal, error, warn, info, debug, trace or silent; pino JSON logs, secret fields redacted' },
  workers: { schema: positiveInt(256), type: 'string', arg: 'N', default: '8', help: 'reconciles running at once' },
  // Each relist is paged: it costs one page of memory, not a second copy of the cache.
  'relist-interval': { schema: z.coerce.number().int('must be a whole number').min(0, 'must be at least 0 (0: never)').max(24 * 3600, `must be at most ${24 * 3600}`), type: 'string', arg: 'S', default: '1800', help: 'seconds between full relists of each cache, a guard against missed watch events; 0: never' },
  'provider-concurrency': { schema: positiveInt(1024), type: 'string', arg: 'N', default: '8', help: 'token requests per provider (token URL host) at once; apps waiting for one hold no worker' },
  'token-request-timeout': { schema: positiveInt(300), type: 'string', arg: 'S', default: '10', help: 'seconds for one whole token request' },
  // deploy/ gives the pod 30 s: 5 s left for the process to exit.
  'shutdown-timeout': { schema: positiveInt(3600), type: 'string', arg: 'S', default: '25', help: "seconds a stop (SIGTERM) may take: in-flight reconciles, storing held refresh results, releasing the Lease; keep it below the pod's terminationGracePeriodSeconds" },
  // Pipedrive's access tokens live an hour.
  'default-token-lifetime': { schema: positiveInt(7 * 24 * 3600), type: 'string', arg: 'S', default: '3600', help: 'access-token lifetime assumed when a token response has no expires_in' },
  'orphan-sweep-interval': { schema: positiveInt(24 * 3600), type: 'string', arg: 'S', default: '600', help: 'how often the leader deletes state Secrets whose OAuthApp is gone without its finalizer' },
  'previous-secret-grace': { schema: positiveInt(24 * 3600), type: 'string', arg: 'S', default: '600', help: "seconds a public app's replaced client secret still authenticates the provider's uninstall callbacks after a rotation" },
  'min-refresh-interval': { schema: positiveInt(24 * 3600), type: 'string', arg: 'S', default: '30', help: 'no app sends token requests more often than once per this many seconds; tokens that live shorter are Ready=False, reason=TokenLifetimeTooShort' },
  'provider-hosts': { schema: z.string().transform(commaList).pipe(z.array(hostGlob).min(1, 'must name at least one host glob (* for any host)')), type: 'string', arg: 'GLOB,...', default: '*', help: 'hosts a custom provider or an overridden preset may use for tokenURL and authorizeURL (* is any run of characters: *.example.com)' },
  'allow-provider-networks': { schema: z.string().transform(commaList).pipe(z.array(cidr)), type: 'string', arg: 'CIDR,...', defaultText: 'none', help: 'private or link-local networks token requests may connect to; cloud-metadata addresses never' },
  'allow-loopback-providers': { schema: booleanFlag, type: 'boolean', default: 'false', help: 'token requests may connect to loopback addresses: development and tests only' },
  'allow-preset-overrides': { schema: booleanFlag, type: 'boolean', default: 'false', help: "spec.tokenURL / spec.authorizeURL may replace the pipedrive preset's endpoints" },
} as const satisfies Record<string, Flag>;

type FlagName = keyof typeof flags;

export interface Config {
  /** undefined: in-cluster configuration. */
  kubeconfig: string | undefined;
  /** Empty: all namespaces. */
  namespaces: string[];
  operatorNamespace: string;
  leaderElect: boolean;
  /** The Lease's timings, as the leader elector takes them. */
  leaderElection: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  metricsAddr: string;
  callbackAddr: string;
  /** What this process runs (`--components`); both by default. */
  components: Component[];
  /** Requests per client IP per window at the callback server; more get 429. */
  callbackRateLimit: { max: number; windowMs: number };
  /** Connections the callback server keeps open at once; more are dropped. */
  callbackMaxConnections: number;
  /** Proxies (IPs, CIDRs) whose X-Forwarded-For names the callback's client. */
  callbackTrustedProxies: string[];
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  workers: number;
  /** Seconds between full relists of each cache (a guard against missed watch events); 0: never. */
  relistIntervalSeconds: number;
  /** Concurrent token requests per provider (token URL host). */
  providerConcurrency: number;
  tokenRequestTimeoutSeconds: number;
  /**
   * Seconds a stopping replica (SIGTERM) takes at most: finishing reconciles, storing held refresh
   * results, releasing the Lease. Below the pod's terminationGracePeriodSeconds, or it is killed first.
   */
  shutdownTimeoutSeconds: number;
  /** The access-token lifetime assumed when a token response has no expires_in (RFC 6749 only recommends it). */
  defaultTokenLifetimeSeconds: number;
  /** How often the leader looks for state Secrets whose OAuthApp is gone (finalizer bypassed). */
  orphanSweepIntervalSeconds: number;
  /** No app sends token requests more often than once per this many seconds (a floor against providers issuing tiny lifetimes). */
  minRefreshIntervalSeconds: number;
  previousSecretGraceSeconds: number;
  /** Host globs a custom provider or an overridden preset may use (`*`: any host). */
  providerHosts: string[];
  /** Private or link-local networks (CIDR) token requests may connect to. */
  allowProviderNetworks: string[];
  /** Token requests may connect to loopback addresses (development and tests only). */
  allowLoopbackProviders: boolean;
  /** spec.tokenURL / spec.authorizeURL may replace a preset's endpoints. */
  allowPresetOverrides: boolean;
  /** The egress proxy for token requests, from HTTPS_PROXY and NO_PROXY (no flags: every HTTP client reads these). */
  proxy: ProxySettings;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; error: string };

export const envName = (flag: FlagName) => `OAUTHAPP_${flag.toUpperCase().replaceAll('-', '_')}`;

export interface ConfigSources {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** The namespace the pod runs in, when it runs in one (the service-account namespace file). */
  podNamespace: string | undefined;
}

type Read<N extends FlagName> =
  | { ok: true; value: z.output<(typeof flags)[N]['schema']> | ((typeof flags)[N] extends { default: string } ? never : undefined) }
  | { ok: false; error: string };

export function parseConfig({ argv, env, podNamespace }: ConfigSources): ConfigResult {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(Object.entries(flags).map(([name, flag]) => [name, { type: flag.type }]));
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false, allowNegative: true }).values;
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }

  const read = <N extends FlagName>(name: N): Read<N> => {
    const flag: Flag = flags[name];
    const given = values[name] ?? env[envName(name)];
    const raw = given === undefined || given === '' ? flag.default : given;
    if (raw === undefined) return { ok: true, value: undefined } as Read<N>;
    const parsed = flag.schema.safeParse(raw);
    if (parsed.success) return { ok: true, value: parsed.data } as Read<N>;
    const problem = parsed.error.issues[0]?.message ?? 'is invalid';
    return { ok: false, error: `invalid --${name} (${envName(name)}) ${JSON.stringify(String(raw))}: ${problem}` };
  };

  const results = {
    kubeconfig: read('kubeconfig'),
    namespaces: read('namespaces'),
    operatorNamespace: read('operator-namespace'),
    leaderElect: read('leader-elect'),
    leaseDurationMs: read('leader-elect-lease-duration'),
    renewDeadlineMs: read('leader-elect-renew-deadline'),
    retryPeriodMs: read('leader-elect-retry-period'),
    metricsAddr: read('metrics-addr'),
    callbackAddr: read('callback-addr'),
    components: read('components'),
    callbackRateLimit: read('callback-rate-limit'),
    callbackMaxConnections: read('callback-max-connections'),
    callbackTrustedProxies: read('callback-trusted-proxies'),
    logLevel: read('log-level'),
    workers: read('workers'),
    relistIntervalSeconds: read('relist-interval'),
    providerConcurrency: read('provider-concurrency'),
    tokenRequestTimeoutSeconds: read('token-request-timeout'),
    shutdownTimeoutSeconds: read('shutdown-timeout'),
    defaultTokenLifetimeSeconds: read('default-token-lifetime'),
    orphanSweepIntervalSeconds: read('orphan-sweep-interval'),
    minRefreshIntervalSeconds: read('min-refresh-interval'),
    previousSecretGraceSeconds: read('previous-secret-grace'),
    providerHosts: read('provider-hosts'),
    allowProviderNetworks: read('allow-provider-networks'),
    allowLoopbackProviders: read('allow-loopback-providers'),
    allowPresetOverrides: read('allow-preset-overrides'),
  };
  for (const result of Object.values(results)) if (!result.ok) return result;
  const value = <T>(result: { ok: true; value: T } | { ok: false; error: string }): T => (result as { value: T }).value;

  const leaderElection = { leaseDurationMs: value(results.leaseDurationMs), renewDeadlineMs: value(results.renewDeadlineMs), retryPeriodMs: value(results.retryPeriodMs) };
  const timingProblem = leaderElectionTimingProblem(leaderElection);
  if (timingProblem) return { ok: false, error: timingProblem };
  const proxy = proxySettingsFrom(env);
  if (!proxy.ok) return proxy;

  return {
    ok: true,
    config: {
      kubeconfig: value(results.kubeconfig) ?? (env.KUBECONFIG || undefined),
      namespaces: value(results.namespaces) ?? [],
      operatorNamespace: value(results.operatorNamespace) ?? (podNamespace || 'oauthapp-system'),
      leaderElect: value(results.leaderElect),
      leaderElection,
      metricsAddr: value(results.metricsAddr),
      callbackAddr: value(results.callbackAddr),
      components: value(results.components),
      callbackRateLimit: value(results.callbackRateLimit),
      callbackMaxConnections: value(results.callbackMaxConnections),
      callbackTrustedProxies: value(results.callbackTrustedProxies) ?? [],
      logLevel: value(results.logLevel),
      workers: value(results.workers),
      relistIntervalSeconds: value(results.relistIntervalSeconds),
      providerConcurrency: value(results.providerConcurrency),
      tokenRequestTimeoutSeconds: value(results.tokenRequestTimeoutSeconds),
      shutdownTimeoutSeconds: value(results.shutdownTimeoutSeconds),
      defaultTokenLifetimeSeconds: value(results.defaultTokenLifetimeSeconds),
      orphanSweepIntervalSeconds: value(results.orphanSweepIntervalSeconds),
      minRefreshIntervalSeconds: value(results.minRefreshIntervalSeconds),
      previousSecretGraceSeconds: value(results.previousSecretGraceSeconds),
      providerHosts: value(results.providerHosts),
      allowProviderNetworks: value(results.allowProviderNetworks) ?? [],
      allowLoopbackProviders: value(results.allowLoopbackProviders),
      allowPresetOverrides: value(results.allowPresetOverrides),
      proxy: proxy.settings,
    },
  };
}

const seconds = (ms: number) => `${ms / 1000}s`;

/** client-go's rules (leaderelection.NewLeaderElector), in the flags' words. */
function leaderElectionTimingProblem({ leaseDurationMs, renewDeadlineMs, retryPeriodMs }: Config['leaderElection']): string | undefined {
  if (renewDeadlineMs >= leaseDurationMs) {
    return `--leader-elect-renew-deadline (${seconds(renewDeadlineMs)}) must be shorter than --leader-elect-lease-duration (${seconds(leaseDurationMs)}): a leader must stop before another replica may take its Lease`;
  }
  if (renewDeadlineMs <= acquireJitter * retryPeriodMs) {
    return `--leader-elect-retry-period (${seconds(retryPeriodMs)}) must be shorter than --leader-elect-renew-deadline (${seconds(renewDeadlineMs)}) / ${acquireJitter}: the leader must get more than one try to renew before its deadline`;
  }
  return undefined;
}
