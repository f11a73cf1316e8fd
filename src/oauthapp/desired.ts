// Pure: the target Secret workloads mount, as a projection of the spec, the client secret and
// the operator's state; and whether an existing Secret already matches it.
import { apiVersion, kind, type OAuthAppSpec } from '../api/oauthapp.ts';
import { dataDigest, encodeData, type Secret } from '../kube/objects.ts';
import { managedByLabel, managedByValue } from './labels.ts';
import { appUIDLabel, roleLabel, type AppState } from './state.ts';

export const targetSecretName = (appName: string, spec: OAuthAppSpec) => spec.target.name ?? `${appName}-credentials`;

/** RFC 3339 in UTC, to the second, as DESIGN.md's expires_at. */
export const rfc3339 = (iso: string) => new Date(iso).toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface TargetInput {
  /** The owner: an OAuthApp unless `kind` says OAuthInstallation. */
  app: { name: string; namespace: string; uid: string; kind?: string };
  spec: OAuthAppSpec;
  clientSecret: string;
  state: AppState;
}

export function desiredTargetSecret({ app, spec, clientSecret, state }: TargetInput): Secret {
  const data: Record<string, string> = { client_id: spec.clientId, client_secret: clientSecret };
  if (state.tokens) {
    data.access_token = state.tokens.accessToken;
    data.token_type = state.tokens.tokenType;
    data.expires_at = rfc3339(state.tokens.expiresAt);
    data.scope = state.tokens.scope ?? '';
    if (state.tokens.apiDomain) data.api_domain = state.tokens.apiDomain;
  }
  if (spec.target.includeRefreshToken && state.refreshToken) data.refresh_token = state.refreshToken;
  return {
    metadata: {
      name: targetSecretName(app.name, spec),
      namespace: app.namespace,
      labels: { ...spec.target.labels, [managedByLabel]: managedByValue, [roleLabel]: 'credentials', [appUIDLabel]: app.uid },
      ...(spec.target.annotations ? { annotations: { ...spec.target.annotations } } : {}),
      ownerReferences: [{ apiVersion, kind: app.kind ?? kind, name: app.name, uid: app.uid, controller: true, blockOwnerDeletion: true }],
    },
    type: 'Opaque',
    data: encodeData(data),
  };
}

/** Whether `actual` was written for this app (and so may be overwritten). */
export function isOwnedBy(actual: Secret, appUID: string): boolean {
  return actual.metadata.ownerReferences?.some((owner) => owner.uid === appUID && owner.controller === true) ?? false;
}

const includes = (actual: Record<string, string> | undefined, wanted: Record<string, string> | undefined) =>
  Object.entries(wanted ?? {}).every(([key, value]) => actual?.[key] === value);

const sameData = (a: Record<string, string> | undefined, b: Record<string, string> | undefined) => {
  const aKeys = Object.keys(a ?? {});
  return aKeys.length === Object.keys(b ?? {}).length && includes(a, b);
};

/**
 * Data must match exactly (a key added by hand is removed); labels, annotations and the owner
 * reference must be present, while metadata others add (tools, admission) is left alone. A cached
 * target holds its data as a digest (controller.ts, ownTargetsOnly): compared as one.
 */
export function targetMatches(actual: Secret, desired: Secret): boolean {
  return (
    (actual.type ?? 'Opaque') === desired.type &&
    (actual.dataDigest !== undefined ? actual.dataDigest === dataDigest(desired.data) : sameData(actual.data, desired.data)) &&
    includes(actual.metadata.labels, desired.metadata.labels) &&
    includes(actual.metadata.annotations, desired.metadata.annotations) &&
    (desired.metadata.ownerReferences ?? []).every((owner) => isOwnedBy(actual, owner.uid))
  );
}

/** The desired Secret carrying over what others added, for an update that changes only ours. */
export function mergeForUpdate(actual: Secret, desired: Secret): Secret {
  const ours = desired.metadata.ownerReferences ?? [];
  return {
    ...desired,
    metadata: {
      ...desired.metadata,
      ...(actual.metadata.resourceVersion ? { resourceVersion: actual.metadata.resourceVersion } : {}),
      labels: { ...actual.metadata.labels, ...desired.metadata.labels },
      annotations: { ...actual.metadata.annotations, ...desired.metadata.annotations },
      ownerReferences: [
        ...(actual.metadata.ownerReferences ?? []).filter((owner) => !ours.some((own) => own.uid === owner.uid)),
        ...ours,
      ],
    },
  };
}
