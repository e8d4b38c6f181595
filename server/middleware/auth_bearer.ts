/**
 * Bearer token authentication middleware (RFC 6750), accepting the token from
 * the `Authorization` header, a query parameter (for `EventSource`, which
 * cannot set headers) or a cookie.
 *
 * @module
 */

import { hasControlChar, quote, validateRealm } from "./auth_header.ts";
import type { HttpResponse, Middleware } from "../http/types.ts";

/** A token with a name that is put in `req.user` (and so in logs) instead of the token. */
export interface NamedBearerToken {
  /** Name for logs, e.g. `"dashboard"`. */
  name: string;
  /** The secret token (RFC 6750 `b64token` characters). */
  token: string;
}

/** Options for {@linkcode bearerAuth}. */
export interface BearerAuthOptions {
  /**
   * Accepted tokens; at least one. Each is a string or a `{ name, token }`.
   * A plain string token authenticates as `req.user = "token-<n>"` (1-based
   * position), so the secret itself never becomes the user name.
   */
  tokens: (string | NamedBearerToken)[];
  /**
   * Realm in the `WWW-Authenticate` challenge (printable ASCII).
   * @default {"sluice"}
   */
  realm?: string;
  /**
   * Query parameter that may carry the token, or `null` to accept it only in
   * the header or cookie. Tokens in URLs can end up in logs and history;
   * prefer the cookie for same-origin pages.
   * @default {"access_token"}
   */
  queryParam?: string | null;
  /**
   * Cookie that may carry the token, e.g. `"sluice_token"`.
   * @default {undefined} (cookies are not read)
   */
  cookie?: string;
}

/** Defaults of {@linkcode BearerAuthOptions}. */
export const DEFAULT_BEARER_AUTH_OPTIONS: Readonly<{ realm: string; queryParam: string }> = Object
  .freeze({ realm: "sluice", queryParam: "access_token" });

const TEXT = "text/plain; charset=utf-8";
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const encoder = new TextEncoder();

/**
 * Compares two byte strings in time that depends only on their lengths, not
 * on where they differ (no node:crypto, so a hub without subscriber auth
 * never loads it).
 */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

function readCookie(header: string, name: string): string | undefined {
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1);
    }
    return value;
  }
  return undefined;
}

/**
 * Creates middleware that requires a bearer token. The token is taken, in
 * this order, from `Authorization: Bearer <token>`, the `queryParam` query
 * parameter, or the `cookie` cookie. Tokens are compared in constant time
 * (every byte of both sides, against every token, whatever matches first).
 *
 * - No token: `401` with `WWW-Authenticate: Bearer realm="…"`.
 * - Unknown token: `401` with `error="invalid_token"` added.
 * - Malformed (`Bearer` without a token, a token with spaces or characters
 *   outside `b64token`, an empty query parameter): `400` with
 *   `error="invalid_request"`.
 *
 * A non-Bearer `Authorization` header (e.g. Basic) is ignored, so the query
 * or cookie can still authenticate. On success `req.user` is the token's name.
 *
 * @param options Tokens, realm, query parameter and cookie name.
 * @returns The middleware.
 * @throws {TypeError} If `tokens` is empty or holds an invalid token or name,
 * a token is repeated, `realm` is not printable ASCII, or `queryParam` /
 * `cookie` is not a valid name.
 * @example
 * ```ts
 * import { bearerAuth } from "./auth_bearer.ts";
 * const auth = bearerAuth({ tokens: ["s3cr3t-token"], cookie: "sluice_token" });
 * ```
 */
export function bearerAuth(options: BearerAuthOptions): Middleware {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object: received ${options}`);
  }
  const realm = validateRealm(options.realm ?? DEFAULT_BEARER_AUTH_OPTIONS.realm);
  const queryParam = options.queryParam === undefined
    ? DEFAULT_BEARER_AUTH_OPTIONS.queryParam
    : options.queryParam;
  if (queryParam !== null && (typeof queryParam !== "string" || queryParam.length === 0)) {
    throw new TypeError(`queryParam must be a non-empty string or null: received ${queryParam}`);
  }
  const cookie = options.cookie;
  if (cookie !== undefined && (typeof cookie !== "string" || !COOKIE_NAME.test(cookie))) {
    throw new TypeError(`cookie must be a valid cookie name: received ${JSON.stringify(cookie)}`);
  }
  const list = options.tokens;
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(
      `tokens must be a non-empty array: received ${
        Array.isArray(list) ? "an empty array" : typeof list
      }`,
    );
  }
  const known: { name: string; bytes: Uint8Array }[] = [];
  const distinct = new Set<string>();
  list.forEach((entry, i) => {
    const token = typeof entry === "string" ? entry : entry?.token;
    const name = typeof entry === "string" ? `token-${i + 1}` : entry?.name;
    if (typeof token !== "string" || !B64TOKEN.test(token)) {
      // Never print the token: it is a secret.
      throw new TypeError(
        `tokens[${i}] must be a non-empty string of RFC 6750 b64token characters`,
      );
    }
    if (typeof name !== "string" || name.length === 0 || hasControlChar(name)) {
      throw new TypeError(`tokens[${i}].name must be a non-empty string without control chars`);
    }
    if (distinct.has(token)) throw new TypeError(`tokens[${i}] repeats an earlier token`);
    distinct.add(token);
    known.push({ name, bytes: encoder.encode(token) });
  });

  const challenge = `Bearer realm=${quote(realm)}`;
  const respond = (status: 400 | 401, error?: string): HttpResponse => ({
    status,
    headers: [
      ["WWW-Authenticate", error === undefined ? challenge : `${challenge}, error="${error}"`],
      ["Content-Type", TEXT],
    ],
    body: status === 400 ? "400 Bad Request\n" : "401 Unauthorized\n",
  });

  return (req) => {
    let token: string | undefined;
    const header = req.headers.get("authorization");
    if (header !== undefined) {
      const m = /^[ \t]*bearer(?:[ \t]+|$)/i.exec(header);
      if (m !== null) {
        token = header.slice(m[0].length).replace(/[ \t]+$/, "");
        if (!B64TOKEN.test(token)) return respond(400, "invalid_request");
      }
    }
    if (token === undefined && queryParam !== null) {
      const fromQuery = req.query.get(queryParam);
      if (fromQuery !== null) {
        if (!B64TOKEN.test(fromQuery)) return respond(400, "invalid_request");
        token = fromQuery;
      }
    }
    if (token === undefined && cookie !== undefined) {
      const cookies = req.headers.get("cookie");
      const fromCookie = cookies === undefined ? undefined : readCookie(cookies, cookie);
      if (fromCookie !== undefined) {
        if (!B64TOKEN.test(fromCookie)) return respond(400, "invalid_request");
        token = fromCookie;
      }
    }
    if (token === undefined) return respond(401);
    const given = encoder.encode(token);
    let name: string | undefined;
    for (const candidate of known) {
      if (constantTimeEqual(given, candidate.bytes)) name ??= candidate.name;
    }
    if (name === undefined) return respond(401, "invalid_token");
    req.user = name;
    return undefined;
  };
}
