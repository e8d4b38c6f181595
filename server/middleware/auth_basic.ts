/**
 * HTTP Basic authentication middleware (RFC 7617).
 *
 * @module
 */

import { AuthHeaderError, parseAuthorization, quote, validateRealm } from "./auth_header.ts";
import type { HttpResponse, Middleware } from "../http/types.ts";
import { UserStore } from "./users.ts";

/** Options for {@linkcode basicAuth}. */
export interface BasicAuthOptions {
  /**
   * Realm shown by browsers in the login prompt; printable ASCII. Users stored
   * as HA1 hashes must have been hashed with this realm.
   * @default {"sluice"}
   */
  realm?: string;
  /** The users that may log in. Required. */
  users: UserStore;
}

/** Defaults of {@linkcode BasicAuthOptions}. */
export const DEFAULT_BASIC_AUTH_OPTIONS: Readonly<{ realm: string }> = Object.freeze({
  realm: "sluice",
});

const TEXT = "text/plain; charset=utf-8";
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Creates middleware that requires `Authorization: Basic <base64(user:pass)>`.
 * On success it sets `req.user` and lets the request pass. Missing or wrong
 * credentials get `401` with `WWW-Authenticate: Basic realm="…",
 * charset="UTF-8"`; a malformed header (bad base64, not UTF-8, no `:`) gets
 * `400`. Passwords are compared in constant time; a user stored only as an
 * HA1 is checked by hashing `user:realm:password`.
 *
 * @param options Realm and users.
 * @returns The middleware.
 * @throws {TypeError} If `users` is not a `UserStore` or `realm` is not
 * printable ASCII.
 * @example
 * ```ts
 * import { basicAuth } from "./auth_basic.ts";
 * import { UserStore } from "./users.ts";
 * const auth = basicAuth({ realm: "sluice", users: new UserStore().addPassword("admin", "admin") });
 * ```
 */
export function basicAuth(options: BasicAuthOptions): Middleware {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object: received ${options}`);
  }
  const realm = validateRealm(options.realm ?? DEFAULT_BASIC_AUTH_OPTIONS.realm);
  const users = options.users;
  if (!(users instanceof UserStore)) {
    throw new TypeError(`users must be a UserStore: received ${typeof users}`);
  }
  const challenge = `Basic realm=${quote(realm)}, charset="UTF-8"`;
  const unauthorized = (): HttpResponse => ({
    status: 401,
    headers: [["WWW-Authenticate", challenge], ["Content-Type", TEXT]],
    body: "401 Unauthorized\n",
  });
  const badRequest = (): HttpResponse => ({
    status: 400,
    headers: [["Content-Type", TEXT]],
    body: "400 Bad Request\n",
  });

  return (req) => {
    const header = req.headers.get("authorization");
    if (header === undefined) return unauthorized();
    let token: string | undefined;
    try {
      const creds = parseAuthorization(header);
      if (creds.scheme !== "basic") return unauthorized();
      token = creds.token68;
    } catch (err) {
      if (err instanceof AuthHeaderError) return badRequest();
      throw err;
    }
    if (token === undefined) return badRequest();
    let decoded: string;
    try {
      const binary = atob(token);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      decoded = strictUtf8.decode(bytes);
    } catch {
      return badRequest();
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) return badRequest();
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (!users.verifyPassword(user, realm, password)) return unauthorized();
    req.user = user;
    return undefined;
  };
}
