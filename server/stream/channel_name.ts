/**
 * The channel-name check of requests, written once: the stream routes, the
 * multi-channel query and the hub's publish API all check names with it. The
 * grammar itself (levels joined by `/`, as MQTT topics) is in `topic_filter.ts`.
 *
 * @module
 */

import { HttpError } from "../http/http_error.ts";
import {
  CHANNEL_NAME_RE,
  isChannelName,
  MAX_CHANNEL_LEVEL_LENGTH,
  MAX_CHANNEL_LEVELS,
} from "./topic_filter.ts";

export { CHANNEL_NAME_RE, isChannelName };

const BAD_NAME = `Bad Request: channel names are 1 to ${MAX_CHANNEL_LEVELS} levels of ` +
  `[A-Za-z0-9._~-]{1,${MAX_CHANNEL_LEVEL_LENGTH}} joined by "/"`;

/**
 * Checks a channel name from a request.
 *
 * @param name The name.
 * @returns The name, when valid.
 * @throws {HttpError} `400` (the connection is kept) when it is not a channel name.
 * @example
 * ```ts
 * import { checkChannelName } from "./channel_name.ts";
 * checkChannelName("sensors/kitchen/temp"); // "sensors/kitchen/temp"
 * ```
 */
export function checkChannelName(name: string): string {
  if (!isChannelName(name)) throw new HttpError(400, BAD_NAME, { close: false });
  return name;
}
