// The OAuthApp resource: the single source of truth for its shape. crds/ is generated from these
// schemas (src/api/crd.ts), and the controller parses what it reads from the apiserver with them.
import { z } from 'zod';
import { celRules, duration, objectName, secretKeyRef, secureURL } from './fields.ts';

export const group = 'oauthapp.dev';
export const version = 'v1alpha1';
export const kind = 'OAuthApp';
export const plural = 'oauthapps';
export const apiVersion = `${group}/${version}`;

export const providers = ['pipedrive', 'custom'] as const;
export type ProviderName = (typeof providers)[number];

export const clientAuthenticationMethods = ['client_secret_basic', 'client_secret_post'] as const;
export type ClientAuthenticationMethod = (typeof clientAuthenticationMethods)[number];

export const restartableKinds = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;

/** single: one grant per OAuthApp. multiple: a public app, one OAuthInstallation per installing company. */
export const installationModes = ['single', 'multiple'] as const;
export type InstallationMode = (typeof installationModes)[number];

/** Query parameters the operator sets itself on the authorize URL; spec.authorizeParams may not. */
export const reservedAuthorizeParams = ['client_id', 'redirect_uri', 'state', 'response_type', 'scope', 'code_challenge', 'code_challenge_method'] as const;

/**
 * Bounds on what a spec may ask the operator to copy or send, so one OAuthApp cannot make it hold
 * or write unbounded data: maxProperties in the CRD, the same check in zod.
 */
export const specLimits = { labels: 64, annotations: 32, annotationValue: 4096, authorizeParams: 32 } as const;

const atMost = (max: number) => (map: Record<string, string>) => Object.keys(map).length <= max;

const labelMap = z
  .record(z.string().min(1).max(317), z.string().max(63))
  .refine(atMost(specLimits.labels), `must have at most ${specLimits.labels} labels`)
  .meta({ maxProperties: specLimits.labels })
  .describe(`Labels copied onto the target Secret (at most ${specLimits.labels}).`);

// 32 annotations of 4 KiB each stay well inside the apiserver's 256 KiB of annotations per object.
const annotationMap = z
  .record(z.string().min(1).max(317), z.string().max(specLimits.annotationValue))
  .refine(atMost(specLimits.annotations), `must have at most ${specLimits.annotations} annotations`)
  .meta({ maxProperties: specLimits.annotations })
  .describe(`Annotations copied onto the target Secret (at most ${specLimits.annotations}, each value at most ${specLimits.annotationValue} characters).`);

export const targetSpec = z
  .strictObject({
    name: objectName.optional().describe('Name of the Secret workloads mount. Default: <metadata.name>-credentials.'),
    labels: labelMap.optional(),
    annotations: annotationMap.optional(),
    includeRefreshToken: z
      .boolean()
      .default(false)
      .describe('Also write refresh_token into the target Secret. Default false: workloads get no refresh token.'),
  })
  .describe('The Secret the operator writes for workloads to mount.');

export const rolloutRestartTarget = z.strictObject({
  kind: z.enum(restartableKinds).describe('Kind of the workload (apps/v1).'),
  name: objectName.describe('Name of the workload in the OAuthApp\'s namespace.'),
});

const customNeedsURLs = [
  {
    rule: "self.provider != 'custom' || has(self.tokenURL)",
    message: 'tokenURL is required when provider is custom',
    fieldPath: '.tokenURL',
    reason: 'FieldValueRequired' as const,
  },
  {
    rule: "self.provider != 'custom' || has(self.authorizeURL)",
    message: 'authorizeURL is required when provider is custom',
    fieldPath: '.authorizeURL',
    reason: 'FieldValueRequired' as const,
  },
  {
    rule: "self.provider == 'custom' || !has(self.issuer)",
    message: 'issuer is for custom providers: a preset knows whether its provider sends iss',
    fieldPath: '.issuer',
    reason: 'FieldValueForbidden' as const,
  },
  {
    rule: "self.provider == 'custom' || !has(self.clientAuthentication) || self.clientAuthentication == 'client_secret_basic'",
    message: 'the pipedrive provider authenticates with client_secret_basic only',
    fieldPath: '.clientAuthentication',
  },
];

/**
 * A public app's grants live in its installations: what only makes sense for one grant is refused.
 * Only the pipedrive preset says which company installed (users/me).
 */
const multipleInstallationRules = [
  {
    rule: "self.installations != 'multiple' || self.provider == 'pipedrive'",
    message: 'installations: multiple needs the pipedrive provider, whose users/me names the installing company',
    fieldPath: '.installations',
  },
  {
    rule: "self.installations != 'multiple' || !has(self.refreshTokenRef)",
    message: 'refreshTokenRef seeds one grant; with installations: multiple every company installs through the callback',
    fieldPath: '.refreshTokenRef',
    reason: 'FieldValueForbidden' as const,
  },
  {
    rule: "self.installations != 'multiple' || !has(self.target.name)",
    message: 'with installations: multiple each installation has its own Secret, <app>-<company id>',
    fieldPath: '.target.name',
    reason: 'FieldValueForbidden' as const,
  },
  {
    rule: "self.installations != 'multiple' || !has(self.rolloutRestartTargets)",
    message: 'rolloutRestartTargets is for single apps: an installation\'s workloads read its Secret',
    fieldPath: '.rolloutRestartTargets',
    reason: 'FieldValueForbidden' as const,
  },
];

const authorizeParamsRule = {
  rule: reservedAuthorizeParams.map((name) => `!('${name}' in self)`).join(' && '),
  message: `must not set ${reservedAuthorizeParams.join(', ')}: the operator sets them`,
};

export const oauthAppSpec = z
  .strictObject({
    provider: z
      .enum(providers)
      .default('pipedrive')
      .describe('Provider preset. pipedrive (default) knows its URLs; custom needs tokenURL and authorizeURL.'),
    tokenURL: secureURL.optional().describe('Token endpoint. Overrides the preset; required for custom. https:// except loopback.'),
    authorizeURL: secureURL.optional().describe('Authorization endpoint. Overrides the preset; required for custom.'),
    issuer: secureURL
      .optional()
      .describe(
        'The provider\'s issuer identifier (custom only), exactly as it sends it in the iss parameter of authorization responses (RFC 9207; OpenID Connect discovery: issuer). When set, the callback refuses a response whose iss is missing or different, and exchanges no code. Unset: iss is ignored.',
      ),
    clientAuthentication: z
      .enum(clientAuthenticationMethods)
      .optional()
      .describe('How the client authenticates at the token endpoint (RFC 6749 §2.3.1). Default client_secret_basic.'),
    clientId: z
      .string()
      .min(1)
      .max(256)
      .meta(celRules({ rule: 'self == oldSelf', message: 'clientId is immutable: a new client_id means a new app' }))
      .describe('The app\'s client_id. Immutable.'),
    clientSecretRef: secretKeyRef.describe('The Secret key holding the client_secret. Ops rotate it by updating that Secret.'),
    redirectURI: secureURL.describe(
      'The app\'s one OAuth callback URL. The operator serves every path under /oauth/callback; with installations: multiple, the path tells which app a Marketplace install or uninstall is for.',
    ),
    installations: z
      .enum(installationModes)
      .default('single')
      .meta(celRules({ rule: 'self == oldSelf', message: 'installations is immutable: create a new OAuthApp' }))
      .describe(
        'single (default): one grant, kept in this app\'s target Secret. multiple: a public (Marketplace) app; every installing company gets an OAuthInstallation with its own grant and Secret. Immutable.',
      ),
    revokeURL: secureURL
      .optional()
      .describe('Token revocation endpoint (RFC 7009). Overrides the preset (pipedrive knows its own); used when an installation is deleted.'),
    revokeOnDelete: z
      .boolean()
      .default(true)
      .describe('With installations: multiple, revoke an installation\'s refresh token at the provider before its state is removed, when it (or the app) is deleted. Default true.'),
    scopes: z
      .array(z.string().min(1).max(256))
      .max(64)
      .optional()
      .describe('Scopes requested on authorize, sent space-separated. Pipedrive sets scopes in its portal.'),
    authorizeParams: z
      .record(z.string().min(1).max(128), z.string().max(1024))
      .refine(atMost(specLimits.authorizeParams), `must have at most ${specLimits.authorizeParams} parameters`)
      .meta({ maxProperties: specLimits.authorizeParams })
      .optional()
      .meta(celRules(authorizeParamsRule))
      .describe('Extra query parameters for the authorize URL, such as access_type: offline.'),
    refreshTokenRef: secretKeyRef
      .optional()
      .describe('A Secret key holding a refresh token from an existing install, used to seed the app.'),
    renewBefore: duration.optional().describe('How long before expiry to refresh. Default: a third of the token lifetime.'),
    target: targetSpec.default({ includeRefreshToken: false }),
    rolloutRestartTargets: z
      .array(rolloutRestartTarget)
      .max(32)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['kind', 'name'] })
      .describe('Workloads restarted (as kubectl rollout restart does) when the client secret changes.'),
  })
  .meta(celRules(...customNeedsURLs, ...multipleInstallationRules))
  .superRefine((spec, context) => {
    if (spec.provider === 'custom') {
      for (const field of ['tokenURL', 'authorizeURL'] as const) {
        if (spec[field] === undefined) {
          context.addIssue({ code: 'custom', path: [field], message: `${field} is required when provider is custom` });
        }
      }
    } else if (spec.issuer !== undefined) {
      context.addIssue({ code: 'custom', path: ['issuer'], message: 'issuer is for custom providers: a preset knows whether its provider sends iss' });
    }
    if (spec.provider !== 'custom' && spec.clientAuthentication === 'client_secret_post') {
      context.addIssue({
        code: 'custom',
        path: ['clientAuthentication'],
        message: 'the pipedrive provider authenticates with client_secret_basic only',
      });
    }
    for (const name of reservedAuthorizeParams) {
      if (spec.authorizeParams && name in spec.authorizeParams) {
        context.addIssue({ code: 'custom', path: ['authorizeParams'], message: authorizeParamsRule.message });
      }
    }
    if (spec.installations === 'multiple') {
      const forbidden = [
        [spec.provider !== 'pipedrive', ['installations']],
        [spec.refreshTokenRef !== undefined, ['refreshTokenRef']],
        [spec.target.name !== undefined, ['target', 'name']],
        [spec.rolloutRestartTargets !== undefined, ['rolloutRestartTargets']],
      ] as const;
      for (const [index, [refused, path]] of forbidden.entries()) {
        if (refused) context.addIssue({ code: 'custom', path: [...path], message: multipleInstallationRules[index]?.message ?? '' });
      }
    }
    const seen = new Set<string>();
    for (const [index, target] of (spec.rolloutRestartTargets ?? []).entries()) {
      const key = `${target.kind}/${target.name}`;
      if (seen.has(key)) context.addIssue({ code: 'custom', path: ['rolloutRestartTargets', index], message: `duplicate entry ${key}` });
      seen.add(key);
    }
  })
  .describe('Desired state of an OAuth 2.0 app whose credentials and access token the operator keeps in a Secret.');

export type OAuthAppSpec = z.output<typeof oauthAppSpec>;

export const conditionTypes = ['Ready', 'Authorized', 'ClientSecretValid'] as const;
export type ConditionType = (typeof conditionTypes)[number];

/** metav1.Condition, with its descriptions. */
export const condition = z
  .object({
    type: z.string().min(1).max(316).describe('Ready, Authorized or ClientSecretValid.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
    observedGeneration: z.number().int().min(0).optional().describe('The metadata.generation this condition was set for.'),
    lastTransitionTime: z.string().meta({ format: 'date-time' }).describe('When status last changed.'),
    reason: z.string().min(1).max(1024).describe('Why, in one CamelCase word (e.g. TokenValid, NotAuthorized, InvalidClient); stable for alerts and scripts.'),
    message: z.string().max(32_768).describe('Why, for a person: what happened and what to do. Never contains a secret value.'),
  })
  .describe('One aspect of the app\'s state (metav1.Condition).');
export type Condition = z.output<typeof condition>;

const timestamp = z.string().meta({ format: 'date-time' });

export const oauthAppStatus = z
  .object({
    observedGeneration: z.number().int().min(0).optional().describe('The metadata.generation the operator last acted on.'),
    conditions: z
      .array(condition)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
      .describe(
        'Ready (the target Secret holds a valid access token and no person needs to act; False with NotAuthorized or ClientSecretInvalid when one does, even while the token still works), Authorized (the operator holds a usable refresh token) and ClientSecretValid (the provider accepted the client secret).',
      ),
    targetSecretName: objectName.optional().describe('The Secret the operator writes for workloads: spec.target.name, default <metadata.name>-credentials.'),
    accessTokenExpiresAt: timestamp.optional().describe('When the access token in the target Secret expires.'),
    lastRefreshTime: timestamp.optional().describe('When the access token was last refreshed successfully.'),
    nextRefreshTime: timestamp
      .optional()
      .describe('When the operator refreshes next (the schedule, or the retry after a failure). Absent while a person must act.'),
    lastFailure: z
      .object({
        reason: z
          .string()
          .min(1)
          .max(64)
          .describe(
            'What went wrong, in one CamelCase word: InvalidGrant, InvalidClient, RateLimited, ServerError, Timeout, NetworkError, MalformedResponse, Rejected or RefreshInterrupted.',
          ),
        time: timestamp.describe('When the failed request ended.'),
        attempts: z.number().int().min(1).describe('How many token requests in a row failed with this reason (the backoff grows with it).'),
      })
      .optional()
      .describe(
        'The last failed token request, while no request has succeeded since (cleared by the next success, as cert-manager clears lastFailureTime and failedIssuanceAttempts). The condition it affects says why, with the provider\'s own description of the error.',
      ),
    lastRotateRequest: z.string().max(256).optional().describe('The last oauthapp.dev/rotate annotation value acted on.'),
    authorizationURL: z
      .string()
      .max(8192)
      .optional()
      .describe(
        'Where a person authorizes the app when it has no refresh token. This URL is a capability: whoever opens it may connect their own account (each URL works once, for up to 10 minutes), and the operator then writes that account\'s tokens into the target Secret for the workloads. Reading OAuthApp status is therefore a privilege: grant get, list and watch on oauthapps only to those who may install the app.',
      ),
  })
  .describe('Observed state, written by the operator.');

export type OAuthAppStatus = z.output<typeof oauthAppStatus>;

export const objectMeta = z.object({
  name: z.string(),
  namespace: z.string(),
  uid: z.string(),
  generation: z.number().int().optional(),
  resourceVersion: z.string().optional(),
  creationTimestamp: z.string().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  deletionTimestamp: z.string().optional(),
});

/** An OAuthApp as read from the apiserver. */
export const oauthApp = z.object({
  apiVersion: z.literal(apiVersion),
  kind: z.literal(kind),
  metadata: objectMeta,
  spec: oauthAppSpec,
  status: oauthAppStatus.optional(),
});
export type OAuthApp = z.output<typeof oauthApp>;
