// --help and --version: help written from the flags table, both exiting 0 before any flag is read.
import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { envName, flags, parseConfig } from '../../src/config.ts';
import { infoRequest, usage } from '../../src/usage.ts';
import { operatorVersion } from '../../src/version.ts';

const flagNames = Object.keys(flags) as (keyof typeof flags)[];

describe('usage', () => {
  it('lists every flag with its variable and meaning', () => {
    const help = usage().replaceAll(/\n +/g, ' ');
    for (const name of flagNames) {
      expect(help).toContain(`--${name}`);
      expect(help).toContain(`$${envName(name)})`);
      expect(help).toContain(flags[name].help);
    }
  });

  // A default shown in --help is the one parseConfig applies: both read it from the flags table.
  it('shows each default as it would be typed, and that default parses', () => {
    const help = usage().replaceAll(/\n +/g, ' ');
    for (const [name, flag] of Object.entries(flags)) {
      if (!('default' in flag)) continue;
      expect(help).toContain(`(default: ${flag.type === 'boolean' ? (flag.default === 'true' ? 'on' : 'off') : flag.default};`);
      expect(parseConfig({ argv: [], env: { [envName(name as keyof typeof flags)]: flag.default }, podNamespace: undefined }).ok).toBe(true);
    }
  });

  it("is what README's Configuration table lists, flag for flag", async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
    const documented = [...table.matchAll(/^\| `--([a-z-]+)/gm)].map(([, name]) => name);
    expect(documented.sort()).toEqual([...flagNames].sort());
  });
});

describe('infoRequest', () => {
  it.each([
    [['--help'], 'help'],
    [['-h'], 'help'],
    [['--workers=0', '--help'], 'help'],
    [['--version'], 'version'],
    [['--help', '--version'], 'help'],
    [['--workers', '4'], undefined],
    [['--', '--help'], undefined],
  ])('reads %j as %s', (argv, expected) => {
    expect(infoRequest(argv)).toBe(expected);
  });
});

describe('the oauthapp-operator command', () => {
  const run = (args: string[]) => promisify(execFile)(process.execPath, [fileURLToPath(new URL('../../src/main.ts', import.meta.url)), ...args], { env: { PATH: process.env.PATH ?? '' } });

  it('prints the help on --help and exits 0', async () => {
    const { stdout } = await run(['--help']);
    expect(stdout).toBe(usage());
  });

  it('prints the package version on --version and exits 0', async () => {
    const { stdout } = await run(['--version']);
    expect(stdout).toBe(`oauthapp-operator ${operatorVersion}\n`);
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(operatorVersion).toBe(version);
  });
});
