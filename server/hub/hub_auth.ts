/**
 * Authentication policy of the hub: who may publish ({@linkcode publisherAuth}),
 * counting refusals for the metrics ({@linkcode countAuthFailures}), and the
 * subscriber schemes' names and defaults. The subscriber middleware itself is
 * built by `subscriber_auth.ts`, loaded only when a scheme is configured (its
 * password hashing needs `node:crypto`, which an open hub never loads).
 *
 * @module
 */

import { bearerAuth } from "../middleware/auth_bearer.ts";
import type { HttpRequest, HttpResponse, Middleware } from "../http/types.ts";

/** How subscribers authenticate. */
export type SubscriberAuthScheme = "none" | "basic" | "digest" | "bearer";

/** Every {@linkcode SubscriberAuthScheme}. */
export const SUBSCRIBER_AUTH_SCHEMES: readonly SubscriberAuthScheme[] = Object.freeze([
  "none",
  "basic",
  "digest",
  "bearer",
]);

/** Defaults of the subscriber auth options (`subscriber_auth.ts`). */
export const DEFAULT_SUBSCRIBER_AUTH_OPTIONS: Readonly<{ realm: string; cookie: string }> = Object
  .freeze({ realm: "sluice", cookie: "sluice_token" });

/**
 * Whether an address is a loopback address.
 *
 * @param hostname Numeric address.
 * @returns `true` for 127.0.0.0/8, `::1` and IPv4-mapped loopback.
 * @example
 * ```ts
 * import { isLoopback } from "./hub_auth.ts";
 * isLoopback("127.0.0.1"); // true
 * isLoopback("192.0.2.7"); // false
 * ```
 */
export function isLoopback(hostname: string): boolean {
  return hostname === "::1" || hostname.startsWith("127.") ||
    hostname.startsWith("::ffff:127.");
}

/** Options of {@linkcode publisherAuth}. */
export interface PublisherAuthOptions {
  /**
   * Bearer tokens publishers must send (`Authorization: Bearer <token>`;
   * never in the URL). Without any, publishing is allowed from loopback only.
   * @default {[]}
   */
  tokens?: string[];
  /**
   * Realm of the `401` challenge.
   * @default {"sluice"}
   */
  realm?: string;
  /**
   * Without tokens: browser origins (besides the hub's own) whose pages may
   * publish, e.g. the `--cors-origin` list; `"*"` allows any. A loopback
   * request with any other `Origin` gets `403`, so a web page cannot publish
   * through the user's browser (cross-site request forgery).
   * @default {[]}
   */
  origins?: string[];
}

const FORBIDDEN_TEXT = { "Content-Type": "text/plain; charset=utf-8" };

/**
 * Builds the middleware that guards publishing. With tokens, it is
 * {@linkcode bearerAuth} with the token accepted in the header only (`401`
 * without a valid one). Without tokens, only loopback peers may publish
 * (`403` for others), and a request from a browser page of another origin
 * (an `Origin` header that is neither the hub's own nor in `origins`) gets
 * `403` as well.
 *
 * @param options Tokens, realm and allowed browser origins.
 * @returns The middleware.
 * @throws {TypeError} If a token is invalid or repeated, or the realm is not
 * printable ASCII.
 * @example
 * ```ts
 * import { publisherAuth } from "./hub_auth.ts";
 * const guard = publisherAuth({ tokens: ["pub-7f3a9c"] });
 * ```
 */
export function publisherAuth(options: PublisherAuthOptions = {}): Middleware {
  const tokens = options.tokens ?? [];
  if (tokens.length > 0) {
    return bearerAuth({
      tokens: tokens.map((token, i) => ({ name: `publisher-${i + 1}`, token })),
      realm: options.realm ?? DEFAULT_SUBSCRIBER_AUTH_OPTIONS.realm,
      queryParam: null,
    });
  }
  const origins = new Set((options.origins ?? []).map((o) => o === "*" ? o : new URL(o).origin));
  const forbidden = (why: string): HttpResponse => ({
    status: 403,
    headers: FORBIDDEN_TEXT,
    body: `Forbidden: ${why}\n`,
  });
  return (req: HttpRequest) => {
    if (!isLoopback(req.remoteAddr.hostname)) {
      return forbidden("publishing is allowed from loopback only");
    }
    const origin = req.headers.get("origin");
    if (origin !== undefined && !origins.has("*") && !origins.has(origin)) {
      const host = req.headers.get("host");
      const own = host !== undefined && origin === `${req.secure ? "https" : "http"}://${host}`;
      if (!own) return forbidden("publishing from a page of this origin is not allowed");
    }
    return undefined;
  };
}

/**
 * Wraps authentication middleware so each refusal calls `onFailure`: every
 * `403`, and every `401` to a request that carried credentials (an
 * `Authorization` header, an `access_token` query parameter or a `Cookie`).
 * A `401` to a request without any is the challenge every Basic or Digest
 * login starts with, and is not counted.
 *
 * @param mw The authentication middleware.
 * @param onFailure Called once per refusal.
 * @returns The wrapped middleware.
 * @example
 * ```ts
 * import { bearerAuth } from "../middleware/auth_bearer.ts";
 * import { countAuthFailures } from "./hub_auth.ts";
 * let failures = 0;
 * const auth = countAuthFailures(bearerAuth({ tokens: ["t0ken"] }), () => failures++);
 * ```
 */
export function countAuthFailures(mw: Middleware, onFailure: () => void): Middleware {
  const check = (req: HttpRequest, res: HttpResponse | undefined): HttpResponse | undefined => {
    if (
      res !== undefined &&
      (res.status === 403 ||
        (res.status === 401 &&
          (req.headers.has("authorization") || req.query.has("access_token") ||
            req.headers.has("cookie"))))
    ) {
      onFailure();
    }
    return res;
  };
  return (req, responseHeaders) => {
    const res = mw(req, responseHeaders);
    return res instanceof Promise ? res.then((r) => check(req, r)) : check(req, res);
  };
}
