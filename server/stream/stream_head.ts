/**
 * The head of an event stream: 200, `text/event-stream`, no caching, no
 * proxy buffering, no length (the stream ends when the connection closes).
 *
 * @module
 */

const encoder = new TextEncoder();

function headText(close: boolean): string {
  return "HTTP/1.1 200 OK\r\n" +
    "Content-Type: text/event-stream\r\n" +
    "Cache-Control: no-cache\r\n" +
    (close ? "Connection: close\r\n" : "Connection: keep-alive\r\n") +
    "X-Accel-Buffering: no\r\n";
}

const STREAM_HEAD = encoder.encode(headText(false) + "\r\n");

/** Options of {@linkcode encodeStreamHead}. */
export interface StreamHeadOptions {
  /**
   * The server closes the connection after what follows the head (a `HEAD`
   * answer, a busy `retry:`): say `Connection: close`, so that no client
   * tries to reuse it.
   * @default {false}
   */
  close?: boolean;
}

/**
 * The head of an event stream.
 *
 * @param extra Extra header fields (e.g. CORS), already checked.
 * @param options Whether the connection closes after the head's answer.
 * @returns The head bytes; the shared pre-encoded head when there are no extras.
 * @example
 * ```ts
 * import { encodeStreamHead } from "./stream_head.ts";
 * const head = encodeStreamHead([["Access-Control-Allow-Origin", "*"]]);
 * ```
 */
export function encodeStreamHead(
  extra: readonly [string, string][] = [],
  options: StreamHeadOptions = {},
): Uint8Array {
  if (extra.length === 0 && !options.close) return STREAM_HEAD;
  let head = headText(options.close === true);
  for (const [name, value] of extra) head += `${name}: ${value}\r\n`;
  return encoder.encode(head + "\r\n");
}
