/**
 * `application/x-www-form-urlencoded` encoding of one value (WHATWG URL standard, which RFC 6749
 * Appendix B refers to): a space becomes '+', and ':' is percent-encoded, which is what lets
 * client_secret_basic put id and secret on either side of a ':' (RFC 6749 §2.3.1).
 */
export const formUrlEncode = (value: string): string => new URLSearchParams([['', value]]).toString().slice(1);
