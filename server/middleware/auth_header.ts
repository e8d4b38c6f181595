/**
 * Parsing of the `Authorization` request header (RFC 9110 §11) shared by the
 * Basic, Digest and Bearer middleware, and quoting for challenges.
 *
 * @module
 */

/** Parsed `Authorization` credentials: a scheme and either a token68 or auth-params. */
export interface AuthCredentials {
  /** Auth scheme, lower-cased, e.g. `basic`, `digest`, `bearer`. */
  scheme: string;
  /** The token68 form (e.g. Basic's base64 blob), if the credentials used it. */
  token68?: string;
  /** Auth-params with lower-cased names and unquoted values (empty map for token68). */
  params: Map<string, string>;
}

/**
 * Thrown by {@linkcode parseAuthorization} when the header does not follow the
 * credentials grammar. The message never contains the header value.
 */
export class AuthHeaderError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong, without any secret.
   */
  constructor(message: string) {
    super(message);
    this.name = "AuthHeaderError";
  }
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

function isWs(c: string): boolean {
  return c === " " || c === "\t";
}

/**
 * Parses an `Authorization` header value into a scheme plus a token68 or a map
 * of auth-params. Quoted strings may contain `\`-escapes; unquoted values may
 * be any run of visible characters except `,` and `"` (lenient, as some
 * clients leave `uri=/x` unquoted). Duplicate parameter names are refused.
 *
 * @param value The raw header value.
 * @returns The parsed credentials.
 * @throws {AuthHeaderError} If the value is empty, has no scheme, has a bad
 * quoted string, a parameter without `=`, a duplicate parameter or a control
 * character.
 * @example
 * ```ts
 * import { parseAuthorization } from "./auth_header.ts";
 * const c = parseAuthorization('Digest username="a\\"b", nc=00000001');
 * c.scheme; // "digest"
 * c.params.get("username"); // 'a"b'
 * ```
 */
export function parseAuthorization(value: string): AuthCredentials {
  let i = 0;
  const n = value.length;
  while (i < n && isWs(value[i])) i++;
  const schemeStart = i;
  while (i < n && TCHAR.test(value[i])) i++;
  if (i === schemeStart) throw new AuthHeaderError("authorization header has no scheme");
  const scheme = value.slice(schemeStart, i).toLowerCase();
  const params = new Map<string, string>();
  if (i < n && !isWs(value[i])) {
    throw new AuthHeaderError("authorization scheme must be followed by a space");
  }
  while (i < n && isWs(value[i])) i++;
  if (i === n) return { scheme, params };
  const rest = value.slice(i).replace(/[ \t]+$/, "");
  if (TOKEN68.test(rest)) return { scheme, token68: rest, params };

  while (i < n) {
    // Skip empty list elements and whitespace.
    while (i < n && (isWs(value[i]) || value[i] === ",")) i++;
    if (i === n) break;
    const nameStart = i;
    while (i < n && TCHAR.test(value[i])) i++;
    if (i === nameStart) throw new AuthHeaderError("authorization parameter name is not a token");
    const name = value.slice(nameStart, i).toLowerCase();
    while (i < n && isWs(value[i])) i++;
    if (value[i] !== "=") throw new AuthHeaderError(`authorization parameter ${name} has no value`);
    i++;
    while (i < n && isWs(value[i])) i++;
    let paramValue = "";
    if (value[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = value[i];
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        if (c === "\\") {
          i++;
          if (i === n) break;
        }
        const code = value.charCodeAt(i);
        if ((code < 0x20 && code !== 0x09) || code === 0x7f) {
          throw new AuthHeaderError("authorization header contains a control character");
        }
        paramValue += value[i];
        i++;
      }
      if (!closed) throw new AuthHeaderError(`authorization parameter ${name} is unterminated`);
    } else {
      const valueStart = i;
      while (i < n) {
        const code = value.charCodeAt(i);
        if (code <= 0x20 || code === 0x7f || value[i] === "," || value[i] === '"') break;
        i++;
      }
      if (i === valueStart) throw new AuthHeaderError(`authorization parameter ${name} is empty`);
      paramValue = value.slice(valueStart, i);
    }
    if (params.has(name)) throw new AuthHeaderError(`authorization parameter ${name} is repeated`);
    params.set(name, paramValue);
    while (i < n && isWs(value[i])) i++;
    if (i < n && value[i] !== ",") {
      throw new AuthHeaderError("authorization parameters must be separated by commas");
    }
  }
  return { scheme, params };
}

export { isToken } from "../http/header_rules.ts";

/**
 * Quotes a string for use as an auth-param value, escaping `"` and `\`.
 *
 * @param value Printable text (callers validate it).
 * @returns The quoted string, e.g. `"a\"b"`.
 * @example
 * ```ts
 * import { quote } from "./auth_header.ts";
 * quote('say "hi"'); // '"say \\"hi\\""'
 * ```
 */
export function quote(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * Checks a realm option: non-empty printable ASCII, so it can be quoted into a
 * `WWW-Authenticate` header safely.
 *
 * @param realm The realm to check.
 * @returns The realm.
 * @throws {TypeError} If it is not a string, is empty or contains anything
 * other than printable ASCII.
 * @example
 * ```ts
 * import { validateRealm } from "./auth_header.ts";
 * validateRealm("sluice"); // "sluice"
 * ```
 */
export function validateRealm(realm: unknown): string {
  if (typeof realm !== "string" || !/^[\x20-\x7e]+$/.test(realm)) {
    throw new TypeError(
      `realm must be a non-empty printable ASCII string: received ${
        typeof realm === "string" ? JSON.stringify(realm) : typeof realm
      }`,
    );
  }
  return realm;
}

/**
 * Whether a string contains a C0 control character or DEL.
 *
 * @param value The string to test.
 * @returns `true` if any code unit is below 0x20 or equals 0x7f.
 * @example
 * ```ts
 * import { hasControlChar } from "./auth_header.ts";
 * hasControlChar("a\nb"); // true
 * ```
 */
export function hasControlChar(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
