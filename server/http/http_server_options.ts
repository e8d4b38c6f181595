/**
 * The options of the HTTP/1.1 connection loop (`HttpServer`, `http_server.ts`):
 * its limits and timeouts, TLS, the request handler and the logger.
 *
 * @module
 */

import type { RequestLimits } from "./request_parser.ts";
import type { RequestHandler } from "./request_result.ts";
import type { Logger } from "./types.ts";

/** The limits and timeouts of the connection loop (all resolved, see `ServerOptions`). */
export interface HttpServerLimits extends RequestLimits {
  /** TCP port; `0` picks a free one. */
  readonly port: number;
  /** Address to listen on. */
  readonly hostname: string;
  /** Share the port with other processes (`SO_REUSEPORT`). */
  readonly reusePort?: boolean;
  /** Most sockets at once, adopted ones included. */
  readonly maxConnections: number;
  /** Milliseconds to receive a whole request head (and body) before 408. */
  readonly headerTimeout: number;
  /** Most sockets at once still receiving a request (the slowloris cap). */
  readonly maxPendingHeads: number;
  /** Milliseconds an idle keep-alive socket stays open. */
  readonly idleTimeout: number;
  /** Seconds in `Retry-After` of a 503. */
  readonly retryAfter: number;
  /** Reason phrase of the 503 sent when full. */
  readonly busyStatusText: string;
}

/** Options of {@linkcode HttpServer}. */
export interface HttpServerOptions {
  /** Limits and timeouts. */
  readonly limits: HttpServerLimits;
  /** PEM certificate chain and key: listen with TLS. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Answers every request. */
  readonly handler: RequestHandler;
  /** Where the loop logs (never throws). */
  readonly log: Logger;
  /** Sockets adopted by handlers and still open: they count against `maxConnections`. */
  readonly adoptedSockets: () => number;
  /** Called once, when the first connection is accepted. */
  readonly onFirstConnection?: () => void;
}
