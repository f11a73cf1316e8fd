// kubectl oauthapp verify NAME: does the provider accept the app's client secret right now? Asked
// with checkClientSecret's token request (a refresh token no provider issued), so no grant is used
// or spent. Runs from the user's machine, so any provider address is allowed (the operator's
// address policy protects the cluster's network, not a laptop's), and HTTPS_PROXY applies.
import { z } from 'zod';
import { oauthAppSpec } from '../api/oauthapp.ts';
import { createAddressPolicy } from '../oauth/address-policy.ts';
import { checkClientSecret, type ClientCheck } from '../oauth/client-check.ts';
import { resolveProvider } from '../oauth/providers.ts';
import type { ProxySettings } from '../oauth/proxy.ts';
import { redactor } from '../oauth/redact.ts';
import { createTokenClient, type TokenClient } from '../oauth/token-client.ts';
import { SourceSecrets } from '../oauthapp/source-secrets.ts';
import { appRef, type CommandContext } from './context.ts';
import { CliError, exitCodes } from './errors.ts';

/** Every address but cloud metadata and reserved ones, which no provider has. */
export const anyProviderAddress = createAddressPolicy({ allowLoopback: true, allowNetworks: ['0.0.0.0/0', '::/0'] });

export const verifyTokenClient = (proxy: ProxySettings, userAgent: string): TokenClient => createTokenClient({ addresses: anyProviderAddress, proxy, userAgent });

/**
 * The spec fields a client check needs, with the operator's own field schemas, ignoring the rest:
 * a plugin older than the operator must not fail on a field it does not know. (A custom provider
 * without its URLs is resolveProvider's to refuse.)
 */
const checkedSpec = z
  .object((({ provider, tokenURL, authorizeURL, issuer, clientAuthentication, clientId, clientSecretRef }) => ({ provider, tokenURL, authorizeURL, issuer, clientAuthentication, clientId, clientSecretRef }))(oauthAppSpec.shape));
export type CheckedSpec = z.output<typeof checkedSpec>;

export function parseSpec(spec: unknown, what: string): CheckedSpec {
  const parsed = checkedSpec.safeParse(spec);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new CliError(`${what} has a spec the operator cannot use: ${issue ? `spec.${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
}

/** The verdict as printed: the first word is the verdict; the exit code says the same. */
export function formatVerdict(check: ClientCheck, subject: string): { text: string; exitCode: number } {
  switch (check.verdict) {
    case 'accepted':
      return { text: `accepted: the provider accepts the client secret of ${subject}\n`, exitCode: exitCodes.ok };
    case 'rejected':
      return {
        text: `rejected: the provider refused the client secret of ${subject}${check.description ? ` (the provider said: ${JSON.stringify(check.description)})` : ''}\n`,
        exitCode: exitCodes.failed,
      };
    case 'unknown':
      // The reason is the token client's coarse message, which names a Retry-After already.
      return { text: `unknown: ${check.reason}\n`, exitCode: exitCodes.unknown };
  }
}

export async function verifyCommand(context: CommandContext, name: string, tokens: TokenClient): Promise<number> {
  const { cluster, io } = context;
  const what = appRef(cluster.namespace, name);
  const app = await cluster.getApp(name);
  const spec = parseSpec(app.spec, what);
  let provider;
  try {
    provider = resolveProvider(spec);
  } catch (error) {
    throw new CliError(`${what}: ${error instanceof Error ? error.message : String(error)}`);
  }
  // Read as the operator reads it (a trailing newline dropped, the 64 KiB cap), live.
  const read = await new SourceSecrets({ getSecret: (namespace, secretName) => cluster.getSecret(namespace, secretName) }, undefined).read(cluster.namespace, spec.clientSecretRef);
  if (!read.found) throw new CliError(`${what}: ${read.problem} (spec.clientSecretRef)`);
  const clientSecret = read.value;
  const check = await checkClientSecret(tokens, { tokenURL: provider.tokenURL, clientAuthentication: provider.clientAuthentication, clientId: spec.clientId, clientSecret });
  const verdict = formatVerdict(check, `${what} (${provider.tokenURL})`);
  // The token client already keeps the secret out of what it reports; this is the belt to those braces.
  io.out(redactor([clientSecret])(verdict.text));
  return verdict.exitCode;
}
