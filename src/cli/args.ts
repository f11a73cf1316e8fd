// The command line, read with node:util parseArgs: which command, on which app, with which flags.
// A result, never a throw: the entry point turns an error into one line and exit code 1.
import { parseArgs } from 'node:util';
import { durationPattern, objectName, parseDurationMs } from '../api/fields.ts';
import { commandHelp, commandNames, mainHelp, type CommandName } from './help.ts';

export interface Target {
  readonly name: string;
  /** From -n/--namespace; undefined: the kubeconfig context's namespace, else `default`. */
  readonly namespace: string | undefined;
  readonly kubeconfig: string | undefined;
  readonly context: string | undefined;
}

export type Invocation =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version' }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'status'; readonly target: Target; readonly operatorNamespace: string }
  | { readonly kind: 'authorize'; readonly target: Target; readonly timeoutMs: number }
  | { readonly kind: 'rotate'; readonly target: Target; readonly timeoutMs: number; readonly wait: boolean }
  | { readonly kind: 'verify'; readonly target: Target };

export const defaults = { operatorNamespace: 'oauthapp-system', authorizeTimeout: '10m', rotateTimeout: '2m' } as const;

const options = {
  namespace: { type: 'string', short: 'n' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  'operator-namespace': { type: 'string' },
  timeout: { type: 'string' },
  'no-wait': { type: 'boolean' },
} as const;

/** Flags that only some commands take. */
const commandFlags: Readonly<Record<CommandName, readonly string[]>> = {
  status: ['operator-namespace'],
  authorize: ['timeout'],
  rotate: ['timeout', 'no-wait'],
  verify: [],
};
const commandOnly = new Set(Object.values(commandFlags).flat());

const namespacePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const isCommand = (word: string | undefined): word is CommandName => (commandNames as readonly string[]).includes(word ?? '');

export function parseCommandLine(argv: readonly string[]): Invocation {
  const beforeDashes = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length);
  // Help wins over anything else on the line, even a flag that would not parse.
  if (beforeDashes.includes('--help') || beforeDashes.includes('-h')) {
    const command = beforeDashes.find(isCommand);
    return { kind: 'help', text: command ? commandHelp(command) : mainHelp() };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs's TypeErrors (ERR_PARSE_ARGS_*) say which option and why; not `instanceof Error` across realms (jest's vm).
    const message = typeof error === 'object' && error !== null && 'message' in error ? String(error.message).split('\n')[0]?.replace(/\. To specify a positional argument.*$/, '') : '';
    return { kind: 'error', message: message || 'invalid arguments' };
  }
  const { values, positionals } = parsed;
  if (values.version) return { kind: 'version' };
  const [command, name, ...extra] = positionals;
  if (command === undefined) return { kind: 'error', message: 'no command given: run "kubectl oauthapp --help"' };
  if (!isCommand(command)) return { kind: 'error', message: `unknown command ${JSON.stringify(command)}: one of ${commandNames.join(', ')}` };
  if (name === undefined) return { kind: 'error', message: `${command} needs the OAuthApp's name: kubectl oauthapp ${command} NAME` };
  if (extra.length > 0) return { kind: 'error', message: `${command} takes one OAuthApp name, not also ${extra.map((word) => JSON.stringify(word)).join(' ')}` };
  if (!objectName.safeParse(name).success) return { kind: 'error', message: `${JSON.stringify(name)} is not a valid OAuthApp name (a lowercase RFC 1123 subdomain)` };
  for (const flag of Object.keys(values)) {
    if (commandOnly.has(flag) && !commandFlags[command].includes(flag)) return { kind: 'error', message: `${command} does not take --${flag}` };
  }
  for (const flag of ['namespace', 'operator-namespace'] as const) {
    const value = values[flag];
    if (value !== undefined && !(value.length <= 63 && namespacePattern.test(value))) return { kind: 'error', message: `invalid --${flag} ${JSON.stringify(value)}: not a namespace name` };
  }
  for (const flag of ['kubeconfig', 'context'] as const) {
    if (values[flag] === '') return { kind: 'error', message: `--${flag} must not be empty` };
  }
  const target: Target = { name, namespace: values.namespace, kubeconfig: values.kubeconfig, context: values.context };
  switch (command) {
    case 'status':
      return { kind: 'status', target, operatorNamespace: values['operator-namespace'] ?? defaults.operatorNamespace };
    case 'verify':
      return { kind: 'verify', target };
    case 'authorize':
    case 'rotate': {
      const timeout = parseTimeout(values.timeout ?? (command === 'authorize' ? defaults.authorizeTimeout : defaults.rotateTimeout));
      if (!timeout.ok) return { kind: 'error', message: timeout.message };
      return command === 'authorize' ? { kind: 'authorize', target, timeoutMs: timeout.ms } : { kind: 'rotate', target, timeoutMs: timeout.ms, wait: values['no-wait'] !== true };
    }
  }
}

/** A Go-style duration (90s, 10m, 1h30m), as kubectl's --timeout takes it; it must be positive. */
export function parseTimeout(text: string): { ok: true; ms: number } | { ok: false; message: string } {
  const ms = durationPattern.test(text) ? parseDurationMs(text) : Number.NaN;
  if (!(ms > 0)) return { ok: false, message: `invalid --timeout ${JSON.stringify(text)}: a positive duration such as 90s, 10m or 1h30m` };
  return { ok: true, ms };
}
