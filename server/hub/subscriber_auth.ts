/**
 * The hub's subscriber authentication: Basic, Digest or Bearer, built from a
 * scheme name, a realm, users or tokens. Loaded only when a scheme is
 * configured (Basic and Digest hash passwords with `node:crypto`).
 *
 * @module
 */

import { basicAuth } from "../middleware/auth_basic.ts";
import { bearerAuth } from "../middleware/auth_bearer.ts";
import { digestAuth } from "../middleware/auth_digest.ts";
import type { Middleware } from "../http/types.ts";
import { UserStore } from "../middleware/users.ts";
import {
  DEFAULT_SUBSCRIBER_AUTH_OPTIONS,
  SUBSCRIBER_AUTH_SCHEMES,
  type SubscriberAuthScheme,
} from "./hub_auth.ts";

/** Options of {@linkcode subscriberAuth}. */
export interface SubscriberAuthOptions {
  /** The scheme; `"none"` lets everyone subscribe. */
  scheme: SubscriberAuthScheme;
  /**
   * Realm of the challenges (printable ASCII); HA1 hashes of `users` must be
   * made for it.
   * @default {"sluice"}
   */
  realm?: string;
  /** Users, for `"basic"` and `"digest"` (required there, refused otherwise). */
  users?: UserStore;
  /** Tokens, for `"bearer"` (required there, refused otherwise). */
  tokens?: string[];
  /**
   * For `"bearer"`: the cookie that may carry the token (for same-origin
   * pages), or `null` to read no cookie. The token is also accepted in
   * `Authorization: Bearer` and `?access_token=`.
   * @default {"sluice_token"}
   */
  cookie?: string | null;
}

/**
 * Builds the subscriber authentication middleware for a scheme.
 *
 * @param options Scheme, realm, users or tokens.
 * @returns The middleware, or `undefined` for `"none"`.
 * @throws {TypeError} For an unknown scheme, missing or empty users (Basic,
 * Digest) or tokens (Bearer), users or tokens given to a scheme that does not
 * use them, or anything the underlying middleware refuses (bad realm, bad
 * token characters).
 * @example
 * ```ts
 * import { subscriberAuth } from "./subscriber_auth.ts";
 * import { UserStore } from "../middleware/users.ts";
 * const auth = subscriberAuth({
 *   scheme: "digest",
 *   realm: "sluice",
 *   users: new UserStore().addPassword("admin", "s3cret"),
 * });
 * ```
 */
export function subscriberAuth(options: SubscriberAuthOptions): Middleware | undefined {
  const { scheme, users, tokens } = options;
  if (!SUBSCRIBER_AUTH_SCHEMES.includes(scheme)) {
    throw new TypeError(
      `auth scheme must be one of ${SUBSCRIBER_AUTH_SCHEMES.join(", ")}: received ${
        JSON.stringify(scheme)
      }`,
    );
  }
  const wantsUsers = scheme === "basic" || scheme === "digest";
  if (users !== undefined && !wantsUsers) {
    throw new TypeError(`users are for the basic and digest schemes: scheme is ${scheme}`);
  }
  if (tokens !== undefined && scheme !== "bearer") {
    throw new TypeError(`tokens are for the bearer scheme: scheme is ${scheme}`);
  }
  const realm = options.realm ?? DEFAULT_SUBSCRIBER_AUTH_OPTIONS.realm;
  if (wantsUsers) {
    if (!(users instanceof UserStore) || users.size === 0) {
      throw new TypeError(`${scheme} auth needs at least one user`);
    }
    return scheme === "basic" ? basicAuth({ realm, users }) : digestAuth({ realm, users });
  }
  if (scheme === "bearer") {
    if (tokens === undefined || tokens.length === 0) {
      throw new TypeError("bearer auth needs at least one token");
    }
    const cookie = options.cookie === undefined
      ? DEFAULT_SUBSCRIBER_AUTH_OPTIONS.cookie
      : options.cookie ?? undefined;
    return bearerAuth({ tokens, realm, cookie });
  }
  return undefined;
}
