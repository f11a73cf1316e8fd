// The callback's answers: small HTML pages a person reads after the provider sent them back.
// Every value is escaped here; callers pass plain text. Callers also decide what may be shown at
// all: the authorization code and the state never reach these functions.
import { escapeHtml } from './html.ts';

/** Sent with every page: nothing cached, nothing leaked through Referer, nothing loaded or run. */
export const pageHeaders: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

export interface AppRef {
  namespace: string;
  name: string;
}

const style = 'body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}code{overflow-wrap:anywhere}';

const page = (title: string, paragraphs: readonly string[]): string =>
  `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="robots" content="noindex"><title>${escapeHtml(title)}</title><style>${style}</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
${paragraphs.map((html) => `<p>${html}</p>`).join('\n')}
</body>
</html>
`;

const appName = (app: AppRef): string => `<code>${escapeHtml(`${app.namespace}/${app.name}`)}</code>`;

/** The authorization went through: the operator holds the app's tokens. */
export const authorizedPage = (app: AppRef): string =>
  page('Authorization complete', [
    `The operator now holds the tokens for OAuthApp ${appName(app)} and keeps them fresh.`,
    'You can close this window.',
  ]);

export interface FailedAuthorization {
  /** A sentence that says what went wrong. */
  message: string;
  /** A stable code (`state_expired`), shown for support. */
  reason: string;
  app?: AppRef | undefined;
  /** What the provider said, when it refused (already capped by the caller). */
  provider?: { error: string; description?: string | undefined } | undefined;
}

/** The callback was understood, but the authorization did not go through. */
export const failedPage = ({ message, reason, app, provider }: FailedAuthorization): string =>
  page('Authorization failed', [
    escapeHtml(message),
    ...(app === undefined ? [] : [`OAuthApp: ${appName(app)}`]),
    ...(provider === undefined
      ? []
      : [`The provider answered <code>${escapeHtml(provider.error)}</code>${provider.description === undefined ? '' : `: ${escapeHtml(provider.description)}`}`]),
    `Reason: <code>${escapeHtml(reason)}</code>`,
  ]);

/** A request this server does not serve or cannot read (bad path, method, query, headers). */
export const problemPage = (title: string, message: string): string => page(title, [escapeHtml(message)]);
