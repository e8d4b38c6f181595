/**
 * The response writer's byte builders: a whole response (head and body) in
 * one buffer, with every header checked by the rules of `header_rules.ts`.
 *
 * @module
 */

import { hasHeaderBreak, isToken } from "./header_rules.ts";

const encoder = new TextEncoder();

/** Reason phrases of the statuses Sluice sends. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: "OK",
  202: "Accepted",
  204: "No Content",
  301: "Moved Permanently",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** Thrown when a header name or value would break the response head. */
export class InvalidHeaderError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "InvalidHeaderError";
  }
}

/**
 * Normalizes header input to a list of pairs and checks each one.
 *
 * @param headers Record or list of pairs.
 * @returns The pairs.
 * @throws {InvalidHeaderError} When a name is not a token or a value has CR, LF or NUL.
 */
export function headerPairs(
  headers: Record<string, string> | [string, string][] | undefined,
): [string, string][] {
  if (headers === undefined) return [];
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
  for (const [name, value] of pairs) {
    if (!isToken(name)) {
      throw new InvalidHeaderError(`invalid header name: ${JSON.stringify(name)}`);
    }
    if (hasHeaderBreak(String(value))) {
      throw new InvalidHeaderError(`header ${name} has CR, LF or NUL in its value`);
    }
  }
  return pairs;
}

const REASON_PHRASE_RE = /^[\t\x20-\x7e]*$/;

/**
 * Checks a status line's reason phrase (RFC 9112: tab, space and visible ASCII).
 *
 * @param text The reason phrase, e.g. `Server Busy`.
 * @returns The text.
 * @throws {InvalidHeaderError} When it has CR, LF, NUL or other control or non-ASCII characters.
 */
export function checkReasonPhrase(text: string): string {
  if (typeof text !== "string" || !REASON_PHRASE_RE.test(text)) {
    throw new InvalidHeaderError(
      `reason phrase must be tab, space or visible ASCII: received ${JSON.stringify(text)}`,
    );
  }
  return text;
}

function statusLine(status: number, statusText?: string): string {
  const text = statusText === undefined
    ? STATUS_TEXT[status] ?? "Unknown"
    : checkReasonPhrase(statusText);
  return `HTTP/1.1 ${status} ${text}\r\n`;
}

/** How the response ends the exchange. */
export interface ResponseOptions {
  /** Send `Connection: close` (the connection will be closed after the response). */
  close?: boolean;
  /** A response to HEAD: `Content-Length` of the body, but no body bytes. */
  headOnly?: boolean;
  /** Reason phrase of the status line. @default {STATUS_TEXT[status]} */
  statusText?: string;
}

/**
 * Builds a complete response, head and body, in one buffer.
 *
 * @param status Status code.
 * @param headers Extra header fields (already checked with {@linkcode headerPairs}).
 * @param body Body bytes or text.
 * @param options Connection close and HEAD handling.
 * @returns The bytes to write.
 * @throws {InvalidHeaderError} When `options.statusText` is not a valid reason phrase.
 *
 * @example
 * ```ts
 * import { encodeResponse } from "./response_head.ts";
 * encodeResponse(404, [["Content-Type", "text/plain"]], "Not Found\n", { close: false });
 * ```
 */
export function encodeResponse(
  status: number,
  headers: [string, string][],
  body: string | Uint8Array = "",
  options: ResponseOptions = {},
): Uint8Array {
  const bodyBytes = typeof body === "string" ? encoder.encode(body) : body;
  let head = statusLine(status, options.statusText);
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  if (status !== 204 && status !== 304) head += `Content-Length: ${bodyBytes.length}\r\n`;
  head += options.close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
  const headBytes = encoder.encode(head);
  if (options.headOnly || bodyBytes.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + bodyBytes.length);
  out.set(headBytes);
  out.set(bodyBytes, headBytes.length);
  return out;
}
