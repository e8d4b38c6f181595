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
import { HttpError } from "../http/http_error.ts";

/** Most channels one multi-channel stream may subscribe to, by default. */
export const DEFAULT_MAX_CHANNELS = 32;

/**
 * The channels of `?channel=a&channel=b` (a comma-separated `?channel=a,b`
 * works too), without duplicates, in the order given.
 *
 * @param query The request's query.
 * @param maxChannels Most channels allowed.
 * @returns The channel names.
 * @throws {HttpError} `400` when no channel is given, a name is not
 * `[A-Za-z0-9._~-]{1,128}`, or there are more than `maxChannels`.
 * @example
 * ```ts
 * import { channelsFromQuery } from "./channels.ts";
 * channelsFromQuery(new URLSearchParams("channel=a&channel=b,a"), 32); // ["a", "b"]
 * ```
 */
export function channelsFromQuery(query: URLSearchParams, maxChannels: number): string[] {
  const names = new Set<string>();
  for (const value of query.getAll("channel")) {
    for (const name of value.split(",")) {
      names.add(checkChannelName(name));
      if (names.size > maxChannels) {
        throw new HttpError(400, `Bad Request: at most ${maxChannels} channels per stream`, {
          close: false,
        });
      }
    }
  }
  if (names.size === 0) {
    throw new HttpError(400, "Bad Request: give channels as ?channel=a&channel=b", {
      close: false,
    });
  }
  return [...names];
}
