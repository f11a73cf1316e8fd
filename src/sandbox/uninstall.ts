import type { Client } from './clients.ts';
import type { SandboxContext } from './context.ts';
import { SandboxError } from './errors.ts';

export interface UninstallOptions {
  /** The user who uninstalled, sent as `user_id`. Default 1. */
  readonly userId?: number;
  /** Sent as `timestamp`. Default: the sandbox clock, as an ISO string. */
  readonly timestamp?: string;
  /**
   * The Basic credentials of the DELETE. Default: the app's id and its current secret, as
   * Pipedrive sends them; another pair forges the request, 'none' sends no Authorization header.
   */
  readonly credentials?: { readonly clientId: string; readonly clientSecret: string } | 'none';
  /** Where the DELETE goes. Default: the app's registered callback URL. */
  readonly url?: string;
}

export interface UninstallResult {
  /** The status the callback answered the DELETE with (Pipedrive ignores it). */
  readonly status: number;
}

/** The callback may hang; Pipedrive does not wait for it forever and neither does a test. */
const CALLBACK_TIMEOUT_MS = 10_000;

/** HTTP Basic as RFC 7617 has it (no form-encoding: that is RFC 6749's rule for token requests). */
const basic = (clientId: string, clientSecret: string): string =>
  `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;

/** For the log, which never names a secret. */
const credentialsKind = (credentials: UninstallOptions['credentials']): 'current' | 'none' | 'overridden' =>
  credentials === undefined ? 'current' : credentials === 'none' ? 'none' : 'overridden';

/**
 * A company uninstalls the app: every grant of the app in that company is revoked first (so the
 * app's tokens are already dead when it hears of it, as on Pipedrive), then the app's callback
 * URL gets `DELETE` with `{client_id, company_id, user_id, timestamp}`. Grants of other companies
 * are untouched. Redirects are not followed: the status is the callback's own.
 */
export const uninstall = async (
  ctx: SandboxContext,
  client: Client,
  companyId: number,
  options: UninstallOptions = {},
): Promise<UninstallResult> => {
  const revokedGrants = ctx.grants.revokeCompany(client.clientId, companyId);
  const url = options.url ?? client.redirectUri;
  const credentials = options.credentials ?? { clientId: client.clientId, clientSecret: client.clientSecret };
  const body = {
    client_id: client.clientId,
    company_id: companyId,
    user_id: options.userId ?? 1,
    timestamp: options.timestamp ?? new Date(ctx.now()).toISOString(),
  };
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (credentials !== 'none') headers['authorization'] = basic(credentials.clientId, credentials.clientSecret);

  let status: number;
  try {
    const response = await fetch(url, {
      method: 'DELETE',
      headers,
      body: JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
    });
    status = response.status;
    // Read to the end so that the connection is released; the content does not matter.
    await response.arrayBuffer();
  } catch (error) {
    ctx.log.warn({ clientId: client.clientId, companyId, revokedGrants }, 'uninstall callback failed');
    throw new SandboxError('SANDBOX_CALLBACK_FAILED', `DELETE to the uninstall callback failed: ${String(error)}`, { cause: error });
  }
  ctx.log.info(
    { clientId: client.clientId, companyId, revokedGrants, credentials: credentialsKind(options.credentials), status },
    'app uninstalled',
  );
  return { status };
};
