/**
 * The event feed: how an engine shared by several instances (Redis Streams)
 * hands the core every event appended by any instance, in one order, with
 * back-pressure and explicit gap notices. The core owns this interface; an
 * engine adapter implements it. Nothing here depends on a client library.
 *
 * @module
 */

/** One event of the feed. */
export interface FeedEvent {
  /** The history key the event was appended to (an opaque string, e.g. `/events/:channel#kitchen`). */
  readonly key: string;
  /** The event id, a decimal string; ids of one feed only grow. */
  readonly id: string;
  /** The encoded event block, `id:` line included, ready to write to streams. */
  readonly bytes: Uint8Array;
}

/** A notice that events were lost between the feed's last delivered event and its next one. */
export interface FeedGap {
  /** The keys that lost events, or `undefined` when unknown (every key may have). */
  readonly keys?: readonly string[];
  /** Id of the last event delivered before the loss, or `null` when none was. */
  readonly afterId: string | null;
  /** Why: `"trimmed"` (the log dropped events not yet read) or `"epoch"` (the engine lost its data). */
  readonly reason: FeedGapReason;
}

/** Why a feed lost events: see {@linkcode FeedGap.reason}. */
export type FeedGapReason = "trimmed" | "epoch";

/**
 * What the core gives {@linkcode EventFeed.follow}: it takes events in id
 * order, says how many it could take, and hears about losses.
 *
 * @example
 * ```ts
 * import type { FeedEvent, FeedSink } from "./event_feed.ts";
 * const got: FeedEvent[] = [];
 * const sink: FeedSink = {
 *   deliver: (events) => (got.push(...events), events.length),
 *   whenRoom: () => Promise.resolve(),
 *   gap: (notice) => console.log("lost events after", notice.afterId),
 * };
 * ```
 */
export interface FeedSink {
  /**
   * Takes events in id order.
   *
   * @param events Events in id order, never empty.
   * @returns How many of them (a prefix) were accepted; the feed pauses and
   * offers the rest again after {@linkcode FeedSink.whenRoom} resolves.
   */
  deliver(events: readonly FeedEvent[]): number;
  /**
   * Waits until the sink has room again after a partial {@linkcode FeedSink.deliver}.
   *
   * @returns A promise that resolves when the sink can take events.
   */
  whenRoom(): Promise<void>;
  /**
   * Events were lost between the last delivered event and the next one: the
   * core sends one `sluice.gap` to the streams of the affected keys (or to
   * every stream when `keys` is undefined). Called once per loss.
   *
   * @param notice Which keys, after which id, and why.
   */
  gap(notice: FeedGap): void;
}

/** Counters and state of a feed, for `/status` and `/metrics`. */
export interface FeedStats {
  /** Whether the feed's connection is up and reading. */
  readonly connected: boolean;
  /** Id of the last event delivered, or `null` before the first. */
  readonly position: string | null;
  /** Id of the newest event appended by any instance, as last seen, or `null`. */
  readonly head: string | null;
  /** Events appended but not yet delivered (`head - position`), `0` when unknown. */
  readonly lag: number;
  /** Events delivered since the feed started. */
  readonly delivered: number;
  /** Times the feed's connection was re-established after a loss. */
  readonly reconnects: number;
  /** Gap notices given to the sink. */
  readonly gaps: number;
  /** Times the watchdog restarted a connection that had stopped delivering. */
  readonly watchdogRestarts: number;
}

/**
 * A source of every event appended by any instance sharing an engine.
 *
 * @example
 * ```ts
 * import type { EventFeed, FeedSink } from "./event_feed.ts";
 * declare const feed: EventFeed;
 * declare const sink: FeedSink;
 * const stop = feed.follow(sink);
 * // ... later
 * stop();
 * ```
 */
export interface EventFeed {
  /**
   * Starts following every event appended by any instance from now on, in
   * id order, never dropping one silently: a loss is told through
   * {@linkcode FeedSink.gap}.
   *
   * @param sink Where events go.
   * @returns A function that stops following (idempotent).
   */
  follow(sink: FeedSink): () => void;
  /**
   * Resolves once the feed's start position is fixed (optional): events
   * appended after that are delivered to the sink.
   */
  whenFollowing?(): Promise<void>;
  /** The feed's state and counters. */
  readonly feedStats: FeedStats;
}
