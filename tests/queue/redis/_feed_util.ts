/**
 * Helpers of the Redis engine tests: a recording sink with a capacity, and
 * a poll that waits for a condition (guarded against hangs, never timed).
 *
 * @module
 */

import type { FeedEvent, FeedGap, FeedSink } from "../../../queue/event_feed.ts";
import type { RedisEngine } from "../../../queue/redis/mod.ts";

/** A sink that records what it is given; `capacity` makes it accept less. */
export class RecordingSink implements FeedSink {
  readonly events: FeedEvent[] = [];
  readonly gaps: FeedGap[] = [];
  /** Events it still accepts before it is full; `Infinity` for no limit. */
  room = Infinity;
  /** Times `deliver` accepted fewer events than offered. */
  partials = 0;
  #waiters: (() => void)[] = [];

  deliver(events: readonly FeedEvent[]): number {
    const n = Math.min(events.length, this.room);
    this.events.push(...events.slice(0, n));
    this.room -= n;
    if (n < events.length) this.partials++;
    return n;
  }

  whenRoom(): Promise<void> {
    if (this.room > 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  gap(notice: FeedGap): void {
    this.gaps.push(notice);
  }

  /** Gives room again and wakes the feed. */
  open(room = Infinity): void {
    this.room = room;
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The ids received, as numbers. */
  get ids(): number[] {
    return this.events.map((e) => Number(e.id));
  }
}

/**
 * Polls until `check` is true; fails after `ms` (a hang guard, not a timing assertion).
 *
 * @param check The condition.
 * @param what What is awaited, for the failure message.
 * @param ms The hang guard.
 */
export async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`hung: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Follows the engine's feed with a new {@linkcode RecordingSink}, once the feed is reading. */
export async function followedSink(engine: RedisEngine): Promise<RecordingSink> {
  const sink = new RecordingSink();
  engine.follow(sink);
  await engine.whenFollowing();
  return sink;
}
