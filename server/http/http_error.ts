/**
 * The error a request handler throws to answer with a given status.
 *
 * @module
 */

/** Options of {@linkcode HttpError}. */
export interface HttpErrorOptions {
  /** Close the connection after the answer. @default {true} */
  close?: boolean;
  /** Extra response headers, e.g. `Retry-After`. @default {[]} */
  headers?: [string, string][];
}

/**
 * An HTTP error: the server answers with `status` and the short fixed
 * `message` as a `text/plain` body, then closes the connection when `close`.
 * Throw it from a route handler, middleware or a source's `channels` picker.
 *
 * @example
 * ```ts
 * import { HttpError } from "./http_error.ts";
 * const handler = () => {
 *   throw new HttpError(429, "Too Many Requests", { close: false, headers: [["Retry-After", "5"]] });
 * };
 * ```
 */
export class HttpError extends Error {
  /** Status code to answer with. */
  readonly status: number;
  /** Whether the connection must be closed after the answer. */
  readonly close: boolean;
  /** Extra response headers, e.g. `Retry-After`. */
  readonly headers: [string, string][];
  /**
   * Creates the error.
   *
   * @param status Status code.
   * @param message Short, fixed text; never raw request bytes.
   * @param options Whether to close the connection (default `true`) and extra headers.
   */
  constructor(
    status: number,
    message: string,
    options: HttpErrorOptions = {},
  ) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.close = options.close ?? true;
    this.headers = options.headers ?? [];
  }
}
