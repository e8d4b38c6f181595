/**
 * What a request handler gives back to the connection loop.
 *
 * @module
 */

import type { HttpRequest, HttpResponse } from "./types.ts";

/**
 * What a {@linkcode RequestHandler} tells the connection loop:
 * - `response`: encode and write it (`headers` first), then keep the socket
 *   for the next request unless `close`;
 * - `bytes`: write these bytes as they are (e.g. a stream head that ends at
 *   once), then close; `status` is counted as an error when 400 or more;
 * - `adopted`: the handler now owns the socket; the loop lets go of it and
 *   calls `adopt` with the bytes it had read past the request.
 */
export type RequestResult =
  | {
    readonly kind: "response";
    readonly response: HttpResponse;
    readonly headers: readonly [string, string][];
    readonly close: boolean;
  }
  | { readonly kind: "bytes"; readonly bytes: Uint8Array; readonly status: number }
  | { readonly kind: "adopted"; readonly adopt: (leftover: Uint8Array) => void };

/** Turns one parsed request into a {@linkcode RequestResult}. */
export type RequestHandler = (
  req: HttpRequest,
  conn: Deno.Conn,
  keepAlive: boolean,
) => RequestResult | Promise<RequestResult>;
