/**
 * What one stream follows and how it is written to: its channels or topic
 * filters, whether events are tagged with their channel, and `?rewind=N`.
 *
 * @module
 */

import { HttpError } from "../http/http_error.ts";
import { queryValue } from "../http/incoming_request.ts";
import type { HttpRequest } from "../http/types.ts";
import type { ChannelSelection } from "./event_source.ts";
import { parseTopicFilter, type TopicFilter } from "./topic_filter.ts";

/** Most events `?rewind=N` may ask for, per channel. */
export const MAX_REWIND = 1000;

/** What a stream follows and how it is written to. */
export interface Subscription {
  /** Events tagged with their channel (multi-channel and filter streams). */
  readonly tagged: boolean;
  /** Topic filters; a stream with filters follows only them. */
  readonly filters: readonly TopicFilter[];
  /** Without `Last-Event-ID`: the newest this-many events of each channel first. */
  readonly rewind: number;
}

/**
 * The `?rewind=N` of a request: `0` when absent.
 *
 * @throws {HttpError} `400` when it is not an integer from 0 to {@linkcode MAX_REWIND}.
 */
export function rewindOf(req: HttpRequest): number {
  const text = queryValue(req, "rewind");
  if (text === null) return 0;
  const n = Number(text);
  if (!/^[0-9]{1,4}$/.test(text) || n > MAX_REWIND) {
    throw new HttpError(400, `Bad Request: rewind must be an integer from 0 to ${MAX_REWIND}`, {
      close: false,
    });
  }
  return n;
}

/**
 * The subscription of a stream request: a stream with filters follows its
 * named channels as exact filters too, and is tagged.
 *
 * @param selection What the source picked for the request.
 * @param req The request (for `?rewind=`).
 * @returns The subscription.
 * @throws {HttpError} `400` for a malformed `?rewind=`.
 * @example
 * ```ts
 * import { subscriptionOf } from "./subscription.ts";
 * // subscriptionOf({ channels: ["a"] }, req) -> { tagged: false, filters: [], rewind: 0 }
 * ```
 */
export function subscriptionOf(selection: ChannelSelection, req: HttpRequest): Subscription {
  const filters = selection.filters?.length
    ? [...selection.filters, ...selection.channels.map((c) => parseTopicFilter(c))]
    : [];
  return {
    tagged: selection.tagged === true || filters.length > 0,
    filters,
    rewind: rewindOf(req),
  };
}
