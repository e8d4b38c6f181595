/**
 * The intake of a shared event feed (e.g. the Redis engine, which several
 * instances follow): the feed's events go into the local queue in id order,
 * a full queue pauses the feed (the engine keeps the backlog), a loss in the
 * feed becomes gap notices, and new streams can wait until the feed has
 * fanned out their replay's newest event.
 *
 * @module
 */

import type { EventFeed, FeedEvent, FeedGap, FeedSink } from "../../queue/event_feed.ts";
import type { HistoryStore } from "../../queue/history.ts";
import type { MessageQueue } from "../../queue/message_queue.ts";
import type { QueuedEvent } from "./delivery.ts";
import type { EventSource } from "./event_source.ts";

/**
 * Whether a history store is also an event feed (several instances share it):
 * then every event reaches streams through the feed, in id order, never
 * straight from a local publish.
 *
 * @param store The store.
 * @returns `true` when it has `follow`.
 */
export function isEventFeed(store: HistoryStore | undefined): store is HistoryStore & EventFeed {
  return typeof (store as Partial<EventFeed> | undefined)?.follow === "function";
}

/** What the intake needs from the delivery path. */
export interface FeedIntakeHost {
  /** The local queue the feed's events go into. */
  readonly queue: MessageQueue<QueuedEvent>;
  /** Whether the server still takes events. */
  readonly running: () => boolean;
  /** The source registered at a path (feed events name their source by path). */
  readonly sourceAt: (path: string) => EventSource | undefined;
  /** Fans out what is queued now. */
  readonly drain: () => void;
  /** The feed lost events: the stream layer sends gap notices. */
  readonly onGap: (gap: FeedGap) => void;
}

/**
 * Follows one shared feed for one server.
 *
 * @example
 * ```ts
 * import type { FeedIntake } from "./feed_intake.ts";
 * // Built by the delivery path when its history store is a feed:
 * // new FeedIntake(engine, { queue, running, sourceAt, drain, onGap }).start();
 * const _check = (i: FeedIntake) => i.feed;
 * ```
 */
export class FeedIntake {
  /** The store that is also the feed. */
  readonly feed: HistoryStore & EventFeed;
  /** Resolves once the feed's start position is fixed (publishes wait for it). */
  ready: Promise<void> = Promise.resolve();
  readonly #host: FeedIntakeHost;
  #stop: (() => void) | undefined;
  /** Id of the last feed event fanned out, as a number. */
  #position = 0;
  readonly #waiters = new Set<{ id: number; resolve: () => void }>();

  /**
   * Creates the intake; following starts with {@linkcode start}.
   *
   * @param feed The store that is also a feed.
   * @param host What it needs from the delivery path.
   */
  constructor(feed: HistoryStore & EventFeed, host: FeedIntakeHost) {
    this.feed = feed;
    this.#host = host;
  }

  /** Starts following (once). */
  start(): void {
    if (this.#stop !== undefined) return;
    this.#stop = this.feed.follow(this.#sink);
    this.ready = (this.feed.whenFollowing?.() ?? Promise.resolve()).then(() => {
      // Events up to the feed's start were appended before this instance
      // followed: it will never fan them out, so it is "at" them already.
      const start = Number(this.feed.feedStats.position ?? 0);
      if (start > this.#position) this.#position = start;
      this.wake();
    }).catch(() => {});
  }

  /** Stops following. */
  stop(): void {
    this.#stop?.();
  }

  /**
   * Notes that the event `id` was fanned out (called in id order).
   *
   * @param id Its id.
   */
  fannedOut(id: string): void {
    this.#position = Number(id);
  }

  /** Wakes the streams waiting for a position the feed has reached. */
  wake(): void {
    if (this.#waiters.size === 0) return;
    for (const w of this.#waiters) {
      if (w.id <= this.#position) {
        this.#waiters.delete(w);
        w.resolve();
      }
    }
  }

  /**
   * Resolves once the feed has fanned out the event `id`, or with `false`
   * when `timeoutMs` passes first.
   *
   * @param id A numeric event id.
   * @param timeoutMs The most to wait.
   * @returns Whether the feed reached it.
   */
  reached(id: string, timeoutMs: number): Promise<boolean> {
    const n = Number(id);
    if (!(n > this.#position)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { id: n, resolve: () => resolve(true) };
      this.#waiters.add(waiter);
      setTimeout(() => {
        if (this.#waiters.delete(waiter)) resolve(false);
      }, timeoutMs);
    });
  }

  /** The sink the feed delivers to: the queue, in id order; a full queue pauses the feed. */
  readonly #sink: FeedSink = {
    deliver: (events: readonly FeedEvent[]): number => {
      const { queue, running, sourceAt } = this.#host;
      let taken = 0;
      for (const e of events) {
        if (!running()) break;
        const at = e.key.indexOf("#");
        const source = at < 0 ? undefined : sourceAt(e.key.slice(0, at));
        if (source !== undefined) {
          const ev = { source, channel: e.key.slice(at + 1), bytes: e.bytes, fields: {}, id: e.id };
          if (!queue.push(ev)) break; // Full: the feed keeps the rest.
        }
        taken++;
      }
      return taken;
    },
    whenRoom: async (): Promise<void> => {
      const { queue, running } = this.#host;
      while (running() && queue.length >= queue.capacity) await queue.waitForRoom(1000);
    },
    gap: (gap: FeedGap): void => {
      // Everything before the hole goes out first.
      this.#host.drain();
      this.#host.onGap(gap);
    },
  };
}
