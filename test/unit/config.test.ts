// The operator's configuration: flags and their OAUTHAPP_* variables, defaults, and a one-line
// error naming the flag for any bad value.
import { describe, expect, it } from '@jest/globals';
import { envName, parseConfig, type Config, type ConfigResult, type ConfigSources } from '../../src/config.ts';

const parse = (sources: Partial<ConfigSources> = {}): ConfigResult => parseConfig({ argv: [], env: {}, podNamespace: undefined, ...sources });

function config(sources: Partial<ConfigSources> = {}): Config {
  const result = parse(sources);
  if (!result.ok) throw new Error(`expected a config, got: ${result.error}`);
  return result.config;
}

function error(sources: Partial<ConfigSources>): string {
  const result = parse(sources);
  if (result.ok) throw new Error(`expected an error, got ${JSON.stringify(result.config)}`);
  return result.error;
}

describe('parseConfig', () => {
  it('has a default for everything', () => {
    expect(config()).toEqual({
      kubeconfig: undefined,
      namespaces: [],
      operatorNamespace: 'oauthapp-system',
      leaderElect: true,
      leaderElection: { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      metricsAddr: ':8080',
      callbackAddr: ':8081',
      components: ['callback', 'controller'],
      callbackRateLimit: { max: 60, windowMs: 60_000 },
      callbackMaxConnections: 256,
      callbackTrustedProxies: [],
      logLevel: 'info',
      workers: 8,
      relistIntervalSeconds: 1800,
      providerConcurrency: 8,
      tokenRequestTimeoutSeconds: 10,
      shutdownTimeoutSeconds: 25,
      defaultTokenLifetimeSeconds: 3600,
      orphanSweepIntervalSeconds: 600,
      previousSecretGraceSeconds: 600,
      minRefreshIntervalSeconds: 30,
      providerHosts: ['*'],
      allowProviderNetworks: [],
      allowLoopbackProviders: false,
      allowPresetOverrides: false,
      proxy: { url: undefined, noProxy: [] },
    });
  });

  // Each flag: its name, a raw value, and what it becomes in Config.
  const settings: [string, string, Partial<Config>][] = [
    ['kubeconfig', '/home/ops/.kube/staging', { kubeconfig: '/home/ops/.kube/staging' }],
    ['namespaces', 'sales,billing', { namespaces: ['sales', 'billing'] }],
    ['operator-namespace', 'platform', { operatorNamespace: 'platform' }],
    ['leader-elect-lease-duration', '1m', { leaderElection: { leaseDurationMs: 60_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } }],
    ['leader-elect-renew-deadline', '12.5s', { leaderElection: { leaseDurationMs: 15_000, renewDeadlineMs: 12_500, retryPeriodMs: 2_000 } }],
    ['leader-elect-retry-period', '1s500ms', { leaderElection: { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 1_500 } }],
    ['metrics-addr', '127.0.0.1:9090', { metricsAddr: '127.0.0.1:9090' }],
    ['callback-addr', '[::1]:9443', { callbackAddr: '[::1]:9443' }],
    ['components', 'callback', { components: ['callback'] }],
    ['components', ' controller ,callback,controller', { components: ['controller', 'callback'] }],
    ['callback-rate-limit', '10/s', { callbackRateLimit: { max: 10, windowMs: 1_000 } }],
    ['callback-rate-limit', '600/h', { callbackRateLimit: { max: 600, windowMs: 3_600_000 } }],
    ['callback-max-connections', '64', { callbackMaxConnections: 64 }],
    ['callback-trusted-proxies', '10.0.0.0/8, fd00::/8,192.0.2.1', { callbackTrustedProxies: ['10.0.0.0/8', 'fd00::/8', '192.0.2.1'] }],
    ['log-level', 'debug', { logLevel: 'debug' }],
    ['workers', '16', { workers: 16 }],
    ['relist-interval', '600', { relistIntervalSeconds: 600 }],
    ['relist-interval', '0', { relistIntervalSeconds: 0 }],
    ['provider-concurrency', '2', { providerConcurrency: 2 }],
    ['token-request-timeout', '30', { tokenRequestTimeoutSeconds: 30 }],
    ['shutdown-timeout', '50', { shutdownTimeoutSeconds: 50 }],
    ['default-token-lifetime', '600', { defaultTokenLifetimeSeconds: 600 }],
    ['orphan-sweep-interval', '60', { orphanSweepIntervalSeconds: 60 }],
    ['min-refresh-interval', '5', { minRefreshIntervalSeconds: 5 }],
    ['previous-secret-grace', '60', { previousSecretGraceSeconds: 60 }],
    ['provider-hosts', '*.Example.com, login.acme.io,[fd00::1]', { providerHosts: ['*.example.com', 'login.acme.io', '[fd00::1]'] }],
    ['allow-provider-networks', '10.20.0.0/16,fd00::/8', { allowProviderNetworks: ['10.20.0.0/16', 'fd00::/8'] }],
  ];

  it.each(settings)('reads --%s from its flag', (flag, raw, expected) => {
    expect(config({ argv: [`--${flag}`, raw] })).toMatchObject(expected);
    expect(config({ argv: [`--${flag}=${raw}`] })).toMatchObject(expected);
  });

  it.each(settings)('reads --%s from its OAUTHAPP_ variable', (flag, raw, expected) => {
    const variable = `OAUTHAPP_${flag.toUpperCase().replaceAll('-', '_')}`;
    expect(envName(flag as Parameters<typeof envName>[0])).toBe(variable);
    expect(config({ env: { [variable]: raw } })).toMatchObject(expected);
  });

  it('lets a flag win over its variable', () => {
    const env = { OAUTHAPP_METRICS_ADDR: ':7070', OAUTHAPP_WORKERS: '3' };
    expect(config({ argv: ['--metrics-addr', ':9090', '--workers', '4'], env })).toMatchObject({ metricsAddr: ':9090', workers: 4 });
  });

  it('treats an empty variable as unset', () => {
    expect(config({ env: { OAUTHAPP_WORKERS: '', OAUTHAPP_LOG_LEVEL: '' } })).toMatchObject({ workers: 8, logLevel: 'info' });
  });

  it('trims the namespace list and drops empty entries', () => {
    expect(config({ argv: ['--namespaces', ' sales , billing,'] }).namespaces).toEqual(['sales', 'billing']);
  });

  describe('leader election', () => {
    it('is on with --leader-elect and off with --no-leader-elect', () => {
      expect(config({ argv: ['--leader-elect'] }).leaderElect).toBe(true);
      expect(config({ argv: ['--no-leader-elect'] }).leaderElect).toBe(false);
    });

    it.each([
      ['true', true],
      ['1', true],
      ['false', false],
      ['0', false],
    ])('reads OAUTHAPP_LEADER_ELECT=%s as %s', (raw, expected) => {
      expect(config({ env: { OAUTHAPP_LEADER_ELECT: raw } }).leaderElect).toBe(expected);
    });

    it('lets the flag win over the variable either way', () => {
      expect(config({ argv: ['--no-leader-elect'], env: { OAUTHAPP_LEADER_ELECT: 'true' } }).leaderElect).toBe(false);
      expect(config({ argv: ['--leader-elect'], env: { OAUTHAPP_LEADER_ELECT: 'false' } }).leaderElect).toBe(true);
    });

    it('refuses a renew deadline not shorter than the lease duration, naming both flags', () => {
      const message = error({ argv: ['--leader-elect-lease-duration=10s'] });
      expect(message).toContain('--leader-elect-renew-deadline (10s) must be shorter than --leader-elect-lease-duration (10s)');
      expect(message).not.toContain('\n');
    });

    // client-go's rule: the leader retries after retryPeriod × up to 1.2 and must get a second try in.
    it('refuses a retry period not shorter than the renew deadline / 1.2, naming both flags', () => {
      expect(error({ env: { OAUTHAPP_LEADER_ELECT_RETRY_PERIOD: '9s' } })).toContain('--leader-elect-retry-period (9s) must be shorter than --leader-elect-renew-deadline (10s) / 1.2');
      expect(parse({ argv: ['--leader-elect-retry-period=8s'] }).ok).toBe(true);
    });

    it('takes timings the leader elector accepts', async () => {
      const { createLeaderElector } = await import('../../src/kube/leader-election.ts');
      const http = { json: () => Promise.reject(new Error('not called')) };
      for (const argv of [[], ['--leader-elect-lease-duration=1m', '--leader-elect-renew-deadline=50s', '--leader-elect-retry-period=41s']]) {
        expect(() => createLeaderElector({ http, namespace: 'oauthapp-system', identity: 'pod-0', ...config({ argv }).leaderElection })).not.toThrow();
      }
    });
  });

  // The kubelet kills the container at the grace period: a budget that reaches it loses the
  // refresh results the stop was meant to store. 5 s are left for the process to exit.
  it.each(['deploy/base/deployment.yaml', 'deploy/overlays/split-callback/callback-deployment.yaml'])('stops at least 5 s before the terminationGracePeriodSeconds %s gives its pod', async (file) => {
    const { readFile } = await import('node:fs/promises');
    const { parse } = await import('yaml');
    const { spec } = (parse(await readFile(new URL(`../../${file}`, import.meta.url), 'utf8')) as { spec: { template: { spec: { terminationGracePeriodSeconds?: number; containers: Array<{ args: string[] }> } } } }).spec.template;
    const grace = spec.terminationGracePeriodSeconds ?? 30; // the Kubernetes default
    expect(config({ argv: spec.containers[0]?.args ?? [] }).shutdownTimeoutSeconds).toBeLessThanOrEqual(grace - 5);
  });

  describe('the kubeconfig', () => {
    it('falls back to $KUBECONFIG', () => {
      expect(config({ env: { KUBECONFIG: '/home/ops/.kube/config' } }).kubeconfig).toBe('/home/ops/.kube/config');
    });

    it('prefers the flag and OAUTHAPP_KUBECONFIG over $KUBECONFIG', () => {
      const env = { KUBECONFIG: '/home/ops/.kube/config', OAUTHAPP_KUBECONFIG: '/etc/oauthapp/kubeconfig' };
      expect(config({ env }).kubeconfig).toBe('/etc/oauthapp/kubeconfig');
      expect(config({ argv: ['--kubeconfig', '/tmp/kind'], env }).kubeconfig).toBe('/tmp/kind');
    });

    it('is undefined (in-cluster) without flag or variables', () => {
      expect(config().kubeconfig).toBeUndefined();
    });
  });

  describe('the operator namespace', () => {
    it("defaults to the pod's namespace", () => {
      expect(config({ podNamespace: 'oauthapp-prod' }).operatorNamespace).toBe('oauthapp-prod');
    });

    it("defaults to oauthapp-system outside a pod", () => {
      expect(config({ podNamespace: undefined }).operatorNamespace).toBe('oauthapp-system');
    });

    it("prefers the flag and its variable over the pod's namespace", () => {
      expect(config({ podNamespace: 'oauthapp-prod', env: { OAUTHAPP_OPERATOR_NAMESPACE: 'from-env' } }).operatorNamespace).toBe('from-env');
      expect(config({ podNamespace: 'oauthapp-prod', argv: ['--operator-namespace', 'from-flag'] }).operatorNamespace).toBe('from-flag');
    });
  });

  // Each bad value, with the flag its one-line error must name.
  const bad: [string, string][] = [
    ['namespaces', 'Sales'],
    ['namespaces', 'sales,billing_team'],
    ['namespaces', ','],
    ['namespaces', ' , '], // a list that trims to nothing would silently mean all namespaces
    ['operator-namespace', '-system'],
    ['leader-elect-lease-duration', '15'], // a bare number: seconds or milliseconds? Go's flags ask for a unit too
    ['leader-elect-lease-duration', '0s'],
    ['leader-elect-renew-deadline', '10 s'],
    ['leader-elect-retry-period', '-2s'],
    ['leader-elect-retry-period', '2d'],
    ['metrics-addr', '8080'],
    ['metrics-addr', 'localhost'],
    ['metrics-addr', ':65536'],
    ['metrics-addr', 'http://0.0.0.0:8080'],
    ['callback-addr', ':port'],
    ['callback-addr', ':123456'],
    ['components', 'webhook'],
    ['components', 'callback,web'],
    ['components', ' , '], // a list that trims to nothing would silently run nothing
    ['callback-rate-limit', '60'],
    ['callback-rate-limit', '0/min'],
    ['callback-rate-limit', '60/day'],
    ['callback-rate-limit', '-1/s'],
    ['callback-max-connections', '0'],
    ['callback-max-connections', '65537'],
    ['callback-trusted-proxies', 'ingress.example.com'],
    ['callback-trusted-proxies', '10.0.0.0/33'],
    ['callback-trusted-proxies', '10.0.0.0/8/8'],
    ['log-level', 'verbose'],
    ['log-level', 'INFO'],
    ['workers', '0'],
    ['workers', '1.5'],
    ['workers', 'many'],
    ['workers', '257'],
    ['relist-interval', '-1'],
    ['relist-interval', '90000'],
    ['relist-interval', '1.5'],
    ['provider-concurrency', '0'],
    ['provider-concurrency', '1025'],
    ['token-request-timeout', '0'],
    ['token-request-timeout', '301'],
    ['token-request-timeout', '-5'],
    ['shutdown-timeout', '0'],
    ['shutdown-timeout', '2.5'],
    ['shutdown-timeout', '3601'],
    ['default-token-lifetime', '0'],
    ['orphan-sweep-interval', '0'],
    ['min-refresh-interval', '0'], // no floor at all is not an option: a provider could make it spin
    ['min-refresh-interval', '0.5'],
    ['default-token-lifetime', '1.5'],
    ['provider-hosts', ','], // a list that trims to nothing would silently mean no host at all
    ['provider-hosts', 'https://idp.example.com'],
    ['provider-hosts', 'idp.example.com:443'],
    ['allow-provider-networks', '10.0.0.0/33'],
    ['allow-provider-networks', 'internal'],
  ];

  it.each(bad)('refuses --%s %j with an error naming the flag', (flag, raw) => {
    const message = error({ argv: [`--${flag}=${raw}`] });
    expect(message).toContain(`--${flag}`);
    expect(message).not.toContain('\n');
  });

  it.each(bad)('refuses --%s %j from its variable with an error naming the flag', (flag, raw) => {
    const variable = `OAUTHAPP_${flag.toUpperCase().replaceAll('-', '_')}`;
    const message = error({ env: { [variable]: raw } });
    expect(message).toContain(`--${flag}`);
    expect(message).toContain(variable);
    expect(message).not.toContain('\n');
  });

  it.each(['yes', 'on', 'TRUE'])('refuses OAUTHAPP_LEADER_ELECT=%s with an error naming --leader-elect', (raw) => {
    expect(error({ env: { OAUTHAPP_LEADER_ELECT: raw } })).toContain('--leader-elect');
  });

  describe('where token requests may go', () => {
    it('allows loopback providers and preset overrides only when asked, by flag or variable', () => {
      expect(config({ argv: ['--allow-loopback-providers', '--allow-preset-overrides'] })).toMatchObject({ allowLoopbackProviders: true, allowPresetOverrides: true });
      expect(config({ env: { OAUTHAPP_ALLOW_LOOPBACK_PROVIDERS: 'true', OAUTHAPP_ALLOW_PRESET_OVERRIDES: '1' } })).toMatchObject({ allowLoopbackProviders: true, allowPresetOverrides: true });
    });

    it('lets a later --no- flag turn them off again (test harnesses add them first)', () => {
      expect(config({ argv: ['--allow-loopback-providers', '--no-allow-loopback-providers'] })).toMatchObject({ allowLoopbackProviders: false });
      expect(config({ argv: ['--no-allow-preset-overrides'], env: { OAUTHAPP_ALLOW_PRESET_OVERRIDES: 'true' } })).toMatchObject({ allowPresetOverrides: false });
    });
  });

  it('says what a bad address should look like', () => {
    expect(error({ argv: ['--metrics-addr', 'localhost'] })).toMatch(/HOST:PORT/);
  });

  it('refuses an unknown flag', () => {
    expect(error({ argv: ['--metrics-address', ':9090'] })).toContain('--metrics-address');
  });

  it('refuses a positional argument', () => {
    expect(parse({ argv: ['start'] }).ok).toBe(false);
  });

  it('refuses a flag without its value', () => {
    expect(error({ argv: ['--metrics-addr'] })).toContain('--metrics-addr');
  });

  it('refuses an HTTPS_PROXY that is no http:// or https:// URL, naming the variable', () => {
    expect(error({ env: { HTTPS_PROXY: 'socks5://proxy:1080' } })).toContain('HTTPS_PROXY');
  });

  it('reads the egress proxy from HTTPS_PROXY and NO_PROXY', () => {
    expect(config({ env: { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: '.svc' } }).proxy).toEqual({ url: new URL('http://proxy:3128'), noProxy: ['.svc'] });
  });

  it('ignores variables for flags it does not have', () => {
    expect(parse({ env: { OAUTHAPP_UNKNOWN: 'x' } }).ok).toBe(true);
  });
});

describe('the callback flags', () => {
  it("default to the callback server's own defaults", async () => {
    const { defaultCallbackLimits } = await import('../../src/http/callback-server.ts');
    const { callbackRateLimit, callbackMaxConnections } = config();
    expect({ rateLimit: callbackRateLimit, maxConnections: callbackMaxConnections }).toEqual({
      rateLimit: defaultCallbackLimits.rateLimit,
      maxConnections: defaultCallbackLimits.maxConnections,
    });
  });

  it.each(['deploy/base/deployment.yaml', 'deploy/overlays/split-callback/callback-deployment.yaml'])('are what %s passes, and its args parse', async (file) => {
    const { readFile } = await import('node:fs/promises');
    const { parse } = await import('yaml');
    const deployment = parse(await readFile(new URL(`../../${file}`, import.meta.url), 'utf8')) as { spec: { template: { spec: { containers: Array<{ args: string[] }> } } } };
    const args = deployment.spec.template.spec.containers[0]?.args ?? [];
    expect(args).toEqual(expect.arrayContaining(['--callback-rate-limit=60/min', '--callback-max-connections=256']));
    const result = parseConfig({ argv: args, env: {}, podNamespace: undefined });
    expect(result.ok ? 'ok' : result.error).toBe('ok');
  });
});
