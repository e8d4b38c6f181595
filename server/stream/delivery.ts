/**
 * The delivery path of event streams: record an event in history (once, in
 * publish order), queue it (one slot), drain the queue at the right moment,
 * and fan each channel's events out to its streams in corked passes — plain
 * streams get the bytes as recorded, multi-channel streams one tagged copy per
 * pass. Streams whose replay is still being read hold the live events of
 * their channels until it is written.
 *
 * @module
 */

import type { EventFields } from "../../queue/encode_event.ts";
import { fanOut } from "../../queue/fan_out.ts";
import {
  DuplicateEventIdError,
  type HistoryStore,
  isPromiseLike,
  type StoredEvent,
} from "../../queue/history.ts";
import { MessageQueue, type MessageQueueStats } from "../../queue/message_queue.ts";
import type { EventFeed, FeedGap } from "../../queue/event_feed.ts";
import { FeedIntake, isEventFeed } from "./feed_intake.ts";
import { DrainSchedule } from "./drain_schedule.ts";

export { isEventFeed } from "./feed_intake.ts";
import type { Session } from "../../sessions/session.ts";
import type { SessionTable } from "../../sessions/session_table.ts";
import { concatAll } from "../http/conn_io.ts";
import type { Logger } from "../http/types.ts";
import { tagEvent } from "./channel_tag.ts";
import type { EventSource } from "./event_source.ts";

/** An event on its way from a publisher to the streams. */
export interface QueuedEvent {
  /** The source it was published on. */
  readonly source: EventSource;
  /** Its channel. */
  readonly channel: string;
  /** The encoded event (with its `id:` line once recorded). */
  bytes: Uint8Array;
  /** The publisher's fields. */
  readonly fields: EventFields;
  /** The event id (given, or assigned by the history store), if any. */
  id?: string;
}

/** A stream waiting for an asynchronous store's replay; live events are held meanwhile. */
export interface PendingReplay {
  /** The stream's source. */
  readonly source: EventSource;
  /** Whether the stream follows a channel. */
  readonly wants: (channel: string) => boolean;
  /** Live events of those channels, in order, not yet written. */
  readonly held: QueuedEvent[];
}

/** Counters of the delivery path. */
export interface DeliveryStats {
  /** The queue's counters; `rejected` includes publishes refused before queueing. */
  readonly queue: MessageQueueStats & { readonly depth: number; readonly capacity: number };
  /** Events taken from the queue and fanned out (one per publish). */
  readonly eventsPublished: number;
  /** Event copies accepted by sessions (one per recipient). */
  readonly eventsDelivered: number;
  /** Event copies refused by sessions (closed or over budget). */
  readonly eventsDropped: number;
  /** History appends that failed (each logged; the event was not sent). */
  readonly appendFailures: number;
}

/** Options of {@linkcode Delivery}. */
export interface DeliveryOptions {
  /** Capacity of the queue. */
  readonly queueSize: number;
  /** Where events are recorded, if anywhere. */
  readonly history: HistoryStore | undefined;
  /** The session table, corked for each pass. */
  readonly sessions: SessionTable;
  /** Where failures are logged. */
  readonly log: Logger;
  /** The source registered at a path (feed events name their source by path). */
  readonly sourceAt?: (path: string) => EventSource | undefined;
  /** The feed lost events: the stream layer sends gap notices. */
  readonly onFeedGap?: (gap: FeedGap) => void;
}

/**
 * The queue and fan-out of one server.
 *
 * @example
 * ```ts
 * import { Delivery } from "./delivery.ts";
 * import { SessionTable } from "../../sessions/session_table.ts";
 * const delivery = new Delivery({
 *   queueSize: 16,
 *   history: undefined,
 *   sessions: new SessionTable(8),
 *   log: () => {},
 * });
 * delivery.stop();
 * ```
 */
export class Delivery {
  /** Streams whose replay is being read, by session id. */
  readonly replaying: Map<number, PendingReplay> = new Map();
  readonly #history: HistoryStore | undefined;
  readonly #sessions: SessionTable;
  readonly #log: Logger;
  readonly #queue: MessageQueue<QueuedEvent>;
  /** Events whose (asynchronous) history append is pending; each holds a queue slot. */
  #appending = 0;
  /** Settles after the last pending append: keeps queue order equal to publish order. */
  #appendTail: Promise<unknown> = Promise.resolve();
  #running = true;
  readonly #schedule = new DrainSchedule(() => this.drain());
  /** Sockets the running fan-out pass reached. */
  #passTargets = 0;
  #refused = 0;
  #published = 0;
  #delivered = 0;
  #dropped = 0;
  #appendFailures = 0;
  /** The shared feed's intake, when the store is one. */
  readonly #intake: FeedIntake | undefined;

  /**
   * Creates the queue; draining starts with the first event.
   *
   * @param options Queue size, history store, session table, logger.
   */
  constructor(options: DeliveryOptions) {
    this.#history = options.history;
    this.#sessions = options.sessions;
    this.#log = options.log;
    this.#queue = new MessageQueue<QueuedEvent>(options.queueSize, this.#schedule.request);
    this.#intake = isEventFeed(options.history)
      ? new FeedIntake(options.history, {
        queue: this.#queue,
        running: () => this.#running,
        sourceAt: options.sourceAt ?? (() => undefined),
        drain: () => this.drain(),
        onGap: options.onFeedGap ?? (() => {}),
      })
      : undefined;
    this.#schedule.fromFeed = this.#intake !== undefined;
  }

  /** Whether events come from a shared feed (several instances). */
  get feed(): EventFeed | undefined {
    return this.#intake?.feed;
  }

  /** Starts following the feed, when the store is one. */
  startFeed(): void {
    this.#intake?.start();
  }

  /**
   * Resolves once the feed has fanned out the event `id` (or at once without
   * a feed, or when `timeoutMs` passes first: then `false`).
   *
   * @param id A numeric event id.
   * @param timeoutMs The most to wait.
   * @returns Whether the feed reached it.
   */
  feedReached(id: string, timeoutMs: number): Promise<boolean> {
    return this.#intake?.reached(id, timeoutMs) ?? Promise.resolve(true);
  }

  /** The history store, if any. */
  get history(): HistoryStore | undefined {
    return this.#history;
  }

  /** Whether appends are pending (a replay read now may miss or repeat them). */
  get appending(): boolean {
    return this.#appending > 0;
  }

  /** Counters since start. */
  get stats(): DeliveryStats {
    return {
      queue: {
        ...this.#queue.stats,
        rejected: this.#queue.stats.rejected + this.#refused,
        depth: this.#queue.length,
        capacity: this.#queue.capacity,
      },
      eventsPublished: this.#published,
      eventsDelivered: this.#delivered,
      eventsDropped: this.#dropped,
      appendFailures: this.#appendFailures,
    };
  }

  /** Resolves once every pending history append has settled. */
  appended(): Promise<unknown> {
    return this.#appendTail;
  }

  /** Refuses new events from now on, stops following the feed and wakes publishers waiting for room. */
  stop(): void {
    this.#running = false;
    this.#intake?.stop();
    this.#queue.wakeAll();
  }

  /**
   * Records an event in history (assigning its id) and queues it, keeping
   * queue order equal to publish order. Synchronous stores: done before this
   * returns (a duplicate id throws here). Asynchronous stores: the event holds
   * a queue slot until its append resolves; a failed append rejects (and is
   * counted in `appendFailures`).
   *
   * @param ev The event.
   * @returns Whether it was queued (`false`: queue full or stopped).
   */
  publish(ev: QueuedEvent): boolean | Promise<boolean> {
    if (!this.#running) return false;
    if (this.#intake !== undefined) return this.#publishToFeed(this.#intake, ev);
    const store = this.#history;
    if (store === undefined) {
      ev.id = ev.fields.id;
      return this.#queue.push(ev);
    }
    if (this.#queue.length + this.#appending >= this.#queue.capacity) {
      this.#refused++;
      return false;
    }
    let stored: StoredEvent | Promise<StoredEvent>;
    try {
      stored = store.append(historyKey(ev.source, ev.channel), {
        id: ev.fields.id,
        bytes: ev.bytes,
      });
    } catch (err) {
      this.#appendFailed(ev, err);
      throw err;
    }
    if (!isPromiseLike(stored) && this.#appending === 0) {
      ev.id = stored.id;
      ev.bytes = stored.bytes;
      return this.#queue.push(ev);
    }
    this.#appending++;
    const pending = Promise.resolve(stored);
    pending.catch(() => {}); // Handled below, in publish order.
    const done = this.#appendTail.then(() => pending).then((s: StoredEvent) => {
      ev.id = s.id;
      ev.bytes = s.bytes;
      this.#appending--;
      return this.#queue.push(ev);
    }, (err) => {
      this.#appending--;
      this.#appendFailed(ev, err);
      throw err;
    });
    this.#appendTail = done.catch(() => {});
    return done;
  }

  /**
   * {@linkcode publish}, waiting up to `timeoutMs` for room in the queue.
   *
   * @param ev The event.
   * @param timeoutMs How long to wait for room.
   * @returns Whether it was queued.
   */
  async publishWait(ev: QueuedEvent, timeoutMs: number): Promise<boolean> {
    if (this.#intake !== undefined) return await this.publish(ev);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.#running) return false;
      if (this.#queue.length + this.#appending < this.#queue.capacity) {
        return await this.publish(ev);
      }
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.#queue.waitForRoom(left))) {
        this.#refused++;
        return false;
      }
    }
  }

  /**
   * With a feed, a publish is only an append: the event reaches every
   * instance's streams (this one's too) through the feed, in id order. The
   * store bounds the appends in flight; the local queue is not involved.
   */
  async #publishToFeed(intake: FeedIntake, ev: QueuedEvent): Promise<boolean> {
    await intake.ready;
    try {
      const stored = await intake.feed.append(historyKey(ev.source, ev.channel), {
        id: ev.fields.id,
        bytes: ev.bytes,
      });
      ev.id = stored.id;
      ev.bytes = stored.bytes;
      return true;
    } catch (err) {
      this.#appendFailed(ev, err);
      throw err;
    }
  }

  #appendFailed(ev: QueuedEvent, err: unknown): void {
    if (err instanceof DuplicateEventIdError) return; // The publisher's mistake, answered 409.
    this.#appendFailures++;
    this.#log("error", "history append failed", {
      path: ev.source.path,
      channel: ev.channel,
      error: String(err),
    });
  }

  /** Cancels a scheduled drain (closing now: what is queued is not sent). */
  cancelDrain(): void {
    this.#schedule.cancel();
  }

  /** Fans out everything queued now, in one corked pass. */
  drain(): void {
    // Called by the timer, or directly (stream open, shutdown): either way the
    // pass takes everything queued, so a pending timer has nothing left to do.
    this.cancelDrain();
    if (this.#queue.length === 0) return;
    this.#passTargets = 0;
    // Corked: each session collects every event of this pass and writes once.
    this.#sessions.cork();
    try {
      this.#fanOutQueued();
    } finally {
      this.#sessions.uncork();
      this.#schedule.passDone(this.#passTargets);
    }
  }

  /**
   * Fans out everything queued. Events of one channel whose sources have only
   * single-channel clients are joined into one block first (one copy, shared
   * by every socket, instead of one concatenation per socket); for a source
   * with multi-channel clients events go out one by one, so that the order
   * across channels is kept for each client.
   */
  #fanOutQueued(): void {
    let runs: Map<EventSource, Map<string, QueuedEvent[]>> | undefined;
    for (let ev = this.#queue.shift(); ev !== undefined; ev = this.#queue.shift()) {
      this.#published++;
      if (this.#intake !== undefined && ev.id !== undefined) this.#intake.fannedOut(ev.id);
      if (this.replaying.size > 0) {
        for (const r of this.replaying.values()) {
          if (r.source === ev.source && r.wants(ev.channel)) r.held.push(ev);
        }
      }
      if (ev.source.hasMultiChannelClients) {
        this.#fanOutRun(ev.source, ev.channel, [ev]);
        continue;
      }
      runs ??= new Map();
      let byChannel = runs.get(ev.source);
      if (byChannel === undefined) runs.set(ev.source, byChannel = new Map());
      const run = byChannel.get(ev.channel);
      if (run === undefined) byChannel.set(ev.channel, [ev]);
      else run.push(ev);
    }
    if (runs !== undefined) {
      for (const [source, byChannel] of runs) {
        for (const [channel, run] of byChannel) this.#fanOutRun(source, channel, run);
      }
    }
    this.#intake?.wake();
  }

  /**
   * Writes a run of one channel's events to its plain streams, then (tagged,
   * one copy for all) to its multi-channel and filter streams.
   */
  #fanOutRun(source: EventSource, channel: string, run: readonly QueuedEvent[]): void {
    const last = run[run.length - 1];
    const plain = source.sessionsOf(channel);
    if (plain !== undefined) { // Nobody listens: no join.
      const bytes = run.length === 1 ? last.bytes : concatAll(run.map((e) => e.bytes));
      this.#fanOutBlock(plain, bytes, last.id, run.length);
    }
    const tagged = source.taggedSessionsOf(channel);
    const filtered = source.filterSessionsOf(channel);
    if (tagged === undefined && filtered === undefined) return;
    const bytes = run.length === 1
      ? tagEvent(last.bytes, channel)
      : concatAll(run.map((e) => tagEvent(e.bytes, channel)));
    if (tagged !== undefined) this.#fanOutBlock(tagged, bytes, last.id, run.length);
    if (filtered !== undefined) this.#fanOutBlock(filtered, bytes, last.id, run.length);
  }

  #fanOutBlock(
    sessions: ReadonlyMap<number, Session>,
    bytes: Uint8Array,
    lastId: string | undefined,
    events: number,
  ): void {
    this.#passTargets += sessions.size;
    const accepted = fanOut(bytes, sessions.values(), lastId, events);
    this.#delivered += accepted * events;
    this.#dropped += (sessions.size - accepted) * events;
  }
}

/**
 * The name of a channel's history in the store: `<source path>#<channel>`, so
 * that two sources (e.g. `/a/:channel` and `/b/:channel`) that both have a
 * channel `x` keep separate histories.
 *
 * @param source The event source.
 * @param channel The channel.
 * @returns The history key.
 */
export function historyKey(source: EventSource, channel: string): string {
  return `${source.path}#${channel}`;
}
