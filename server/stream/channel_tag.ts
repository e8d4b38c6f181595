/**
 * The channel tag of multi-channel streams: a stream that follows several
 * channels on one connection (`GET /events?channel=a&channel=b`) sees each
 * event's channel in its event type — `<channel>` for an unnamed event,
 * `<channel>:<name>` for a named one. The event is encoded and recorded once;
 * the tagged form is derived from those bytes once per fan-out pass (shared
 * by every tagged stream) and for replays.
 *
 * @module
 */

const encoder = new TextEncoder();
const LF = 0x0a;
const EVENT_PREFIX = encoder.encode("event:");
const DATA_PREFIX = encoder.encode("data:");

/**
 * The event type an event gets on multi-channel streams: the channel name for
 * an unnamed event (or one named `""`, which browsers treat as unnamed),
 * `<channel>:<event>` for a named one. Channel names never contain `:`, so
 * the channel is always the part before the first `:`.
 *
 * @param channel The channel the event was published to.
 * @param event The publisher's event name, if any.
 * @returns The event type for multi-channel streams.
 * @example
 * ```ts
 * import { multiChannelEventName } from "./channel_tag.ts";
 * multiChannelEventName("news", undefined); // "news"
 * multiChannelEventName("news", "greeting"); // "news:greeting"
 * ```
 */
export function multiChannelEventName(channel: string, event: string | undefined): string {
  return event === undefined || event === "" ? channel : `${channel}:${event}`;
}

function startsWith(bytes: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (at + prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

/**
 * One encoded event (as `encodeEvent` writes it, possibly with an `id:` line
 * added) with its event type tagged by {@linkcode multiChannelEventName}.
 * Only the field lines before the first `data:` line are looked at; the data
 * is copied as it is.
 *
 * @param bytes One encoded event block.
 * @param channel Its channel.
 * @returns The tagged block (a new array).
 * @example
 * ```ts
 * import { tagEvent } from "./channel_tag.ts";
 * const bytes = new TextEncoder().encode("event: hi\nid: 7\ndata: x\n\n");
 * new TextDecoder().decode(tagEvent(bytes, "news")); // "event: news:hi\nid: 7\ndata: x\n\n"
 * ```
 */
export function tagEvent(bytes: Uint8Array, channel: string): Uint8Array {
  // Field lines come first (encodeEvent writes event, id, retry, then data).
  for (let at = 0; at < bytes.length;) {
    const end = bytes.indexOf(LF, at);
    if (end < 0 || end === at) break;
    if (startsWith(bytes, at, EVENT_PREFIX)) {
      let from = at + EVENT_PREFIX.length;
      if (bytes[from] === 0x20) from++;
      const name = new TextDecoder().decode(bytes.subarray(from, end));
      const line = encoder.encode(`event: ${multiChannelEventName(channel, name)}`);
      const out = new Uint8Array(at + line.length + bytes.length - end);
      out.set(bytes.subarray(0, at));
      out.set(line, at);
      out.set(bytes.subarray(end), at + line.length);
      return out;
    }
    if (bytes[at] === 0x64 /* d */ && startsWith(bytes, at, DATA_PREFIX)) break;
    at = end + 1;
  }
  const line = encoder.encode(`event: ${channel}\n`);
  const out = new Uint8Array(line.length + bytes.length);
  out.set(line);
  out.set(bytes, line.length);
  return out;
}
