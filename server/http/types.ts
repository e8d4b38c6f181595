/**
 * Types shared by the HTTP side of Sluice: the parsed request, the plain
 * response a route handler returns, and the middleware signature.
 *
 * @module
 */

/** Address of the peer of a connection. */
export interface PeerAddr {
  /** Numeric address, e.g. `127.0.0.1` or `::1`. */
  hostname: string;
  /** Remote port. */
  port: number;
}

/** A parsed HTTP/1.1 request, head and (for plain routes) body. */
export interface HttpRequest {
  /** Request method as sent, e.g. `GET`. */
  method: string;
  /** The raw request target, e.g. `/events/a?lastEventId=4`. */
  target: string;
  /** Decoded path without the query, e.g. `/events/a`. */
  path: string;
  /** Query parameters of the target. */
  query: URLSearchParams;
  /** HTTP version, `1.0` or `1.1`. */
  version: "1.0" | "1.1";
  /** Header fields; names are lower-case, repeated fields are joined with `, `. */
  headers: Map<string, string>;
  /** Request body (empty for a GET). */
  body: Uint8Array;
  /** Route parameters, e.g. `{ channel: "a" }` for `/events/:channel`. */
  params: Record<string, string>;
  /** Address of the client. */
  remoteAddr: PeerAddr;
  /**
   * Address of the server's end of the connection: the address the client
   * connected to (useful when listening on `0.0.0.0`). Set by the server on
   * every request it parses.
   */
  localAddr?: PeerAddr;
  /** Whether the connection is TLS. */
  secure: boolean;
  /** Set by authentication middleware: the authenticated user or token name. */
  user?: string;
}

/** A complete response to a plain (non-stream) request. */
export interface HttpResponse {
  /** Status code, e.g. `200`. */
  status: number;
  /** Extra header fields. `Content-Length` and `Connection` are set by the server. */
  headers?: Record<string, string> | [string, string][];
  /** Body; strings are UTF-8 encoded. */
  body?: string | Uint8Array;
}

/**
 * A route handler: turns a request into a response.
 *
 * @example
 * ```ts
 * import type { RouteHandler } from "./types.ts";
 * const hello: RouteHandler = (req) => ({ status: 200, body: `hi ${req.remoteAddr.hostname}\n` });
 * ```
 */
export type RouteHandler = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

/**
 * Middleware runs before a route handler or an event source accepts a request.
 * Return a response to answer the request yourself (e.g. `401`), or `undefined`
 * to let it pass. Headers pushed onto `responseHeaders` are added to whatever
 * response is finally sent (stream heads included), which is how CORS works.
 */
export type Middleware = (
  req: HttpRequest,
  responseHeaders: [string, string][],
) => HttpResponse | undefined | Promise<HttpResponse | undefined>;

/** Severity of a log record. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * Receives the server's log records. Library code never prints; the CLI
 * supplies a logger that does.
 */
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/**
 * Why a socket ended: `"response-sent"` (answered, then closed as the request
 * asked or as HTTP/1.0 implies), `"client-closed"` (the peer closed or reset it
 * before or between requests), `"bad-request"` (a malformed or over-limit
 * request was answered 4xx/5xx), `"header-timeout"` (no whole request within
 * `headerTimeout`: 408), `"idle-timeout"` (an idle keep-alive socket),
 * `"pending-heads-full"` (made room for a newer socket under `maxPendingHeads`:
 * 503), `"too-many-connections"` (refused under `maxConnections`: 503),
 * `"write-error"` (a response could not be written), `"stream"` (a handler
 * adopted it: in Sluice, an event stream; counted when the adopter closes it), `"shutdown"` (the server stopped), `"error"` (an unexpected
 * failure, logged at level `error`).
 */
export type ConnectionCloseReason =
  | "response-sent"
  | "client-closed"
  | "bad-request"
  | "header-timeout"
  | "idle-timeout"
  | "pending-heads-full"
  | "too-many-connections"
  | "write-error"
  | "stream"
  | "shutdown"
  | "error";
