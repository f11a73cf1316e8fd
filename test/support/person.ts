// What a person's browser does during a first authorization: open status.authorizationURL at the
// sandbox, answer its consent form, and follow the redirect to the operator's callback.

/** Consents (or refuses) at the sandbox; returns where the browser is sent next (the callback URL with a code). */
export async function consent(authorizationURL: string, decision: 'allow' | 'deny'): Promise<string> {
  const page = await fetch(authorizationURL);
  if (page.status !== 200 || !(await page.text()).includes('<form')) throw new Error(`the consent page answered ${page.status}`);
  const answer = await fetch(new URL('/oauth/authorize/decision', authorizationURL), {
    method: 'POST',
    redirect: 'manual',
    body: consentForm(authorizationURL, decision),
  });
  if (answer.status !== 302) throw new Error(`the consent decision answered ${answer.status}, not a redirect`);
  return answer.headers.get('location') ?? '';
}

/**
 * What the consent page's form posts: the request's fields (the PKCE challenge included, as its
 * hidden inputs carry it) and the decision.
 */
export function consentForm(authorizationURL: string, decision: 'allow' | 'deny'): URLSearchParams {
  const query = new URL(authorizationURL).searchParams;
  const form = new URLSearchParams();
  for (const name of ['client_id', 'redirect_uri', 'state', 'code_challenge', 'code_challenge_method']) {
    const value = query.get(name);
    if (value !== null) form.set(name, value);
  }
  form.set('decision', decision);
  return form;
}

/** A browser visit without following redirects. */
export async function visit(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { redirect: 'manual' });
  return { status: response.status, body: await response.text() };
}
