// The plugin's --help texts, one per command.

const common = [
  '  -n, --namespace NS        the OAuthApp\'s namespace (default: the kubeconfig context\'s, else default)',
  '      --kubeconfig PATH     kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)',
  '      --context NAME        kubeconfig context (default: its current-context)',
  '  -h, --help                print this help',
];

const lines = (...parts: string[]) => `${parts.join('\n')}\n`;

export const commandNames = ['status', 'authorize', 'rotate', 'verify'] as const;
export type CommandName = (typeof commandNames)[number];

export function mainHelp(): string {
  return lines(
    'kubectl oauthapp: inspect and operate OAuthApps (oauthapp.dev/v1alpha1) of the oauthapp-operator',
    '',
    'Usage: kubectl oauthapp COMMAND NAME [flags]',
    '',
    'Commands:',
    '  status NAME      conditions, token expiry, next refresh, last failure, target Secret, leading replica',
    '  authorize NAME   print the authorization URL and wait until a person has authorized the app',
    '  rotate NAME      refresh the tokens now (oauthapp.dev/rotate) and wait for the new token',
    '  verify NAME      ask the provider whether the client secret is accepted, without spending a refresh',
    '',
    'Flags:',
    ...common,
    '      --version             print the version',
    '',
    'Run "kubectl oauthapp COMMAND --help" for a command\'s flags.',
  );
}

export function commandHelp(command: CommandName): string {
  switch (command) {
    case 'status':
      return lines(
        'Usage: kubectl oauthapp status NAME [flags]',
        '',
        'Shows an OAuthApp\'s conditions, when its access token expires, when it is refreshed next, the last',
        'failed token request, its target Secret, and which operator replica leads (the holder of the Lease',
        'oauthapp-operator; "unknown" when it cannot be read).',
        '',
        'Flags:',
        '      --operator-namespace NS   where the operator runs (default: oauthapp-system)',
        ...common,
      );
    case 'authorize':
      return lines(
        'Usage: kubectl oauthapp authorize NAME [flags]',
        '',
        'Prints status.authorizationURL for a person to open, then waits until the app is Authorized=True.',
        'An app that is already authorized is reported as such (exit 0). The URL works once, for a few',
        'minutes, and connects whoever opens it: do not share it.',
        '',
        'Flags:',
        '      --timeout DURATION    how long to wait, e.g. 90s, 10m, 1h (default: 10m)',
        ...common,
      );
    case 'rotate':
      return lines(
        'Usage: kubectl oauthapp rotate NAME [flags]',
        '',
        'Sets the annotation oauthapp.dev/rotate to the current time, so the operator refreshes the tokens',
        'now (or when --min-refresh-interval allows), waits until status.lastRotateRequest shows it acted',
        'on that value with Ready=True, and prints the new token\'s expiry.',
        '',
        'Flags:',
        '      --timeout DURATION    how long to wait (default: 2m)',
        '      --no-wait             only set the annotation',
        ...common,
      );
    case 'verify':
      return lines(
        'Usage: kubectl oauthapp verify NAME [flags]',
        '',
        'Asks the provider whether it accepts the app\'s client secret (from spec.clientSecretRef) now,',
        'with a token request whose refresh token no provider issued: no grant is used or spent.',
        'Prints "accepted" (exit 0), "rejected" with the provider\'s words (exit 1), or "unknown" with the',
        'reason (exit 2). Runs from this machine: HTTPS_PROXY and NO_PROXY apply. Prints no secret value.',
        '',
        'Flags:',
        ...common,
      );
  }
}
