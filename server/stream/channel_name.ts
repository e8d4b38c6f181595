/**
 * The channel-name rule, written once: the stream routes, the multi-channel
 * query and the hub's publish API all check names with it.
 *
 * @module
 */

import { HttpError } from "../http/http_error.ts";

/** Channel names the hub accepts: `[A-Za-z0-9._~-]{1,128}`. */
export const CHANNEL_NAME_RE: RegExp = /^[A-Za-z0-9._~-]{1,128}$/;

const BAD_NAME = "Bad Request: channel names are [A-Za-z0-9._~-]{1,128}";

/**
 * Checks a channel name from a request.
 *
 * @param name The name.
 * @returns The name, when valid.
 * @throws {HttpError} `400` (the connection is kept) when it is not a channel name.
 * @example
 * ```ts
 * import { checkChannelName } from "./channel_name.ts";
 * checkChannelName("kitchen"); // "kitchen"
 * ```
 */
export function checkChannelName(name: string): string {
  if (!CHANNEL_NAME_RE.test(name)) throw new HttpError(400, BAD_NAME, { close: false });
  return name;
}
