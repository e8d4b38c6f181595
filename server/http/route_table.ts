/**
 * Request dispatch: middleware for every request, then the router — a plain
 * route's own middleware and handler, or a takeover route (one that may adopt
 * the socket, like an event stream) — `405` with `Allow`, `204` for
 * `OPTIONS`, the not-found handler, and `HttpError`s turned into answers.
 *
 * @module
 */

import { composeMiddleware } from "./compose_middleware.ts";
import { HttpError } from "./http_error.ts";
import type { RequestResult } from "./request_result.ts";
import { notFound } from "./not_found.ts";
import { peerString } from "./conn_io.ts";
import { Router } from "./router.ts";
import type { HttpRequest, HttpResponse, Logger, Middleware, RouteHandler } from "./types.ts";

/**
 * A route that may take the socket over. It gets the headers middleware
 * added so far (e.g. CORS) and answers with any {@linkcode RequestResult}.
 */
export type TakeoverHandler = (
  req: HttpRequest,
  conn: Deno.Conn,
  headers: [string, string][],
) => RequestResult | Promise<RequestResult>;

type RouteValue =
  | { kind: "route"; handler: RouteHandler; guard: Middleware | undefined }
  | { kind: "takeover"; handler: TakeoverHandler };

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return value instanceof Promise;
}

/**
 * The routes of a server and the middleware in front of them.
 *
 * @example
 * ```ts
 * import { RouteTable } from "./route_table.ts";
 * const routes = new RouteTable(() => {});
 * routes.route("GET", "/hello", () => ({ status: 200, body: "hi\n" }));
 * ```
 */
export class RouteTable {
  readonly #router = new Router<RouteValue>();
  readonly #middleware: Middleware[] = [];
  readonly #log: Logger;
  #guard: Middleware | undefined;
  #notFound: RouteHandler = notFound;

  /**
   * Creates an empty table.
   *
   * @param log Where handler failures are logged.
   */
  constructor(log: Logger) {
    this.#log = log;
  }

  /**
   * Adds middleware run before every route.
   *
   * @param mw The middleware.
   */
  use(mw: Middleware): void {
    this.#middleware.push(mw);
    this.#guard = composeMiddleware(this.#middleware);
  }

  /**
   * Registers a plain route.
   *
   * @param method HTTP method (also answers `HEAD` for `GET`).
   * @param path Path pattern.
   * @param handler Turns the request into a response.
   * @param middleware Middleware for this route only.
   * @throws {RoutePatternError} When the pattern is malformed or taken.
   */
  route(method: string, path: string, handler: RouteHandler, middleware: Middleware[] = []): void {
    this.#router.add(method.toUpperCase(), path, {
      kind: "route",
      handler,
      guard: middleware.length ? composeMiddleware(middleware) : undefined,
    });
  }

  /**
   * Registers a route that may adopt the socket.
   *
   * @param method HTTP method.
   * @param path Path pattern.
   * @param handler Answers the request or adopts the socket.
   * @throws {RoutePatternError} When the pattern is malformed or taken.
   */
  takeover(method: string, path: string, handler: TakeoverHandler): void {
    this.#router.add(method.toUpperCase(), path, { kind: "takeover", handler });
  }

  /**
   * Removes a route.
   *
   * @param method HTTP method.
   * @param path The pattern it was registered with.
   */
  remove(method: string, path: string): void {
    this.#router.remove(method.toUpperCase(), path);
  }

  /**
   * Sets the handler for requests that match no route.
   *
   * @param handler Turns the unmatched request into a response.
   */
  onNotFound(handler: RouteHandler): void {
    this.#notFound = handler;
  }

  /**
   * Dispatches one request; never rejects (a failing handler is answered 500).
   *
   * @param req The request.
   * @param conn Its socket, for takeover routes.
   * @returns What the connection loop does next.
   */
  handle = async (req: HttpRequest, conn: Deno.Conn): Promise<RequestResult> => {
    const headers: [string, string][] = [];
    let res: HttpResponse | undefined;
    let close = false;
    try {
      // No await when there is nothing to wait for (one turn less per request).
      const guarded = this.#guard?.(req, headers);
      res = guarded !== undefined && isPromise(guarded) ? await guarded : guarded;
      if (res === undefined) {
        const m = this.#router.match(req.method, req.path);
        if (m.kind === "found") {
          req.params = m.params;
          if (m.value.kind === "takeover") return await m.value.handler(req, conn, headers);
          res = await m.value.guard?.(req, headers) ?? await m.value.handler(req);
        } else if (m.kind === "method-not-allowed") {
          res = req.method === "OPTIONS"
            ? { status: 204, headers: { Allow: [...m.allow, "OPTIONS"].join(", ") } }
            : {
              status: 405,
              headers: { Allow: m.allow.join(", "), "Content-Type": "text/plain; charset=utf-8" },
              body: "Method Not Allowed\n",
            };
        } else {
          res = await this.#notFound(req);
        }
      }
    } catch (err) {
      if (err instanceof HttpError) {
        res = {
          status: err.status,
          headers: [["Content-Type", "text/plain; charset=utf-8"], ...err.headers],
          body: err.message + "\n",
        };
        close = err.close;
      } else {
        this.#log("error", "handler failed", {
          peer: peerString(conn.remoteAddr as Deno.NetAddr),
          path: req.path,
          error: String(err),
        });
        res = { status: 500, body: "Internal Server Error\n" };
      }
    }
    return { kind: "response", response: res, headers, close };
  };
}
