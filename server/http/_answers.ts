/**
 * Internal helper of the connection loop: the answers it writes itself — a
 * handler's response (a 500 when it cannot be encoded), the errors of
 * malformed or late requests, and the 503 of an eviction — each counted and
 * logged.
 *
 * @module
 */

import { peerString, writeAll } from "./conn_io.ts";
import type { ConnectionCounters } from "./connection_counters.ts";
import type { HttpError } from "./http_error.ts";
import type { RequestResult } from "./request_result.ts";
import { encodeResponse, headerPairs } from "./response_head.ts";
import type { HttpRequest, Logger } from "./types.ts";

/** The limits the answers use. */
export interface AnswerLimits {
  /** Seconds in `Retry-After` of a 503. */
  readonly retryAfter: number;
  /** Reason phrase of the 503. */
  readonly busyStatusText: string;
  /** The slowloris cap, for the eviction log line. */
  readonly maxPendingHeads: number;
}

/**
 * The 503 head sent when the server is full, with `Retry-After`.
 *
 * @param limits `Retry-After` and the reason phrase.
 * @param extra Headers to add (e.g. CORS).
 * @returns The whole answer.
 */
export function busyAnswer(
  limits: AnswerLimits,
  extra: readonly [string, string][] = [],
): Uint8Array {
  return encodeResponse(503, [...extra, ["Retry-After", String(limits.retryAfter)]], "", {
    close: true,
    statusText: limits.busyStatusText,
  });
}

/** The answers of one connection loop. */
export class Answers {
  readonly #limits: AnswerLimits;
  readonly #log: Logger;
  readonly #counters: ConnectionCounters;

  /**
   * Creates the answers of one loop.
   *
   * @param limits `Retry-After`, the 503's reason phrase, the slowloris cap.
   * @param log Where answers are logged.
   * @param counters Where error answers are counted.
   */
  constructor(limits: AnswerLimits, log: Logger, counters: ConnectionCounters) {
    this.#limits = limits;
    this.#log = log;
    this.#counters = counters;
  }

  /** Encodes a handler's response (a 500 when it cannot be encoded) and starts writing it. */
  response(
    conn: Deno.Conn,
    req: HttpRequest,
    result: Extract<RequestResult, { kind: "response" }>,
    keepAlive: boolean,
  ): { written: Promise<void>; close: boolean } {
    const res = result.response;
    let close = result.close || !keepAlive;
    if (res.status >= 400) {
      this.#counters.countError(res.status);
      this.#log("info", "request answered with error", {
        peer: peerString(conn.remoteAddr as Deno.NetAddr),
        method: req.method,
        path: req.path,
        status: res.status,
      });
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeResponse(
        res.status,
        [...result.headers, ...headerPairs(res.headers)],
        res.body,
        { close, headOnly: req.method === "HEAD" },
      );
    } catch (err) {
      this.#log("error", "invalid response", { path: req.path, error: String(err) });
      bytes = encodeResponse(500, [], "Internal Server Error\n", { close: true });
      close = true;
    }
    return { written: writeAll(conn, bytes), close };
  }

  /** Answers 503 to a socket evicted under `maxPendingHeads`. */
  async evicted(conn: Deno.Conn, peer: Deno.NetAddr): Promise<"pending-heads-full"> {
    this.#counters.countError(503);
    this.#log("info", "connection evicted: too many pending request heads", {
      peer: peerString(peer),
      limit: this.#limits.maxPendingHeads,
      reason: "pending-heads-full",
    });
    await writeAll(conn, busyAnswer(this.#limits)).catch(() => {});
    return "pending-heads-full";
  }

  /** Answers a malformed or late request; the loop closes after it. */
  async error(conn: Deno.Conn, err: HttpError, peer: Deno.NetAddr): Promise<void> {
    this.#counters.countError(err.status);
    this.#log("info", "request rejected", {
      peer: peerString(peer),
      status: err.status,
      reason: err.message,
    });
    const bytes = encodeResponse(
      err.status,
      [["Content-Type", "text/plain; charset=utf-8"], ...err.headers],
      err.message + "\n",
      // The loop closes after every error it answers itself: say so, whatever the error asked.
      { close: true },
    );
    await writeAll(conn, bytes).catch(() => {});
  }
}
