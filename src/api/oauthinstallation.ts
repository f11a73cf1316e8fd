// The OAuthInstallation resource: one company's install of a public OAuthApp (installations:
// multiple). The operator creates it when a company installs; it owns the company's grant, its
// refresh schedule and its Secret. crds/ is generated from these schemas too.
import { z } from 'zod';
import { celRules, objectName } from './fields.ts';
import { group, objectMeta, oauthAppStatus, version } from './oauthapp.ts';

export const installationKind = 'OAuthInstallation';
export const installationPlural = 'oauthinstallations';
export const installationAPIVersion = `${group}/${version}`;

/** On installations and their Secrets: which app, which company (a workload selects its Secret by them). */
export const appLabel = `${group}/app`;
export const companyLabel = `${group}/company-id`;

const immutable = (field: string) => celRules({ rule: 'self == oldSelf', message: `${field} is immutable` });

/**
 * A company id as the provider names it (Pipedrive: a number). Also a label value and part of
 * object names, so: letters, digits, '-', '_' and '.', starting and ending alphanumeric, ≤ 63.
 */
export const companyID = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/, 'must be a label value: letters, digits, "-", "_" and ".", starting and ending with a letter or digit');

export const oauthInstallationSpec = z
  .strictObject({
    app: objectName.meta(immutable('app')).describe('The OAuthApp (installations: multiple) in this namespace that was installed. Immutable.'),
    companyID: companyID.meta(immutable('companyID')).describe('The installing company, as the provider names it (Pipedrive: users/me data.company_id). Immutable.'),
  })
  .describe('Which app a company installed. Written by the operator when the company installs.');

export const oauthInstallationStatus = oauthAppStatus
  .omit({ authorizationURL: true })
  .extend({
    installedAt: z.string().meta({ format: 'date-time' }).optional().describe('When the company last installed (authorized) the app.'),
    userID: z.string().max(63).optional().describe('The user who last installed it, as the provider names them.'),
    uninstalledAt: z
      .string()
      .meta({ format: 'date-time' })
      .optional()
      .describe('When the company uninstalled the app (the provider\'s uninstall callback); its tokens and Secret are gone since.'),
  })
  .describe('Observed state, written by the operator.');
export type OAuthInstallationStatus = z.output<typeof oauthInstallationStatus>;

export const oauthInstallation = z.object({
  apiVersion: z.literal(installationAPIVersion),
  kind: z.literal(installationKind),
  metadata: objectMeta,
  spec: oauthInstallationSpec,
  status: oauthInstallationStatus.optional(),
});
export type OAuthInstallation = z.output<typeof oauthInstallation>;

/**
 * The installation (and its Secret) of `companyID` for `app`: `<app>-<company id>`, lowercased
 * (object names are). Two ids that differ in case only would share a name: the second is refused
 * when it installs (the installation's spec.companyID is immutable).
 */
export function installationName(app: string, company: string): string {
  const suffix = `-${company.toLowerCase().replaceAll('_', '-')}`;
  return `${app.slice(0, 253 - suffix.length)}${suffix}`.replace(/\.-/g, '-');
}
