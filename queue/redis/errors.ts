/**
 * Typed errors of the Redis engine, so the hub can answer each with its own
 * status: {@linkcode EngineUnavailableError} with `503` and `Retry-After`,
 * {@linkcode PublisherIdRefusedError} with `400`.
 *
 * @module
 */

import { EventIdRefusedError, HistoryUnavailableError } from "../history.ts";

/** Why the engine could not take a command. */
export type EngineUnavailableReason =
  | "disconnected"
  | "timeout"
  | "refused"
  | "overloaded"
  | "closed";

/**
 * Redis did not acknowledge a command in time, or is unreachable, or refused
 * the write (e.g. out of memory). The event may or may not have been stored
 * (a timed-out script can still run): the publisher should retry later. The
 * hub answers `503 Service Unavailable` with `Retry-After: retryAfterSeconds`.
 *
 * @example
 * ```ts
 * import { EngineUnavailableError } from "./errors.ts";
 * try {
 *   throw new EngineUnavailableError("timeout", "no reply within 1000 ms");
 * } catch (err) {
 *   if (err instanceof EngineUnavailableError) console.log(503, err.retryAfterSeconds);
 * }
 * ```
 */
export class EngineUnavailableError extends HistoryUnavailableError {
  /** What went wrong. */
  readonly reason: EngineUnavailableReason;
  /**
   * Creates the error.
   *
   * @param reason What went wrong.
   * @param detail A short description.
   * @param options The underlying error as `cause`, and the retry hint.
   */
  constructor(
    reason: EngineUnavailableReason,
    detail: string,
    options: { cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(`engine unavailable (${reason}): ${detail}`, options);
    this.name = "EngineUnavailableError";
    this.reason = reason;
  }
}

/**
 * A publisher gave its own event id. The Redis engine assigns every id from
 * one counter shared by all instances (that is what keeps ids contiguous
 * and replay well defined), so it refuses them; the hub answers
 * `400 Bad Request`.
 *
 * @example
 * ```ts
 * import { PublisherIdRefusedError } from "./errors.ts";
 * const err = new PublisherIdRefusedError("news", "a1");
 * err.message; // 'event ids are assigned by the engine: publisher id "a1" refused in channel "news"'
 * ```
 */
export class PublisherIdRefusedError extends EventIdRefusedError {
  /**
   * Creates the error.
   *
   * @param channel The channel.
   * @param id The refused id.
   */
  constructor(channel: string, id: string) {
    super(channel, id);
    this.message = `event ids are assigned by the engine: publisher id ${JSON.stringify(id)} ` +
      `refused in channel ${JSON.stringify(channel)}`;
    this.name = "PublisherIdRefusedError";
  }
}
