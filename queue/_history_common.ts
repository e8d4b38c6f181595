/**
 * Internal helpers shared by the history stores: limit checks and the merge
 * of several channels' events in publication order.
 *
 * @module
 */

/** An event with its position in the store's log. */
export interface SeqEvent {
  /** Position in the store's log, one sequence for all channels. */
  readonly seq: number;
  /** The event id. */
  readonly id: string;
  /** The encoded event block, `id:` line included. */
  readonly bytes: Uint8Array;
}

/** Retention limits, checked. */
export interface HistoryLimits {
  maxEvents: number;
  maxBytes: number;
}

/**
 * Checks retention limits.
 *
 * @param maxEvents Most events per channel.
 * @param maxBytes Most bytes per channel.
 * @returns The limits.
 * @throws {RangeError} When one is not a positive safe integer.
 */
export function checkHistoryLimits(maxEvents: number, maxBytes: number): HistoryLimits {
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) {
    throw new RangeError(`maxEvents must be a positive integer: received ${maxEvents}`);
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new RangeError(`maxBytes must be a positive integer: received ${maxBytes}`);
  }
  return { maxEvents, maxBytes };
}

/**
 * Merges per-channel lists (each in `seq` order) into one list in `seq` order.
 *
 * @param lists The lists.
 * @returns One list.
 */
export function mergeBySeq<T extends { readonly seq: number }>(lists: T[][]): T[] {
  const nonEmpty = lists.filter((l) => l.length > 0);
  if (nonEmpty.length === 0) return [];
  if (nonEmpty.length === 1) return nonEmpty[0];
  return nonEmpty.flat().sort((a, b) => a.seq - b.seq);
}
