/**
 * Internal helper of the server: the block written when a stream opens with
 * history. After the stream head: the resume-point comment or the gap
 * notice, the replayed events, and the live events held meanwhile that the
 * replay does not already have.
 *
 * @module
 */

import { encodeLastEventId } from "../../queue/event_ids.ts";
import { encodeGapEvent, type HistoryReplay } from "../../queue/history.ts";

/** A live event held while a replay was read. */
export interface HeldEvent {
  /** The encoded event. */
  readonly bytes: Uint8Array;
  /** Its id (given or assigned by the history store), if any. */
  readonly id?: string;
}

/**
 * Appends the replay block to `parts`, which holds the stream head: the
 * resume point (no `Last-Event-ID`), or the gap notice (`replay.gap`), then
 * the replayed events, then the held live events whose id is not in the
 * replay. The parts are appended rather than joined here so that a stream
 * with nothing to replay writes its head as it is.
 *
 * @param parts The stream head; the block's parts are appended to it.
 * @param lastId The `Last-Event-ID` the client sent, if any.
 * @param replay What the history store answered.
 * @param held Live events held while the replay was read, in queue order.
 * @returns The position (last event id) the client is at once the parts are
 * written, if any.
 */
export function appendReplayBlock(
  parts: Uint8Array[],
  lastId: string | undefined,
  replay: HistoryReplay,
  held: readonly HeldEvent[],
): string | undefined {
  // The position the client is at once this block is written. (Events given
  // without a Last-Event-ID, as `?rewind=N` asks, carry their ids themselves.)
  let position = lastId === undefined || replay.gap ? replay.latest ?? undefined : lastId;
  if (lastId === undefined && position !== undefined && replay.events.length === 0) {
    // No backlog, but a resume point: cut before its first event, the
    // client still comes back with an id and misses nothing.
    parts.push(encodeLastEventId(position));
  }
  if (lastId !== undefined && replay.gap) parts.push(encodeGapEvent(lastId, replay.earliest));
  const replayed = held.length > 0 ? new Set<string>() : undefined;
  for (const ev of replay.events) {
    parts.push(ev.bytes);
    position = ev.id;
    replayed?.add(ev.id);
  }
  for (const ev of held) {
    if (ev.id !== undefined && replayed!.has(ev.id)) continue;
    parts.push(ev.bytes);
    if (ev.id !== undefined) position = ev.id;
  }
  return position;
}
