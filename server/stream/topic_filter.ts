/**
 * Channel names with `/`-separated levels, and MQTT-style topic filters over
 * them (`+` for one level, `#` for any number of trailing levels).
 *
 * ## The channel grammar
 *
 * A channel name is 1 to {@linkcode MAX_CHANNEL_LEVELS} levels joined by `/`,
 * at most {@linkcode MAX_CHANNEL_NAME_LENGTH} characters in all. A level is 1
 * to {@linkcode MAX_CHANNEL_LEVEL_LENGTH} characters of `[A-Za-z0-9._~-]`
 * (URL-unreserved ASCII, so a name is its own URL path and query form), and
 * is neither `.` nor `..` (URL parsers remove such path segments, so
 * `/events/a/../b` could never reach channel `a/../b`). Examples:
 * `news`, `sensors/esp-01/state`, `site.1/room_2/temp~avg`.
 *
 * Every one-level name of the older grammar `[A-Za-z0-9._~-]{1,128}` is still
 * a channel name, except `.` and `..`.
 *
 * ## Topic filters
 *
 * A filter is levels joined by `/` where a level is a channel level, `+`
 * (exactly one level) or, as the last level only, `#` (the parent level and
 * any number of levels below it: `a/#` matches `a`, `a/b` and `a/b/c`; `#`
 * alone matches every channel). A wildcard must fill its whole level
 * (`a+/b` and `a/b#` are refused). A filter without a wildcard matches only
 * the channel of the same name.
 *
 * ## MQTT topics
 *
 * {@linkcode topicToChannel} maps an MQTT topic to the channel of the same
 * name when the topic is a channel name, and refuses it otherwise. Refused:
 * the empty topic, empty levels (`a//b`, `/a`, `a/`), topics starting with
 * `$` (`$SYS/...`, `$share/...`), spaces and every other character outside
 * `[A-Za-z0-9._~/-]` (including non-ASCII letters, `+`, `#`, `:`, `%`),
 * `.` and `..` levels, a level longer than 128 characters, more than 8
 * levels, more than 256 characters.
 *
 * @example
 * ```ts
 * import { parseTopicFilter, topicToChannel } from "./topic_filter.ts";
 * const f = parseTopicFilter("sensors/+/temp");
 * f.matches("sensors/esp-01/temp"); // true
 * f.matches("sensors/esp-01/hum"); // false
 * topicToChannel("sensors/esp-01/temp"); // "sensors/esp-01/temp"
 * topicToChannel("$SYS/broker/uptime"); // undefined
 * ```
 *
 * @module
 */

/** Most levels in a channel name. */
export const MAX_CHANNEL_LEVELS = 8;
/** Most characters in one level of a channel name. */
export const MAX_CHANNEL_LEVEL_LENGTH = 128;
/** Most characters in a channel name, `/` separators included. */
export const MAX_CHANNEL_NAME_LENGTH = 256;

/**
 * The channel grammar as one regular expression: 1 to 8 levels of
 * `[A-Za-z0-9._~-]{1,128}` joined by `/`, at most 256 characters, no `.` or
 * `..` level. Prefer {@linkcode isChannelName}, which reads the same.
 *
 * @example
 * ```ts
 * import { CHANNEL_NAME_RE } from "./topic_filter.ts";
 * CHANNEL_NAME_RE.test("sensors/esp-01/state"); // true
 * CHANNEL_NAME_RE.test("sensors//state"); // false
 * ```
 */
export const CHANNEL_NAME_RE: RegExp =
  /^(?=[^]{1,256}$)(?!(?:[^]*\/)?\.\.?(?:\/|$))[A-Za-z0-9._~-]{1,128}(?:\/[A-Za-z0-9._~-]{1,128}){0,7}$/;

const LEVEL_RE = /^[A-Za-z0-9._~-]{1,128}$/;

function isLevel(level: string): boolean {
  return LEVEL_RE.test(level) && level !== "." && level !== "..";
}

/**
 * Whether a string is a channel name (see the module doc for the grammar).
 *
 * @param name The string.
 * @returns `true` for a channel name.
 * @example
 * ```ts
 * import { isChannelName } from "./topic_filter.ts";
 * isChannelName("sensors/esp-01/state"); // true
 * isChannelName("/sensors"); // false
 * isChannelName("a/../b"); // false
 * ```
 */
export function isChannelName(name: string): boolean {
  return CHANNEL_NAME_RE.test(name);
}

/**
 * Thrown by {@linkcode parseTopicFilter} for a malformed filter.
 *
 * @example
 * ```ts
 * import { parseTopicFilter, TopicFilterError } from "./topic_filter.ts";
 * try {
 *   parseTopicFilter("a/#/b");
 * } catch (err) {
 *   if (err instanceof TopicFilterError) console.log(err.message);
 *   // 'topic filter "a/#/b": "#" may only be the last level'
 * }
 * ```
 */
export class TopicFilterError extends Error {
  /** The filter as received. */
  readonly filter: string;
  /** What is wrong with it, e.g. `"#" may only be the last level`. */
  readonly reason: string;
  /**
   * Creates the error.
   *
   * @param filter The filter as received.
   * @param reason What is wrong with it.
   */
  constructor(filter: string, reason: string) {
    const shown = filter.length > 80 ? `${filter.slice(0, 80)}...` : filter;
    super(`topic filter ${JSON.stringify(shown)}: ${reason}`);
    this.name = "TopicFilterError";
    this.filter = filter;
    this.reason = reason;
  }
}

/** A parsed topic filter, made by {@linkcode parseTopicFilter}. */
export interface TopicFilter {
  /** The filter text. */
  readonly filter: string;
  /** `true` when the filter has no wildcard (it matches one channel only). */
  readonly exact: boolean;
  /**
   * Whether a channel name matches the filter. Allocation-free; call it once
   * per new channel name and cache the answer.
   *
   * @param channel A channel name.
   * @returns `true` when the channel matches.
   */
  matches(channel: string): boolean;
}

// Channel levels never contain regex metacharacters other than "." and "-".
function escapeLevel(level: string): string {
  return level.replace(/[.\-]/g, "\\$&");
}

/**
 * Validates a topic filter and compiles its matcher.
 *
 * @param filter The filter, e.g. `sensors/+/temp` or `sensors/#`.
 * @returns The compiled filter.
 * @throws {TopicFilterError} When the filter is empty, longer than 256
 * characters, has more than 8 levels, an empty level, a wildcard that does
 * not fill its level, `#` before the last level, or a level that is not a
 * channel level.
 * @example
 * ```ts
 * import { parseTopicFilter } from "./topic_filter.ts";
 * const f = parseTopicFilter("sensors/#");
 * f.matches("sensors"); // true
 * f.matches("sensors/esp-01/state"); // true
 * f.matches("alarms/esp-01"); // false
 * ```
 */
export function parseTopicFilter(filter: string): TopicFilter {
  if (typeof filter !== "string" || filter.length === 0) {
    throw new TopicFilterError(String(filter), "must be a non-empty string");
  }
  if (filter.length > MAX_CHANNEL_NAME_LENGTH) {
    throw new TopicFilterError(
      filter,
      `must be at most ${MAX_CHANNEL_NAME_LENGTH} characters: received ${filter.length}`,
    );
  }
  const levels = filter.split("/");
  if (levels.length > MAX_CHANNEL_LEVELS) {
    throw new TopicFilterError(
      filter,
      `must have at most ${MAX_CHANNEL_LEVELS} levels: received ${levels.length}`,
    );
  }
  let exact = true;
  const parts: string[] = [];
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level === "+") {
      exact = false;
      parts.push("[^/]+");
    } else if (level === "#") {
      if (i !== levels.length - 1) {
        throw new TopicFilterError(filter, `"#" may only be the last level`);
      }
      exact = false;
      // "a/#" also matches the parent "a"; "#" alone matches any channel.
      if (i === 0) parts.push("[^]+");
      else parts[parts.length - 1] += "(?:/[^]+)?";
    } else if (level.length === 0) {
      throw new TopicFilterError(filter, `level ${i + 1} is empty`);
    } else if (level.includes("+") || level.includes("#")) {
      throw new TopicFilterError(filter, `a wildcard must be a whole level: received "${level}"`);
    } else if (!isLevel(level)) {
      throw new TopicFilterError(
        filter,
        `level ${i + 1} must be 1-${MAX_CHANNEL_LEVEL_LENGTH} characters of ` +
          `[A-Za-z0-9._~-], not "." or "..": received ${JSON.stringify(level)}`,
      );
    } else {
      parts.push(escapeLevel(level));
    }
  }
  if (exact) {
    return { filter, exact, matches: (channel: string) => channel === filter };
  }
  const re = new RegExp(`^${parts.join("/")}$`);
  return { filter, exact, matches: (channel: string) => re.test(channel) };
}

/**
 * Whether a channel matches a filter: a convenience that parses the filter
 * on every call. On a hot path, parse once with {@linkcode parseTopicFilter}.
 *
 * @param filter The topic filter.
 * @param channel The channel name.
 * @returns `true` when the channel matches.
 * @throws {TopicFilterError} When the filter is malformed.
 * @example
 * ```ts
 * import { topicMatches } from "./topic_filter.ts";
 * topicMatches("sensors/+/temp", "sensors/esp-01/temp"); // true
 * topicMatches("sensors/+", "sensors/esp-01/temp"); // false
 * ```
 */
export function topicMatches(filter: string, channel: string): boolean {
  return parseTopicFilter(filter).matches(channel);
}

/**
 * The channel an MQTT topic is published on: the topic itself when it is a
 * channel name, else `undefined` (see the module doc for what is refused).
 *
 * @param topic The MQTT topic of a received message.
 * @returns The channel name, or `undefined` for a topic outside the grammar.
 * @example
 * ```ts
 * import { topicToChannel } from "./topic_filter.ts";
 * topicToChannel("sensors/esp-01/state"); // "sensors/esp-01/state"
 * topicToChannel("a//b"); // undefined
 * topicToChannel("$SYS/broker/load"); // undefined
 * ```
 */
export function topicToChannel(topic: string): string | undefined {
  return isChannelName(topic) ? topic : undefined;
}
