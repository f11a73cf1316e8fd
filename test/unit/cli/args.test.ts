// The plugin's command line: commands, names, flags and their defaults, and the errors for the rest.
import { describe, expect, it } from '@jest/globals';
import { parseCommandLine, parseTimeout } from '../../../src/cli/args.ts';
import { commandHelp, mainHelp } from '../../../src/cli/help.ts';

const target = (name: string, extra: Record<string, string | undefined> = {}) => ({ name, namespace: undefined, kubeconfig: undefined, context: undefined, ...extra });

describe('parseCommandLine', () => {
  it.each([
    [['status', 'crm'], { kind: 'status', target: target('crm'), operatorNamespace: 'oauthapp-system' }],
    [['status', 'crm', '-n', 'sales', '--operator-namespace', 'ops'], { kind: 'status', target: target('crm', { namespace: 'sales' }), operatorNamespace: 'ops' }],
    [['-n', 'sales', 'verify', 'crm'], { kind: 'verify', target: target('crm', { namespace: 'sales' }) }],
    [['verify', 'crm', '--namespace=sales', '--kubeconfig', '/k', '--context', 'prod'], { kind: 'verify', target: target('crm', { namespace: 'sales', kubeconfig: '/k', context: 'prod' }) }],
    [['authorize', 'crm'], { kind: 'authorize', target: target('crm'), timeoutMs: 600_000 }],
    [['authorize', 'crm', '--timeout', '90s'], { kind: 'authorize', target: target('crm'), timeoutMs: 90_000 }],
    [['rotate', 'crm'], { kind: 'rotate', target: target('crm'), timeoutMs: 120_000, wait: true }],
    [['rotate', 'crm', '--timeout=1h30m', '--no-wait'], { kind: 'rotate', target: target('crm'), timeoutMs: 5_400_000, wait: false }],
  ])('reads %j', (argv, expected) => {
    expect(parseCommandLine(argv)).toEqual(expected);
  });

  it.each([
    [['--help'], mainHelp()],
    [['-h'], mainHelp()],
    [[], undefined],
    [['status', '--help'], commandHelp('status')],
    [['-n', 'x', 'rotate', 'crm', '-h'], commandHelp('rotate')],
    // Help wins over a flag that would not parse.
    [['verify', '--bogus', '--help'], commandHelp('verify')],
  ])('gives help for %j', (argv, text) => {
    const parsed = parseCommandLine(argv);
    if (text === undefined) expect(parsed.kind).toBe('error');
    else expect(parsed).toEqual({ kind: 'help', text });
  });

  it('gives the version for --version', () => {
    expect(parseCommandLine(['--version'])).toEqual({ kind: 'version' });
  });

  it.each([
    [[], 'no command given'],
    [['stat', 'crm'], 'unknown command "stat": one of status, authorize, rotate, verify'],
    [['status'], "status needs the OAuthApp's name"],
    [['status', 'a', 'b'], 'status takes one OAuthApp name, not also "b"'],
    [['status', 'Bad_Name'], '"Bad_Name" is not a valid OAuthApp name'],
    [['status', '../secrets'], 'is not a valid OAuthApp name'],
    [['status', 'crm', '--timeout', '5m'], 'status does not take --timeout'],
    [['verify', 'crm', '--no-wait'], 'verify does not take --no-wait'],
    [['authorize', 'crm', '--operator-namespace', 'x'], 'authorize does not take --operator-namespace'],
    [['rotate', 'crm', '--timeout', '5'], 'invalid --timeout "5"'],
    [['rotate', 'crm', '--timeout', '0s'], 'invalid --timeout "0s"'],
    [['status', 'crm', '-n', 'Sales'], 'invalid --namespace "Sales"'],
    [['status', 'crm', '--operator-namespace', 'a/b'], 'invalid --operator-namespace "a/b"'],
    [['status', 'crm', '--kubeconfig='], '--kubeconfig must not be empty'],
    [['status', 'crm', '--bogus'], "Unknown option '--bogus'"],
    [['status', 'crm', '-n'], "Option '-n, --namespace <value>' argument missing"],
  ])('refuses %j', (argv, message) => {
    const parsed = parseCommandLine(argv);
    expect(parsed.kind).toBe('error');
    expect(parsed.kind === 'error' ? parsed.message : '').toContain(message);
  });
});

describe('parseTimeout', () => {
  it.each([
    ['10m', 600_000],
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['1500ms', 1_500],
  ])('reads %s', (text, ms) => {
    expect(parseTimeout(text)).toEqual({ ok: true, ms });
  });

  it.each(['', '10', '-1m', '1d', 'soon', '0m'])('refuses %j', (text) => {
    expect(parseTimeout(text).ok).toBe(false);
  });
});

describe('help', () => {
  it('lists every command, and each command names its own flags', () => {
    for (const command of ['status', 'authorize', 'rotate', 'verify'] as const) {
      expect(mainHelp()).toContain(`  ${command} NAME`);
      expect(commandHelp(command)).toContain(`Usage: kubectl oauthapp ${command} NAME [flags]`);
      expect(commandHelp(command)).toContain('--namespace');
    }
    expect(commandHelp('status')).toContain('--operator-namespace NS   where the operator runs (default: oauthapp-system)');
    expect(commandHelp('authorize')).toContain('(default: 10m)');
    expect(commandHelp('rotate')).toContain('(default: 2m)');
    expect(commandHelp('rotate')).toContain('--no-wait');
  });
});
