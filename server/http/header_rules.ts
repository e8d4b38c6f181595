/**
 * The header rules, written once: what a token is (RFC 9110 §5.6.2: header
 * names, methods, auth schemes, CORS lists) and which characters a header
 * value may never carry (CR, LF, NUL: they would split the head). The request
 * parser, the response head and the middleware all use these.
 *
 * @module
 */

/** The token characters: ``! # $ % & ' * + - . ^ _ ` | ~``, digits and letters. */
export const TOKEN_CHARS =
  "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

const TOKEN_TABLE = new Uint8Array(128);
for (const c of TOKEN_CHARS) TOKEN_TABLE[c.charCodeAt(0)] = 1;

/**
 * Whether a character code is a token character.
 *
 * @param code A UTF-16 code unit or byte.
 * @returns `true` for a token character.
 * @example
 * ```ts
 * import { isTokenCode } from "./header_rules.ts";
 * isTokenCode("a".charCodeAt(0)); // true
 * ```
 */
export function isTokenCode(code: number): boolean {
  return code < 128 && TOKEN_TABLE[code] === 1;
}

/**
 * Whether `value` is an HTTP token: one or more token characters.
 *
 * @param value The string to test.
 * @returns `true` if it is a non-empty token.
 * @example
 * ```ts
 * import { isToken } from "./header_rules.ts";
 * isToken("SHA-256"); // true
 * isToken("a b"); // false
 * ```
 */
export function isToken(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    if (!isTokenCode(value.charCodeAt(i))) return false;
  }
  return true;
}

/**
 * Whether a header value carries CR, LF or NUL (never allowed: they would
 * end the field or the head early).
 *
 * @param value The value.
 * @returns `true` when it must be refused.
 * @example
 * ```ts
 * import { hasHeaderBreak } from "./header_rules.ts";
 * hasHeaderBreak("a\r\nSet-Cookie: x"); // true
 * ```
 */
export function hasHeaderBreak(value: string): boolean {
  return /[\0\r\n]/.test(value);
}
