/**
 * The counters the parts of the stream layer add to, kept in one object.
 *
 * @module
 */

/** Counters of the stream layer (see `ServerStats` for their meaning). */
export interface StreamCounters {
  /** Streams opened with a `Last-Event-ID`. */
  replays: number;
  /** Events written from history to reconnecting streams. */
  eventsReplayed: number;
  /** `sluice.gap` events sent. */
  gapsSent: number;
  /** Sessions closed by the write deadline. */
  writeTimeouts: number;
  /** Streams answered with a `retry:` and closed under `busy: "retry"`. */
  softRejected: number;
  /** Streams refused because their peer already held `maxClientsPerIp` streams. */
  perIpRejected: number;
  /** Bytes written by sessions that have ended. */
  bytesOfClosed: number;
}

/**
 * Fresh counters, all zero.
 *
 * @returns The counters.
 * @example
 * ```ts
 * import { newStreamCounters } from "./stream_counters.ts";
 * const counters = newStreamCounters();
 * counters.replays++;
 * ```
 */
export function newStreamCounters(): StreamCounters {
  return {
    replays: 0,
    eventsReplayed: 0,
    gapsSent: 0,
    writeTimeouts: 0,
    softRejected: 0,
    perIpRejected: 0,
    bytesOfClosed: 0,
  };
}
