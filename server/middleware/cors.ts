/**
 * Cross-origin resource sharing (CORS) middleware for the Fetch standard's
 * simple and preflight requests.
 *
 * @module
 */

import { isToken } from "../http/header_rules.ts";
import type { HttpResponse, Middleware } from "../http/types.ts";

/** Options for {@linkcode cors}. */
export interface CorsOptions {
  /**
   * Allowed origins, e.g. `["https://app.example"]`, or `["*"]` for any origin.
   * Origins are normalised (`https://A.example:443` → `https://a.example`).
   */
  origins: string[];
  /**
   * Send `Access-Control-Allow-Credentials: true` so cookies and HTTP auth
   * are sent cross-origin. Not allowed with `"*"`.
   * @default {false}
   */
  credentials?: boolean;
  /**
   * Request headers a preflight may allow.
   * @default {["Last-Event-ID", "Content-Type", "Authorization", "Cache-Control"]}
   */
  allowHeaders?: string[];
  /**
   * Methods a preflight may allow.
   * @default {["GET", "POST", "OPTIONS"]}
   */
  methods?: string[];
  /**
   * Response headers scripts may read (`Access-Control-Expose-Headers`).
   * @default {[]}
   */
  exposeHeaders?: string[];
  /**
   * Seconds a browser may cache a preflight (`Access-Control-Max-Age`), or
   * `undefined` to not send it.
   * @default {undefined}
   */
  maxAge?: number;
}

/** Defaults of {@linkcode CorsOptions}. */
export const DEFAULT_CORS_OPTIONS: Readonly<{
  credentials: boolean;
  allowHeaders: readonly string[];
  methods: readonly string[];
  exposeHeaders: readonly string[];
}> = Object.freeze({
  credentials: false,
  allowHeaders: Object.freeze(["Last-Event-ID", "Content-Type", "Authorization", "Cache-Control"]),
  methods: Object.freeze(["GET", "POST", "OPTIONS"]),
  exposeHeaders: Object.freeze([]),
});

function normaliseOrigin(origin: unknown, i: number): string {
  if (origin === "*") return origin;
  let url: URL | undefined;
  try {
    if (typeof origin === "string") url = new URL(origin);
  } catch {
    url = undefined;
  }
  if (
    url === undefined || url.origin === "null" || url.pathname !== "/" || url.search !== "" ||
    url.hash !== "" || url.username !== "" || url.password !== "" ||
    !/^[a-z][a-z0-9+.-]*:\/\/[^/]+\/?$/i.test(origin as string)
  ) {
    throw new TypeError(
      `origins[${i}] must be "*" or an origin like "https://app.example:8443": received ${
        JSON.stringify(origin)
      }`,
    );
  }
  return url.origin;
}

function tokenList(value: unknown, name: string, fallback: readonly string[]): string[] {
  if (value === undefined) return [...fallback];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || !isToken(v))) {
    throw new TypeError(
      `${name} must be an array of HTTP tokens: received ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * Creates CORS middleware.
 *
 * - A request whose `Origin` is allowed gets `Access-Control-Allow-Origin`
 *   (the origin, or `*` for a wildcard without credentials),
 *   `Access-Control-Allow-Credentials: true` if enabled and
 *   `Access-Control-Expose-Headers` if set, pushed onto `responseHeaders`, and
 *   passes on. Unless the list is the bare wildcard, every response also gets
 *   `Vary: Origin`, so caches keep per-origin copies.
 * - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
 *   from an allowed origin is answered `204` with the allow headers; from any
 *   other origin, `403`.
 * - Any other request from a disallowed origin passes with no CORS headers.
 *
 * Put it before authentication middleware: preflights carry no credentials,
 * and `401` answers then carry the CORS headers scripts need to read them.
 *
 * @param options Origins, credentials, headers, methods, max age.
 * @returns The middleware.
 * @throws {TypeError} If `origins` is empty or holds something that is not an
 * origin or `"*"`, if `"*"` is combined with `credentials: true` (that would
 * let every site read responses with the user's credentials), or a header or
 * method name is not a token.
 * @throws {RangeError} If `maxAge` is not a non-negative integer.
 * @example
 * ```ts
 * import { cors } from "./cors.ts";
 * const mw = cors({ origins: ["https://app.example"], credentials: true, maxAge: 600 });
 * ```
 */
export function cors(options: CorsOptions): Middleware {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object: received ${options}`);
  }
  const list = options.origins;
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(`origins must be a non-empty array: received ${JSON.stringify(list)}`);
  }
  const origins = new Set(list.map(normaliseOrigin));
  const wildcard = origins.has("*");
  const credentials = options.credentials ?? DEFAULT_CORS_OPTIONS.credentials;
  if (typeof credentials !== "boolean") {
    throw new TypeError(`credentials must be a boolean: received ${credentials}`);
  }
  if (wildcard && credentials) {
    throw new TypeError(
      'origins "*" cannot be combined with credentials: true; list the allowed origins',
    );
  }
  const allowHeaders = tokenList(
    options.allowHeaders,
    "allowHeaders",
    DEFAULT_CORS_OPTIONS.allowHeaders,
  );
  const methods = tokenList(options.methods, "methods", DEFAULT_CORS_OPTIONS.methods);
  const exposeHeaders = tokenList(
    options.exposeHeaders,
    "exposeHeaders",
    DEFAULT_CORS_OPTIONS.exposeHeaders,
  );
  const maxAge = options.maxAge;
  if (maxAge !== undefined && (!Number.isSafeInteger(maxAge) || maxAge < 0)) {
    throw new RangeError(`maxAge must be a non-negative integer: received ${maxAge}`);
  }
  // With only "*" the answer does not depend on the origin.
  const varies = !(wildcard && origins.size === 1);

  return (req, responseHeaders) => {
    const origin = req.headers.get("origin");
    const preflight = req.method === "OPTIONS" && origin !== undefined &&
      req.headers.has("access-control-request-method");
    const allowed = origin !== undefined && (wildcard || origins.has(origin));
    const common: [string, string][] = [];
    if (allowed) {
      common.push(["Access-Control-Allow-Origin", wildcard ? "*" : origin]);
      if (credentials) common.push(["Access-Control-Allow-Credentials", "true"]);
    }
    if (varies) common.push(["Vary", "Origin"]);

    if (preflight) {
      if (!allowed) {
        const denied: HttpResponse = {
          status: 403,
          headers: [...common, ["Content-Type", "text/plain; charset=utf-8"]],
          body: "403 Forbidden\n",
        };
        return denied;
      }
      const headers: [string, string][] = [
        ...common,
        ["Access-Control-Allow-Methods", methods.join(", ")],
        ["Access-Control-Allow-Headers", allowHeaders.join(", ")],
      ];
      if (maxAge !== undefined) headers.push(["Access-Control-Max-Age", String(maxAge)]);
      return { status: 204, headers };
    }
    if (allowed && exposeHeaders.length > 0) {
      common.push(["Access-Control-Expose-Headers", exposeHeaders.join(", ")]);
    }
    for (const h of common) responseHeaders.push(h);
    return undefined;
  };
}
