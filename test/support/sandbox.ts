// The Pipedrive-compatible sandbox on loopback, with one registered app.
import { createSandbox, type ClientRegistration, type Sandbox, type SandboxOptions } from '../../src/sandbox/server.ts';

export interface TestProvider {
  sandbox: Sandbox;
  baseURL: string;
  tokenURL: string;
  authorizeURL: string;
  clientId: string;
  clientSecret: string;
  redirectURI: string;
  /** Asks "who am I" with an access token, as a workload would. */
  whoAmI(accessToken: string): Promise<number>;
  close(): Promise<void>;
}

/** `client`: more of the app's registration, e.g. `{ requirePkce: true }`. */
export async function startTestProvider(
  options: SandboxOptions = {},
  redirectURI = 'http://127.0.0.1:8081/oauth/callback',
  client: Omit<ClientRegistration, 'redirectUri'> = {},
): Promise<TestProvider> {
  const sandbox = createSandbox(options);
  const registered = sandbox.registerClient({ ...client, redirectUri: redirectURI });
  const baseURL = await sandbox.listen({ host: '127.0.0.1', port: 0 });
  return {
    sandbox,
    baseURL,
    tokenURL: `${baseURL}/oauth/token`,
    authorizeURL: `${baseURL}/oauth/authorize`,
    clientId: registered.clientId,
    clientSecret: registered.clientSecret,
    redirectURI,
    async whoAmI(accessToken) {
      const response = await fetch(`${baseURL}/v1/users/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
      return response.status;
    },
    close: () => sandbox.close(),
  };
}
