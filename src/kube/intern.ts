// One copy of strings that repeat across thousands of cached objects. JSON.parse makes a new string
// for every value, so at 10,000 apps a namespace, a label value, an apiVersion or a condition
// reason is held 10,000 times over (about 5 KiB per app in all). Only values that repeat by
// nature are passed in here (not names or uids), and the pool is bounded: once full, a new string
// is kept as it is, so a cluster of unusual values costs at most the pool's few hundred KiB.

export type Intern = (value: string) => string;

export function createInterner(limit = 4096, maxLength = 128): Intern {
  const pool = new Map<string, string>();
  return (value) => {
    if (value.length > maxLength) return value;
    const pooled = pool.get(value);
    if (pooled !== undefined) return pooled;
    if (pool.size < limit) pool.set(value, value);
    return value;
  };
}

/** The pool the informers share: the same namespace or label value in any cache is one string. */
export const intern: Intern = createInterner();
