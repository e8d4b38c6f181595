/**
 * Event ids: the sequence that numbers events a publisher sent without an id,
 * and the helper that adds an `id:` line to an encoded event.
 *
 * Server-assigned ids are decimal strings of safe integers taken from one
 * sequence per history store (shared by all its channels), so that "the
 * events after id X" is well defined, also for a stream of several channels.
 * The sequence starts above the clock (`Date.now() * 1000`) and above every
 * numeric id already stored, so ids keep growing across restarts even when
 * the history did not survive them.
 *
 * @module
 */

/** Numeric ids: up to 16 decimal digits that make a safe integer. */
const NUMERIC_ID_RE = /^[0-9]{1,16}$/;

const encoder = new TextEncoder();

/**
 * The value of a numeric id.
 *
 * @param id An event id.
 * @returns Its integer value, or `undefined` when the id is not a decimal safe integer.
 *
 * @example
 * ```ts
 * import { numericId } from "./event_ids.ts";
 * numericId("42"); // 42
 * numericId("a7"); // undefined
 * ```
 */
export function numericId(id: string): number | undefined {
  if (!NUMERIC_ID_RE.test(id)) return undefined;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The first id of a fresh sequence: the clock in microseconds, so that a
 * restarted server (even one that lost its history) numbers past its
 * previous run.
 *
 * @returns `Date.now() * 1000`.
 */
export function clockFloorId(): number {
  return Date.now() * 1000;
}

/**
 * A monotonic sequence of numeric event ids.
 *
 * @example
 * ```ts
 * import { EventIdSequence } from "./event_ids.ts";
 * const ids = new EventIdSequence(1);
 * ids.next(); // "1"
 * ids.observe("10"); // a publisher sent id 10
 * ids.next(); // "11"
 * ```
 */
export class EventIdSequence {
  #next: number;

  /**
   * @param first The first id to hand out, a non-negative safe integer.
   * @throws {RangeError} When `first` is not a non-negative safe integer.
   */
  constructor(first: number) {
    if (!Number.isSafeInteger(first) || first < 0) {
      throw new RangeError(`firstId must be a non-negative integer: received ${first}`);
    }
    this.#next = first;
  }

  /** The id {@linkcode next} will return, as a number. */
  get peek(): number {
    return this.#next;
  }

  /**
   * Hands out the next id.
   *
   * @returns The id as a decimal string.
   */
  next(): string {
    return String(this.#next++);
  }

  /**
   * Moves the sequence past a numeric id given by a publisher (or found on
   * disk), so that later assigned ids never equal it. Other ids are ignored.
   *
   * @param id An event id.
   */
  observe(id: string): void {
    const n = numericId(id);
    if (n !== undefined && n >= this.#next) this.#next = n + 1;
  }
}

/**
 * Prepends an `id:` line to an encoded event block. Field order inside an
 * SSE event does not matter, so the result is the same event with an id.
 *
 * @param id The id; it must not contain CR, LF or NUL (assigned ids never do).
 * @param block The encoded event, without an `id:` line.
 * @returns A new buffer: `id: <id>\n` followed by the block.
 *
 * @example
 * ```ts
 * import { withEventId } from "./event_ids.ts";
 * const block = new TextEncoder().encode("data: x\n\n");
 * new TextDecoder().decode(withEventId("7", block)); // "id: 7\ndata: x\n\n"
 * ```
 */
export function withEventId(id: string, block: Uint8Array): Uint8Array {
  const line = encoder.encode(`id: ${id}\n`);
  const out = new Uint8Array(line.length + block.length);
  out.set(line);
  out.set(block, line.length);
  return out;
}

/**
 * Encodes a block that only sets the client's last event id: `id: <id>` and a
 * blank line. A browser dispatches no event for it (there is no data) but
 * keeps the id, so a stream cut before its first event still resumes from
 * where it started instead of losing what was published meanwhile.
 *
 * @param id The id; it must not contain CR, LF or NUL.
 * @returns The encoded block.
 *
 * @example
 * ```ts
 * import { encodeLastEventId } from "./event_ids.ts";
 * new TextDecoder().decode(encodeLastEventId("41")); // "id: 41\n\n"
 * ```
 */
export function encodeLastEventId(id: string): Uint8Array {
  return encoder.encode(`id: ${id}\n\n`);
}
