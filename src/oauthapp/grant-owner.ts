// What holds a grant and gets a target Secret: an OAuthApp (installations: single), or one
// company's OAuthInstallation of a public app. An installation is reconciled as its app's spec
// with its own identity: its uid names its state Secret, its name its target Secret, and status,
// Events and the Secret's owner reference point at it. So refreshes, claims, client-secret
// propagation and every grant-safety rule are the same code for both.
import type { OAuthApp } from '../api/oauthapp.ts';
import { appLabel, companyLabel, type OAuthInstallation } from '../api/oauthinstallation.ts';
import type { OwnKind } from '../kube/client.ts';

export type GrantOwner = Omit<OAuthApp, 'kind'> & { kind: OwnKind };

export function installationAsGrantOwner(app: OAuthApp, installation: OAuthInstallation): GrantOwner {
  const { target } = app.spec;
  return {
    apiVersion: installation.apiVersion,
    kind: installation.kind,
    metadata: installation.metadata,
    spec: {
      ...app.spec,
      target: { ...target, name: installation.metadata.name, labels: { ...target.labels, [appLabel]: app.metadata.name, [companyLabel]: installation.spec.companyID } },
    },
    ...(installation.status ? { status: installation.status } : {}),
  };
}
