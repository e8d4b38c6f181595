/**
 * The fan-out: hands one encoded event to every subscriber without waiting
 * on any of them.
 *
 * @module
 */

/** Anything that can take bytes without blocking; a session is one. */
export interface FanOutTarget {
  /** Queues bytes (of the event `eventId`, if known); returns `false` when refused (closed, over budget). */
  write(bytes: Uint8Array, eventId?: string, events?: number): boolean;
}

/**
 * Writes the same bytes to every target. Each target queues them and writes
 * in its own time, so a slow socket never delays the others.
 *
 * @param bytes The encoded event, shared by all targets.
 * @param targets The subscribers.
 * @param eventId The event's id (the last one's, for several), handed to each target with the bytes.
 * @param events How many events `bytes` hold (several consecutive events of a
 * channel are fanned out as one block).
 * @returns How many targets accepted the bytes.
 *
 * @example
 * ```ts
 * import { fanOut } from "./fan_out.ts";
 * const got: Uint8Array[] = [];
 * const target = { write: (b: Uint8Array) => (got.push(b), true) };
 * fanOut(new TextEncoder().encode("data: x\n\n"), [target, target]); // 2
 * ```
 */
export function fanOut(
  bytes: Uint8Array,
  targets: Iterable<FanOutTarget>,
  eventId?: string,
  events = 1,
): number {
  let accepted = 0;
  for (const target of targets) {
    if (target.write(bytes, eventId, events)) accepted++;
  }
  return accepted;
}
