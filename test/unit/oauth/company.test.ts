// Which company installed a public app: Pipedrive's users/me names it in data.company_id and the
// user in data.id. The company id becomes part of an object name and a label value.
import { describe, expect, it } from '@jest/globals';
import { parseCompany } from '../../../src/oauth/company.ts';

const parse = (body: unknown) => parseCompany(JSON.stringify(body));
const refused = { success: false, problem: 'users/me did not name a company (data.company_id)' };

describe('parseCompany', () => {
  it('reads the company and the user as Pipedrive sends them, numbers, as strings', () => {
    expect(parse({ success: true, data: { id: 678, company_id: 12345, name: 'Ada' } })).toEqual({ success: true, company: { companyID: '12345', userID: '678' } });
  });

  it('accepts ids sent as strings', () => {
    expect(parse({ data: { id: '678', company_id: 'acme-12345' } })).toEqual({ success: true, company: { companyID: 'acme-12345', userID: '678' } });
  });

  it('reads a company without a user, or with a user id it cannot use, as a company with no user', () => {
    expect(parse({ data: { company_id: 12345 } })).toEqual({ success: true, company: { companyID: '12345', userID: undefined } });
    expect(parse({ data: { company_id: 12345, id: { nested: true } } })).toEqual({ success: true, company: { companyID: '12345', userID: undefined } });
    expect(parse({ data: { company_id: 12345, id: 'x'.repeat(64) } })).toEqual({ success: true, company: { companyID: '12345', userID: undefined } });
  });

  it.each([
    ['no data', { success: true }],
    ['data without company_id', { data: { id: 678 } }],
    ['a null company_id', { data: { company_id: null } }],
  ])('refuses an answer with %s', (_title, body) => {
    expect(parse(body)).toEqual(refused);
  });

  it.each([
    ['empty', ''],
    ['with a space', 'acme corp'],
    ['with a slash', 'acme/1'],
    ['starting with a dash', '-12345'],
    ['ending with a dot', '12345.'],
    ['longer than 63 characters', '1'.repeat(64)],
    ['a negative number', -1],
    ['a fraction', 1.5],
  ])('refuses a company id that is not a label value: %s', (_title, companyID) => {
    expect(parse({ data: { company_id: companyID, id: 678 } })).toEqual(refused);
  });

  it.each([
    ['an HTML page', '<!doctype html><title>Sign in</title>'],
    ['an empty body', ''],
    ['truncated JSON', '{"data":{"company_id":123'],
  ])('refuses a body that is not JSON: %s', (_title, body) => {
    expect(parseCompany(body)).toEqual(refused);
  });
});
