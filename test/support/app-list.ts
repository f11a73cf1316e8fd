// Many OAuthApps at once, kept light for the in-process operator that shares this event loop:
// created in one kubectl call, and watched through one shared list read with the admin client
// (a kubectl process per app and poll stalls the event loop; see chaos-provider.test.ts).
import { eventually } from './eventually.ts';
import { apply, oauthAppManifest, opaqueSecret, type AppView } from './resources.ts';
import type { TestProvider } from './sandbox.ts';
import type { Testbed } from './testbed.ts';

export interface AppList {
  /** Every OAuthApp of the testbed's namespace by name; one read shared by callers within 250 ms. */
  list(): Promise<Map<string, AppView>>;
  /** Waits until each named app satisfies `predicate`; returns them in the order named. */
  allWith(names: readonly string[], predicate: (app: AppView) => boolean, what: string, timeoutMs?: number): Promise<AppView[]>;
  /**
   * Creates `<name>-client` (and `<name>-bootstrap`) Secrets and the OAuthApps in one kubectl call.
   * `seeded: false` leaves them without a refresh token (to be authorized through the callback).
   */
  applyApps(provider: TestProvider, names: readonly string[], options?: { seeded?: boolean; spec?: Record<string, unknown> }): Promise<void>;
}

export function appList(testbed: Testbed): AppList {
  let listing: { startedAt: number; apps: Promise<Map<string, AppView>> } | undefined;
  const list = () => {
    if (!listing || Date.now() - listing.startedAt >= 250) {
      const apps = testbed.admin.http
        .json<{ items: AppView[] }>({ method: 'GET', path: `/apis/oauthapp.dev/v1alpha1/namespaces/${testbed.namespace}/oauthapps` })
        .then(({ items }) => new Map(items.map((app) => [app.metadata.name, app])));
      listing = { startedAt: Date.now(), apps };
    }
    return listing.apps;
  };
  return {
    list,
    allWith: (names, predicate, what, timeoutMs = 60_000) =>
      eventually(
        `${names.join(', ')}: ${what}`,
        async () => {
          const apps = await list();
          const found = names.map((name) => apps.get(name));
          return found.every((app): app is AppView => app !== undefined && predicate(app)) ? (found as AppView[]) : undefined;
        },
        timeoutMs,
        250,
      ),
    async applyApps(provider, names, { seeded = true, spec = {} } = {}) {
      const secrets: object[] = [];
      const apps: object[] = [];
      for (const name of names) {
        const seed = seeded ? provider.sandbox.issueRefreshToken(provider.clientId) : undefined;
        testbed.canaries.push(provider.clientSecret, ...(seed ? [seed] : []));
        secrets.push(opaqueSecret(`${name}-client`, { client_secret: provider.clientSecret }));
        if (seed) secrets.push(opaqueSecret(`${name}-bootstrap`, { refresh_token: seed }));
        apps.push(
          oauthAppManifest({
            name,
            clientId: provider.clientId,
            tokenURL: provider.tokenURL,
            authorizeURL: provider.authorizeURL,
            redirectURI: provider.redirectURI,
            ...(seed ? { refreshTokenRef: { name: `${name}-bootstrap`, key: 'refresh_token' } } : {}),
            spec,
          }),
        );
      }
      await apply(testbed.namespace, { apiVersion: 'v1', kind: 'List', items: [...secrets, ...apps] });
    },
  };
}
