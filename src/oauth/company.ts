// Which company installed an app: Pipedrive's `GET {api_domain}/api/v1/users/me` answers with the
// access token's user, `data.id`, and company, `data.company_id` (numbers; strings are accepted).
import { z } from 'zod';
import { companyID } from '../api/oauthinstallation.ts';
import { parseJSON } from './token-response.ts';

export interface Company {
  companyID: string;
  userID?: string | undefined;
}

const id = z.union([z.number().int().nonnegative().transform(String), z.string()]);
const usersMe = z.object({ data: z.object({ company_id: id.pipe(companyID), id: id.pipe(z.string().max(63)).optional().catch(undefined) }) });

export function parseCompany(body: string): { success: true; company: Company } | { success: false; problem: string } {
  const parsed = usersMe.safeParse(parseJSON(body));
  if (!parsed.success) return { success: false, problem: 'users/me did not name a company (data.company_id)' };
  return { success: true, company: { companyID: parsed.data.data.company_id, userID: parsed.data.data.id } };
}
