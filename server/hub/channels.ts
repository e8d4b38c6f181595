/**
 * Multi-channel subscriptions of the hub: `GET /events?channel=a&channel=b`.
 *
 * Events are encoded once per stream *kind*, never per stream: a
 * single-channel stream (`/events/<channel>`) gets the event exactly as
 * published, and every multi-channel stream gets one second encoding whose
 * event type names the channel (see {@linkcode multiChannelEventName}). The
 * second encoding is only made when a multi-channel stream listens to the
 * channel.
 *
 * @module
 */

import { CHANNEL_NAME_RE } from "../stream/event_source.ts";
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
      if (!CHANNEL_NAME_RE.test(name)) {
        throw new HttpError(400, "Bad Request: channel names are [A-Za-z0-9._~-]{1,128}", {
          close: false,
        });
      }
      names.add(name);
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

/**
 * The event type an event gets on multi-channel streams: the channel name for
 * an unnamed event (or one named `""`, which browsers treat as unnamed),
 * `<channel>:<event>` for a named one. Channel names never
 * contain `:`, so the channel is always the part before the first `:`.
 *
 * @param channel The channel the event was published to.
 * @param event The publisher's event name, if any.
 * @returns The event type for multi-channel streams.
 * @example
 * ```ts
 * import { multiChannelEventName } from "./channels.ts";
 * multiChannelEventName("news", undefined); // "news"
 * multiChannelEventName("news", "greeting"); // "news:greeting"
 * ```
 */
export function multiChannelEventName(channel: string, event: string | undefined): string {
  return event === undefined || event === "" ? channel : `${channel}:${event}`;
}
