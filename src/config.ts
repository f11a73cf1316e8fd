// Flags and their OAUTHAPP_* environment variables, validated with zod. A flag wins over its
// variable; a bad value is reported in one line that names the flag and what it accepts.
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseCIDR } from './oauth/address-policy.ts';

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

/** Each flag: its schema, and its default when neither flag nor variable is set. */
const flags = {
  kubeconfig: { schema: z.string().min(1, 'must be a path'), type: 'string' },
  namespaces: {
    schema: z
      .string()
      .transform((value) => value.split(',').map((name) => name.trim()).filter(Boolean))
      .pipe(z.array(namespaceName).min(1, 'must name at least one namespace (omit the flag to watch all)')),
    type: 'string',
  },
  'operator-namespace': { schema: namespaceName, type: 'string' },
  'leader-elect': { schema: booleanFlag, type: 'boolean' },
  'metrics-addr': { schema: hostPort, type: 'string' },
  'callback-addr': { schema: hostPort, type: 'string' },
  components: { schema: components, type: 'string' },
  'callback-rate-limit': { schema: rateLimit, type: 'string' },
  'callback-max-connections': { schema: positiveInt(65_536), type: 'string' },
  'callback-trusted-proxies': {
    schema: z
      .string()
      .transform((value) => value.split(',').map((item) => item.trim()).filter(Boolean))
      .pipe(z.array(proxyAddress)),
    type: 'string',
  },
  'log-level': { schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), type: 'string' },
  workers: { schema: positiveInt(256), type: 'string' },
  'relist-interval': { schema: z.coerce.number().int('must be a whole number').min(0, 'must be at least 0 (0: never)').max(24 * 3600, `must be at most ${24 * 3600}`), type: 'string' },
  'provider-concurrency': { schema: positiveInt(1024), type: 'string' },
  'token-request-timeout': { schema: positiveInt(300), type: 'string' },
  'shutdown-timeout': { schema: positiveInt(3600), type: 'string' },
  'default-token-lifetime': { schema: positiveInt(7 * 24 * 3600), type: 'string' },
  'orphan-sweep-interval': { schema: positiveInt(24 * 3600), type: 'string' },
  'min-refresh-interval': { schema: positiveInt(24 * 3600), type: 'string' },
  'provider-hosts': { schema: z.string().transform(commaList).pipe(z.array(hostGlob).min(1, 'must name at least one host glob (* for any host)')), type: 'string' },
  'allow-provider-networks': { schema: z.string().transform(commaList).pipe(z.array(cidr)), type: 'string' },
  'allow-loopback-providers': { schema: booleanFlag, type: 'boolean' },
  'allow-preset-overrides': { schema: booleanFlag, type: 'boolean' },
} as const;

type FlagName = keyof typeof flags;

export interface Config {
  /** undefined: in-cluster configuration. */
  kubeconfig: string | undefined;
  /** Empty: all namespaces. */
  namespaces: string[];
  operatorNamespace: string;
  leaderElect: boolean;
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
  /** Host globs a custom provider or an overridden preset may use (`*`: any host). */
  providerHosts: string[];
  /** Private or link-local networks (CIDR) token requests may connect to. */
  allowProviderNetworks: string[];
  /** Token requests may connect to loopback addresses (development and tests only). */
  allowLoopbackProviders: boolean;
  /** spec.tokenURL / spec.authorizeURL may replace a preset's endpoints. */
  allowPresetOverrides: boolean;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; error: string };

export const envName = (flag: FlagName) => `OAUTHAPP_${flag.toUpperCase().replaceAll('-', '_')}`;

export interface ConfigSources {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** The namespace the pod runs in, when it runs in one (the service-account namespace file). */
  podNamespace: string | undefined;
}

export function parseConfig({ argv, env, podNamespace }: ConfigSources): ConfigResult {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(Object.entries(flags).map(([name, flag]) => [name, { type: flag.type }]));
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false, allowNegative: true }).values;
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }

  const read = <N extends FlagName>(name: N): { ok: true; value: z.output<(typeof flags)[N]['schema']> | undefined } | { ok: false; error: string } => {
    const raw = values[name] ?? env[envName(name)];
    if (raw === undefined || raw === '') return { ok: true, value: undefined };
    const parsed = flags[name].schema.safeParse(raw);
    if (parsed.success) return { ok: true, value: parsed.data as z.output<(typeof flags)[N]['schema']> };
    const problem = parsed.error.issues[0]?.message ?? 'is invalid';
    return { ok: false, error: `invalid --${name} (${envName(name)}) ${JSON.stringify(String(raw))}: ${problem}` };
  };

  const results = {
    kubeconfig: read('kubeconfig'),
    namespaces: read('namespaces'),
    operatorNamespace: read('operator-namespace'),
    leaderElect: read('leader-elect'),
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
    providerHosts: read('provider-hosts'),
    allowProviderNetworks: read('allow-provider-networks'),
    allowLoopbackProviders: read('allow-loopback-providers'),
    allowPresetOverrides: read('allow-preset-overrides'),
  };
  for (const result of Object.values(results)) if (!result.ok) return result;
  const value = <T>(result: { ok: true; value: T | undefined } | { ok: false; error: string }) => (result.ok ? result.value : undefined);

  return {
    ok: true,
    config: {
      kubeconfig: value(results.kubeconfig) ?? (env.KUBECONFIG || undefined),
      namespaces: value(results.namespaces) ?? [],
      operatorNamespace: value(results.operatorNamespace) ?? (podNamespace || 'oauthapp-system'),
      leaderElect: value(results.leaderElect) ?? true,
      metricsAddr: value(results.metricsAddr) ?? ':8080',
      callbackAddr: value(results.callbackAddr) ?? ':8081',
      components: value(results.components) ?? ['callback', 'controller'],
      // The callback server's defaults (src/http/callback-server.ts, defaultCallbackLimits).
      callbackRateLimit: value(results.callbackRateLimit) ?? { max: 60, windowMs: 60_000 },
      callbackMaxConnections: value(results.callbackMaxConnections) ?? 256,
      callbackTrustedProxies: value(results.callbackTrustedProxies) ?? [],
      logLevel: value(results.logLevel) ?? 'info',
      workers: value(results.workers) ?? 8,
      // Each relist is paged: it costs one page of memory, not a second copy of the cache.
      relistIntervalSeconds: value(results.relistIntervalSeconds) ?? 1800,
      providerConcurrency: value(results.providerConcurrency) ?? 8,
      tokenRequestTimeoutSeconds: value(results.tokenRequestTimeoutSeconds) ?? 10,
      // deploy/base/deployment.yaml gives 30 s: 5 s left for the process to exit.
      shutdownTimeoutSeconds: value(results.shutdownTimeoutSeconds) ?? 25,
      // Pipedrive's access tokens live an hour.
      defaultTokenLifetimeSeconds: value(results.defaultTokenLifetimeSeconds) ?? 3600,
      orphanSweepIntervalSeconds: value(results.orphanSweepIntervalSeconds) ?? 600,
      minRefreshIntervalSeconds: value(results.minRefreshIntervalSeconds) ?? 30,
      providerHosts: value(results.providerHosts) ?? ['*'],
      allowProviderNetworks: value(results.allowProviderNetworks) ?? [],
      allowLoopbackProviders: value(results.allowLoopbackProviders) ?? false,
      allowPresetOverrides: value(results.allowPresetOverrides) ?? false,
    },
  };
}
