import type { z } from 'zod';

/** A zod issue path in the apiserver's notation: spec.scopes[1].name. */
export function fieldPath(prefix: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (joined, part) => (typeof part === 'number' ? `${joined}[${part}]` : joined ? `${joined}.${String(part)}` : String(part)),
    prefix,
  );
}

/** Every field a zod error names, unknown keys included, in the apiserver's notation. */
export function issueFieldPaths(error: z.ZodError, prefix: string): string[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => fieldPath(prefix, [...issue.path, key]))
      : [fieldPath(prefix, issue.path)],
  );
}
