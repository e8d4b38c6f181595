/**
 * The counters of the connection loop: sockets accepted, refused and ended
 * (by reason, each end logged), requests, and error answers by status.
 *
 * @module
 */

import type { ConnectionCloseReason, Logger } from "./types.ts";

/** Counters of the connection loop. */
export interface HttpServerStats {
  /** Sockets open now, adopted ones included. */
  readonly connections: number;
  /** Sockets accepted since start. */
  readonly accepted: number;
  /** Sockets refused at once under `maxConnections`. */
  readonly connectionsRefused: number;
  /** Sockets counted against `maxPendingHeads` now. */
  readonly pendingHeads: number;
  /** Sockets ended, by reason. */
  readonly connectionsClosed: Readonly<Record<ConnectionCloseReason, number>>;
  /** Requests answered with an error status, by status. */
  readonly httpErrors: Readonly<Record<number, number>>;
  /** Requests parsed and handed to the handler. */
  readonly requests: number;
}

/**
 * Counts what happens to a server's sockets.
 *
 * @example
 * ```ts
 * import { ConnectionCounters } from "./connection_counters.ts";
 * const counters = new ConnectionCounters(() => {}, () => true);
 * counters.accepted++;
 * counters.ended("127.0.0.1:5000", "client-closed");
 * counters.snapshot(0, 0).connectionsClosed["client-closed"]; // 1
 * ```
 */
export class ConnectionCounters {
  /** Sockets accepted since start. */
  accepted = 0;
  /** Requests parsed and handed to the handler. */
  requests = 0;
  #refused = 0;
  readonly #log: Logger;
  readonly #running: () => boolean;
  readonly #httpErrors: Record<number, number> = {};
  readonly #closed: Record<ConnectionCloseReason, number> = {
    "response-sent": 0,
    "client-closed": 0,
    "bad-request": 0,
    "header-timeout": 0,
    "idle-timeout": 0,
    "pending-heads-full": 0,
    "too-many-connections": 0,
    "write-error": 0,
    "stream": 0,
    "shutdown": 0,
    "error": 0,
  };

  /**
   * Creates zeroed counters.
   *
   * @param log Where socket ends are logged.
   * @param running Whether the server still runs (after it stops, idle ends count as `"shutdown"`).
   */
  constructor(log: Logger, running: () => boolean) {
    this.#log = log;
    this.#running = running;
  }

  /**
   * Counts an error answer by status.
   *
   * @param status The HTTP status sent.
   */
  countError(status: number): void {
    this.#httpErrors[status] = (this.#httpErrors[status] ?? 0) + 1;
  }

  /** Counts a socket refused at once under `maxConnections` (its 503 included). */
  refused(): void {
    this.#refused++;
    this.#closed["too-many-connections"]++;
    this.countError(503);
  }

  /**
   * Counts and logs the end of a socket.
   *
   * @param peer The peer as `host:port`.
   * @param reason Why the socket ended.
   * @param error The error, for `"error"` and `"write-error"`.
   */
  ended(peer: string, reason: ConnectionCloseReason, error?: string): void {
    if (!this.#running() && (reason === "client-closed" || reason === "idle-timeout")) {
      reason = "shutdown";
    }
    this.#closed[reason]++;
    if (reason === "error") {
      this.#log("error", "connection failed", { peer, reason, error });
    } else {
      this.#log("debug", "connection closed", { peer, reason, error });
    }
  }

  /**
   * The counters now.
   *
   * @param connections Sockets open now.
   * @param pendingHeads Sockets counted against `maxPendingHeads` now.
   * @returns A copy.
   */
  snapshot(connections: number, pendingHeads: number): HttpServerStats {
    return {
      connections,
      accepted: this.accepted,
      connectionsRefused: this.#refused,
      pendingHeads,
      connectionsClosed: { ...this.#closed },
      httpErrors: { ...this.#httpErrors },
      requests: this.requests,
    };
  }
}
