import { escapeHtml } from '../http/html.ts';

const page = (title: string, body: string): string =>
  `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;

/** The page for a request the sandbox refuses to redirect anywhere. */
export const errorPage = (problem: string): string =>
  page('Authorization failed', `<p id="error">${escapeHtml(problem)}</p>`);

export interface ConsentRequest {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly state: string | undefined;
  readonly scope: string;
  /** PKCE (RFC 7636): carried through the consent form to the decision. */
  readonly codeChallenge?: string | undefined;
}

const hidden = (name: string, value: string): string =>
  `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`;

/** Who consents: company 1, user 1 unless changed, so that one browser can act for several companies. */
const installerFields = `<p><label>Company id <input type="number" name="company_id" value="1" min="1" required></label>
<label>User id <input type="number" name="user_id" value="1" min="1" required></label></p>`;

/** The consent screen: a form that posts the decision back with the request's fields. */
export const consentPage = (request: ConsentRequest): string =>
  page(
    'Sandbox: authorize app',
    `<p>App <code>${escapeHtml(request.clientId)}</code> asks for access (scope: <code>${escapeHtml(request.scope)}</code>).</p>
<form method="post" action="/oauth/authorize/decision">
${hidden('client_id', request.clientId)}
${hidden('redirect_uri', request.redirectUri)}
${request.state === undefined ? '' : hidden('state', request.state)}
${request.codeChallenge === undefined ? '' : `${hidden('code_challenge', request.codeChallenge)}\n${hidden('code_challenge_method', 'S256')}`}
${installerFields}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );

export interface MarketplaceInstallRequest {
  readonly clientId: string;
  readonly scope: string;
  readonly companyId: number;
  readonly userId: number;
}

/**
 * The Marketplace's "Install now" for one company: the button posts to /marketplace/install,
 * which sends the browser to the app's callback with a code and nothing else.
 */
export const marketplacePage = (request: MarketplaceInstallRequest): string =>
  page(
    `Install ${request.clientId} for company ${request.companyId}`,
    `<p>User ${request.userId} of company ${request.companyId} installs app <code>${escapeHtml(request.clientId)}</code> (scope: <code>${escapeHtml(request.scope)}</code>).</p>
<form method="post" action="/marketplace/install">
${hidden('client_id', request.clientId)}
${hidden('company_id', String(request.companyId))}
${hidden('user_id', String(request.userId))}
<button type="submit">Install</button>
</form>`,
  );
