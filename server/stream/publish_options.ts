/**
 * What a publisher passes to an event source (`send`, `sendAsync`,
 * `publish`), and the error a publish that was not accepted throws.
 *
 * @module
 */

import type { EventFields } from "../../queue/encode_event.ts";

/** Options of `EventSource.send`. */
export interface SendOptions extends EventFields {
  /**
   * Channel to broadcast to. Sources whose path has a `:channel` segment (or
   * that pick channels with `channels`) have one channel per name; plain sources
   * have the single channel `DEFAULT_CHANNEL`.
   * @default {"default"}
   */
  channel?: string;
}

/** Options of `EventSource.sendAsync`. */
export interface SendAsyncOptions extends SendOptions {
  /**
   * How long to wait for room in the queue, in milliseconds.
   * @default {1000}
   */
  timeoutMs?: number;
}

/** Options of `EventSource.publish`. */
export interface PublishOptions extends SendOptions {
  /**
   * How long to wait for room in the queue, in milliseconds; `0` refuses at
   * once (the hub's `POST` does, and answers 503). The queue is drained once
   * per turn of the event loop, so a loop that awaits each publish waits here
   * for that drain instead of being refused.
   * @default {1000}
   */
  timeoutMs?: number;
}

/**
 * Thrown by `EventSource.publish` when the event was not accepted:
 * `"queue-full"` (back-pressure; try again later) or `"closed"` (the source or
 * the server is stopping).
 *
 * @example
 * ```ts
 * import { PublishRejectedError, serve } from "../../mod.ts";
 * await using server = serve({ port: 0, queueSize: 1 });
 * const events = server.eventSource("/events");
 * try {
 *   await events.publish("x");
 * } catch (err) {
 *   if (err instanceof PublishRejectedError) console.log(err.reason); // "queue-full"
 * }
 * ```
 */
export class PublishRejectedError extends Error {
  /** Why the event was refused. */
  readonly reason: "queue-full" | "closed";
  /**
   * Creates the error.
   *
   * @param reason Why the event was refused.
   */
  constructor(reason: "queue-full" | "closed") {
    super(reason === "queue-full" ? "event queue is full" : "event source is closed");
    this.name = "PublishRejectedError";
    this.reason = reason;
  }
}
