/**
 * Combines a list of middleware into one.
 *
 * @module
 */

import type { HttpRequest, HttpResponse, Middleware } from "./types.ts";

type Result = HttpResponse | undefined | Promise<HttpResponse | undefined>;

function run(
  chain: readonly Middleware[],
  start: number,
  req: HttpRequest,
  responseHeaders: [string, string][],
): Result {
  for (let i = start; i < chain.length; i++) {
    const result = chain[i](req, responseHeaders);
    if (result instanceof Promise) {
      return result.then((r) => r !== undefined ? r : run(chain, i + 1, req, responseHeaders));
    }
    if (result !== undefined) return result;
  }
  return undefined;
}

/**
 * Composes middleware into one that runs them in order and stops at the first
 * that returns a response. Synchronous middleware stay synchronous: a promise
 * is only returned once one of them returns a promise. Compose once, when
 * routes are registered, not per request.
 *
 * @param list Middleware in the order they should run, e.g. `[cors, auth]`.
 * @returns One middleware; for an empty list, one that always passes.
 * @throws {TypeError} If `list` is not an array of functions.
 * @example
 * ```ts
 * import { composeMiddleware } from "./compose_middleware.ts";
 * import type { Middleware } from "./types.ts";
 * const deny: Middleware = () => ({ status: 403 });
 * const mw = composeMiddleware([() => undefined, deny]);
 * ```
 */
export function composeMiddleware(list: readonly Middleware[]): Middleware {
  if (!Array.isArray(list)) {
    throw new TypeError(`middleware list must be an array: received ${typeof list}`);
  }
  const chain = [...list];
  chain.forEach((mw, i) => {
    if (typeof mw !== "function") {
      throw new TypeError(`middleware[${i}] must be a function: received ${typeof mw}`);
    }
  });
  if (chain.length === 1) return chain[0];
  return (req, responseHeaders) => run(chain, 0, req, responseHeaders);
}
