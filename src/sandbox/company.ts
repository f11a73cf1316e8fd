import { z } from 'zod';

/** Pipedrive ids of companies and users are positive integers. */
const pipedriveId = z.int().min(1);

/**
 * Who an install belongs to: the company that installed the app and the user who did it. A public
 * app is installed by many companies; each install is its own grant, revoked on its own.
 */
export const CompanyUserSchema = z.strictObject({
  companyId: pipedriveId.default(1),
  userId: pipedriveId.default(1),
});

export type CompanyUser = z.output<typeof CompanyUserSchema>;
/** What callers pass: either id may be left out (1). */
export type CompanyUserInput = z.input<typeof CompanyUserSchema>;

/** The single-company world every flow lived in before public apps: company 1, user 1. */
export const DEFAULT_COMPANY_USER: CompanyUser = { companyId: 1, userId: 1 };

/** Throws a ZodError for ids that are not positive integers. */
export const companyUser = (input: CompanyUserInput = {}): CompanyUser => CompanyUserSchema.parse(input);

/**
 * `company_id` and `user_id` from a form (consent decision, marketplace install): numbers as
 * decimal strings, either one absent meaning 1. Undefined when present but not a positive integer.
 */
export const companyUserFromForm = (companyId: string | undefined, userId: string | undefined): CompanyUser | undefined => {
  const parsed = z
    .strictObject({
      companyId: z.string().regex(/^[1-9][0-9]{0,14}$/).transform(Number).optional(),
      userId: z.string().regex(/^[1-9][0-9]{0,14}$/).transform(Number).optional(),
    })
    .safeParse({ companyId, userId });
  return parsed.success ? companyUser({ ...parsed.data }) : undefined;
};
