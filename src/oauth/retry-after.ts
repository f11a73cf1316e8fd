/**
 * The wait a `Retry-After` header asks for (RFC 9110 §10.2.3), in milliseconds from `now`: either
 * delay-seconds or an HTTP-date. A date in the past means no wait (0). Undefined when the header
 * is absent or unreadable.
 */
export const parseRetryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Only something that looks like an HTTP-date: Date.parse also accepts "12" or "1.5".
  if (!/^[A-Za-z]{3,9},? /.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
};
