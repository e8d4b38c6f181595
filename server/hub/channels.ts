/**
 * Multi-channel subscriptions of the hub: `GET /events?channel=a&channel=b`.
 *
 * Such a stream is tagged: each event's type names its channel (see
 * `multiChannelEventName` in `server/stream/channel_tag.ts`). The event is
 * recorded once; single- and multi-channel streams read the same records.
 *
 * @module
 */

import { checkChannelName } from "../stream/channel_name.ts";
import type { ChannelSelection } from "../stream/event_source.ts";
import { parseTopicFilter, type TopicFilter, TopicFilterError } from "../stream/topic_filter.ts";
import { HttpError } from "../http/http_error.ts";

/** Most channels one multi-channel stream may subscribe to, by default. */
export const DEFAULT_MAX_CHANNELS = 32;

/**
 * What `GET /events?channel=a&channel=b&topic=sensors/+/temp` follows: the
 * named channels (a comma-separated `?channel=a,b` works too), without
 * duplicates, in the order given, and the topic filters (MQTT wildcards `+`
 * and `#`), which make the stream follow every matching channel, present and
 * future. The stream is tagged: each event's type names its channel.
 *
 * @param query The request's query.
 * @param maxChannels Most channels and filters allowed, together.
 * @returns The selection.
 * @throws {HttpError} `400` when neither is given, a name or filter is
 * malformed, or there are more than `maxChannels`.
 * @example
 * ```ts
 * import { selectionFromQuery } from "./channels.ts";
 * selectionFromQuery(new URLSearchParams("channel=a&topic=sensors/+/temp"), 32);
 * // { channels: ["a"], filters: [<sensors/+/temp>], tagged: true }
 * ```
 */
export function selectionFromQuery(query: URLSearchParams, maxChannels: number): ChannelSelection {
  const names = channelNames(query, maxChannels);
  const filters: TopicFilter[] = [];
  for (const text of new Set(query.getAll("topic"))) {
    try {
      filters.push(parseTopicFilter(text));
    } catch (err) {
      if (!(err instanceof TopicFilterError)) throw err;
      throw new HttpError(400, `Bad Request: topic filter ${err.reason}`, { close: false });
    }
    if (names.length + filters.length > maxChannels) throw tooMany(maxChannels);
  }
  if (names.length === 0 && filters.length === 0) {
    throw new HttpError(
      400,
      "Bad Request: give channels as ?channel=a&channel=b or filters as ?topic=a/+/b",
      { close: false },
    );
  }
  return { channels: names, filters, tagged: true };
}

/**
 * The channels of `?channel=a&channel=b` (see {@linkcode selectionFromQuery}).
 *
 * @param query The request's query.
 * @param maxChannels Most channels allowed.
 * @returns The channel names.
 * @throws {HttpError} `400` when no channel is given, a name is malformed,
 * or there are more than `maxChannels`.
 * @example
 * ```ts
 * import { channelsFromQuery } from "./channels.ts";
 * channelsFromQuery(new URLSearchParams("channel=a&channel=b,a"), 32); // ["a", "b"]
 * ```
 */
export function channelsFromQuery(query: URLSearchParams, maxChannels: number): string[] {
  const names = channelNames(query, maxChannels);
  if (names.length === 0) {
    throw new HttpError(400, "Bad Request: give channels as ?channel=a&channel=b", {
      close: false,
    });
  }
  return names;
}

/** The `?channel=` names, checked, without duplicates, in the order given (none: `[]`). */
function channelNames(query: URLSearchParams, maxChannels: number): string[] {
  const names = new Set<string>();
  for (const value of query.getAll("channel")) {
    for (const name of value.split(",")) {
      names.add(checkChannelName(name));
      if (names.size > maxChannels) throw tooMany(maxChannels);
    }
  }
  return [...names];
}

function tooMany(maxChannels: number): HttpError {
  return new HttpError(400, `Bad Request: at most ${maxChannels} channels per stream`, {
    close: false,
  });
}
