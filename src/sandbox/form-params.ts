import { z } from 'zod';
import { invalidRequest } from './errors.ts';

/** What @fastify/formbody hands over: repeated names become arrays. */
const FormBody = z.record(z.string(), z.union([z.string(), z.array(z.string())]));

export type FormParams = z.infer<typeof FormBody>;

/** The parsed form, or an empty one when the body was not a form. */
export const formParams = (body: unknown): FormParams => {
  const parsed = FormBody.safeParse(body ?? {});
  return parsed.success ? parsed.data : {};
};

/** A parameter's value; empty counts as omitted (RFC 6749 §3.1), repeated is refused. */
export const optionalParam = (params: FormParams, name: string): string | undefined => {
  const value = params[name];
  if (Array.isArray(value)) throw invalidRequest(`parameter ${name} is repeated`);
  return value === undefined || value === '' ? undefined : value;
};

export const requiredParam = (params: FormParams, name: string): string => {
  const value = optionalParam(params, name);
  if (value === undefined) throw invalidRequest(`missing parameter: ${name}`);
  return value;
};

/** A parameter's value for the record, even when malformed (first of repeats). */
export const rawParam = (params: FormParams, name: string): string | undefined => {
  const value = params[name];
  return Array.isArray(value) ? value[0] : value;
};
