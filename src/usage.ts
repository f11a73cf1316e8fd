// `--help` and `--version`: the help is written from the flags table in config.ts, so it lists
// every flag with the default parseConfig applies.
import { envName, flags } from './config.ts';

export type InfoRequest = 'help' | 'version';

/** `--help` (`-h`) or `--version` anywhere before `--`, whatever else is on the line. */
export function infoRequest(argv: readonly string[]): InfoRequest | undefined {
  const options = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length);
  if (options.includes('--help') || options.includes('-h')) return 'help';
  if (options.includes('--version')) return 'version';
  return undefined;
}

const width = 100;
const indent = ' '.repeat(6);

function wrap(text: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, indent + line];
}

export function usage(): string {
  const entries = Object.entries(flags).map(([name, flag]) => {
    const boolean = flag.type === 'boolean';
    const syntax = boolean ? `--${name}, --no-${name}` : `--${name} ${'arg' in flag ? flag.arg : 'VALUE'}`;
    const defaultText = 'defaultText' in flag ? flag.defaultText : boolean ? (flag.default === 'true' ? 'on' : 'off') : flag.default;
    return [`  ${syntax}`, ...wrap(`${flag.help} (default: ${defaultText}; $${envName(name as keyof typeof flags)})`)].join('\n');
  });
  return [
    'Usage: oauthapp-operator [flags]',
    '',
    'Keeps OAuth 2.0 app credentials and fresh access tokens in Kubernetes Secrets, for OAuthApp resources.',
    'Every flag is also an environment variable (shown after its default); a flag wins.',
    'Token requests honour HTTPS_PROXY, NO_PROXY (and their lowercase forms) and NODE_EXTRA_CA_CERTS.',
    '',
    'Flags:',
    ...entries,
    '  --help, -h',
    `${indent}print this help and exit`,
    '  --version',
    `${indent}print the version and exit`,
    '',
  ].join('\n');
}
