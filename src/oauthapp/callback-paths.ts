// Which public app (installations: multiple) a state-less request is for. A Marketplace install
// and Pipedrive's uninstall callback carry no state of ours, only the path of the app's redirect
// URI, so each path belongs to one public app: the oldest that claims it. A newer one reports the
// clash in its status (reconciler.ts) and receives nothing until the path is free.
import { oauthApp, type OAuthApp } from '../api/oauthapp.ts';
import type { ObjectCache } from '../kube/informer.ts';
import type { KubeObject } from '../kube/objects.ts';

interface Claim {
  namespace: string;
  name: string;
  uid: string;
  createdAt: string;
}

/** The path part of a URL, normalized as WHATWG URL does ('' for a URL that does not parse). */
export function callbackPathOf(url: string): string {
  try {
    return new URL(url, 'http://callback.invalid').pathname;
  } catch {
    return '';
  }
}

const older = (a: Claim, b: Claim) => a.createdAt.localeCompare(b.createdAt) || a.uid.localeCompare(b.uid);

export class CallbackPaths {
  private readonly apps: ObjectCache<KubeObject>;
  /** path → the public apps claiming it, oldest first; uid → path, to move or drop a claim. */
  private readonly claims = new Map<string, Claim[]>();
  private readonly pathOf = new Map<string, string>();

  constructor(apps: ObjectCache<KubeObject>) {
    this.apps = apps;
    apps.on((event, object) => (event === 'deleted' ? this.drop(object.metadata.uid ?? '') : this.update(object)));
  }

  /** The public app that a state-less request on `path` is for. */
  appAt(path: string): OAuthApp | undefined {
    const claim = this.claims.get(callbackPathOf(path))?.[0];
    if (!claim) return undefined;
    const parsed = oauthApp.safeParse(this.apps.get(claim.namespace, claim.name));
    return parsed.success && parsed.data.metadata.uid === claim.uid && !parsed.data.metadata.deletionTimestamp ? parsed.data : undefined;
  }

  /** Why `app` receives no state-less request: an older public app claims its path. */
  takenFrom(app: OAuthApp): string | undefined {
    const path = callbackPathOf(app.spec.redirectURI);
    const first = this.claims.get(path)?.[0];
    if (!first || first.uid === app.metadata.uid) return undefined;
    return `OAuthApp ${first.namespace}/${first.name} already receives the installs and uninstalls sent to ${path}: give this app a redirectURI with a path of its own under /oauth/callback (and register it with the provider)`;
  }

  private update(object: KubeObject): void {
    const uid = object.metadata.uid ?? '';
    const spec = (object as { spec?: { installations?: unknown; redirectURI?: unknown } }).spec;
    if (spec?.installations !== 'multiple' || typeof spec.redirectURI !== 'string') return this.drop(uid);
    const path = callbackPathOf(spec.redirectURI);
    if (this.pathOf.get(uid) === path) return;
    this.drop(uid);
    const claim = { namespace: object.metadata.namespace ?? '', name: object.metadata.name, uid, createdAt: object.metadata.creationTimestamp ?? '' };
    this.claims.set(path, [...(this.claims.get(path) ?? []), claim].sort(older));
    this.pathOf.set(uid, path);
  }

  private drop(uid: string): void {
    const path = this.pathOf.get(uid);
    if (path === undefined) return;
    this.pathOf.delete(uid);
    const left = (this.claims.get(path) ?? []).filter((claim) => claim.uid !== uid);
    if (left.length > 0) this.claims.set(path, left);
    else this.claims.delete(path);
  }
}
