/**
 * The request object the connection loop hands to middleware and handlers:
 * an {@linkcode HttpRequest} whose query is parsed on first use (most stream
 * requests have none, and a reconnect storm opens thousands at once).
 *
 * @module
 */

import type { RequestHead } from "./request_parser.ts";
import type { HttpRequest, PeerAddr } from "./types.ts";

/**
 * A parsed request as the server builds it.
 *
 * @example
 * ```ts
 * import { IncomingRequest } from "./incoming_request.ts";
 * import { parseRequestHead } from "./request_parser.ts";
 * const head = parseRequestHead(new TextEncoder().encode("GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"))!;
 * const addr = { hostname: "127.0.0.1", port: 40000 };
 * const req = new IncomingRequest(head, new Uint8Array(), addr, addr, false);
 * req.query.get("x"); // "1"
 * ```
 */
export class IncomingRequest implements HttpRequest {
  /** Request method as sent. */
  method: string;
  /** The raw request target. */
  target: string;
  /** Decoded path without the query. */
  path: string;
  /** HTTP version. */
  version: "1.0" | "1.1";
  /** Header fields, lower-case names. */
  headers: Map<string, string>;
  /** Request body. */
  body: Uint8Array;
  /** Route parameters (set by the router). */
  params: Record<string, string> = {};
  /** Address of the client. */
  remoteAddr: PeerAddr;
  /** Address of the server's end of the connection. */
  localAddr: PeerAddr;
  /** Whether the connection is TLS. */
  secure: boolean;
  readonly #rawQuery: string;
  #query: URLSearchParams | undefined;

  /**
   * Creates the request.
   *
   * @param head The parsed head.
   * @param body The body (empty for a GET).
   * @param remoteAddr The client's address.
   * @param localAddr The server's end.
   * @param secure Whether the connection is TLS.
   */
  constructor(
    head: RequestHead,
    body: Uint8Array,
    remoteAddr: PeerAddr,
    localAddr: PeerAddr,
    secure: boolean,
  ) {
    this.method = head.method;
    this.target = head.target;
    this.path = head.path;
    this.version = head.version;
    this.headers = head.headers;
    this.body = body;
    this.remoteAddr = remoteAddr;
    this.localAddr = localAddr;
    this.secure = secure;
    this.#rawQuery = head.rawQuery;
  }

  /** Query parameters of the target, parsed on first use. */
  get query(): URLSearchParams {
    return this.#query ??= new URLSearchParams(this.#rawQuery);
  }

  set query(query: URLSearchParams) {
    this.#query = query;
  }
}

/**
 * One query parameter of a request, without parsing a query the target does
 * not have (the common case of a stream request).
 *
 * @param req The request.
 * @param name The parameter's name.
 * @returns Its first value, or `null`.
 * @example
 * ```ts
 * import { queryValue } from "./incoming_request.ts";
 * // queryValue(req, "lastEventId") -> "4" for /events/a?lastEventId=4
 * ```
 */
export function queryValue(req: HttpRequest, name: string): string | null {
  return req.target.includes("?") ? req.query.get(name) : null;
}
