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
   * Synchronous middleware and handlers answer synchronously: no promise and
   * no turn of the event loop per request until one of them returns a promise.
   *
   * @param req The request.
   * @param conn Its socket, for takeover routes.
   * @returns What the connection loop does next.
   */
  handle = (req: HttpRequest, conn: Deno.Conn): RequestResult | Promise<RequestResult> => {
    const headers: [string, string][] = [];
    try {
      const guarded = this.#guard?.(req, headers);
      if (guarded === undefined) return this.#dispatch(req, conn, headers);
      if (!isPromise(guarded)) return answer(guarded, headers);
      return guarded.then(
        (res) => res === undefined ? this.#dispatch(req, conn, headers) : answer(res, headers),
        (err) => this.#failed(err, req, conn, headers),
      );
    } catch (err) {
      return this.#failed(err, req, conn, headers);
    }
  };

  /** The router's part of {@linkcode handle}, after the global middleware passed; never rejects. */
  #dispatch(
    req: HttpRequest,
    conn: Deno.Conn,
    headers: [string, string][],
  ): RequestResult | Promise<RequestResult> {
    try {
      const m = this.#router.match(req.method, req.path);
      if (m.kind === "found") {
        req.params = m.params;
        const value = m.value;
        if (value.kind === "takeover") {
          const taken = value.handler(req, conn, headers);
          return isPromise(taken)
            ? taken.catch((err) => this.#failed(err, req, conn, headers))
            : taken;
        }
        const guarded = value.guard?.(req, headers);
        if (guarded === undefined) return this.#settle(value.handler(req), req, conn, headers);
        if (!isPromise(guarded)) return answer(guarded, headers);
        return this.#settle(guarded.then((res) => res ?? value.handler(req)), req, conn, headers);
      }
      if (m.kind === "method-not-allowed") {
        return answer(
          req.method === "OPTIONS"
            ? { status: 204, headers: { Allow: [...m.allow, "OPTIONS"].join(", ") } }
            : {
              status: 405,
              headers: { Allow: m.allow.join(", "), "Content-Type": "text/plain; charset=utf-8" },
              body: "Method Not Allowed\n",
            },
          headers,
        );
      }
      return this.#settle(this.#notFound(req), req, conn, headers);
    } catch (err) {
      return this.#failed(err, req, conn, headers);
    }
  }

  /** A handler's response as the loop's answer, waiting only when it is a promise. */
  #settle(
    res: HttpResponse | Promise<HttpResponse>,
    req: HttpRequest,
    conn: Deno.Conn,
    headers: [string, string][],
  ): RequestResult | Promise<RequestResult> {
    if (!isPromise(res)) return answer(res, headers);
    return res.then((r) => answer(r, headers), (err) => this.#failed(err, req, conn, headers));
  }

  /** What a handler threw: its `HttpError` as the answer, anything else a logged 500. */
  #failed(
    err: unknown,
    req: HttpRequest,
    conn: Deno.Conn,
    headers: [string, string][],
  ): RequestResult {
    if (err instanceof HttpError) {
      const response: HttpResponse = {
        status: err.status,
        headers: [["Content-Type", "text/plain; charset=utf-8"], ...err.headers],
        body: err.message + "\n",
      };
      return { kind: "response", response, headers, close: err.close };
    }
    this.#log("error", "handler failed", {
      peer: peerString(conn.remoteAddr as Deno.NetAddr),
      path: req.path,
      error: String(err),
    });
    return answer({ status: 500, body: "Internal Server Error\n" }, headers);
  }
}

function answer(response: HttpResponse, headers: [string, string][]): RequestResult {
  return { kind: "response", response, headers, close: false };
}
