import type { z } from 'zod';
import { issueFieldPaths } from '../../src/api/field-path.ts';

/** The fields a failed parse names; none when the parse succeeded. */
export function zodFieldPaths(result: z.ZodSafeParseResult<unknown>, prefix: string): string[] {
  return result.success ? [] : issueFieldPaths(result.error, prefix);
}
