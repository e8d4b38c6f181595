/**
 * Event history: the {@linkcode HistoryStore} interface the server replays
 * `Last-Event-ID` reconnections from, and {@linkcode MemoryHistory}, the
 * bounded in-memory store used by default.
 *
 * A store keeps, per channel, the latest events in publication order, bounded
 * by count and by bytes. Ids: an event published without one gets the next
 * number of the store's sequence (decimal strings, growing across channels
 * and restarts); an id given by the publisher is kept as given and must be
 * unique within its channel. "The events after id X" means the events
 * published after the event X, in publication order.
 *
 * Every method may answer synchronously or with a promise. In-memory and
 * SQLite stores answer synchronously, which lets the server record an event
 * before `send()` returns and write a replay without any window for a live
 * event to slip in; a network store (Redis Streams) answers with promises and
 * the server then buffers live events until the replay is written.
 *
 * @module
 */

import { checkHistoryLimits, mergeBySeq, type SeqEvent } from "./_history_common.ts";
import { encodeEvent } from "./encode_event.ts";
import { clockFloorId, EventIdSequence, withEventId } from "./event_ids.ts";

/** A value, or a promise of it: what store methods may return. */
export type MaybePromise<T> = T | Promise<T>;

/** An event handed to {@linkcode HistoryStore.append}. */
export interface HistoryInput {
  /**
   * The publisher's id. When given, `bytes` already carry its `id:` line.
   * When `undefined`, the store assigns the next id of its sequence and adds
   * the `id:` line itself.
   */
  readonly id?: string;
  /** The encoded event block (see `encodeEvent`). */
  readonly bytes: Uint8Array;
}

/** An event as stored: its id and its encoded block, `id:` line included. */
export interface StoredEvent {
  /** The event id (given or assigned). */
  readonly id: string;
  /** The bytes to send, `id:` line included. */
  readonly bytes: Uint8Array;
  /**
   * The channel (history key) the event was recorded under. Stores set it on
   * the events of a {@linkcode HistoryStore.since} answer, which may merge
   * several channels (a multi-channel stream tags each event with it).
   */
  readonly channel?: string;
}

/** The answer of {@linkcode HistoryStore.since}. */
export interface HistoryReplay {
  /** Retained events after the asked id, in publication order. */
  readonly events: readonly StoredEvent[];
  /**
   * `true` when events after the asked id may be missing: the id is unknown
   * (never seen, or no longer retained), or one of the channels dropped
   * events published after it.
   */
  readonly gap: boolean;
  /** Id of the oldest retained event of the channels, or `null` when none. */
  readonly earliest: string | null;
  /** Id of the newest retained event of the channels, or `null` when none. */
  readonly latest: string | null;
}

/**
 * Where the server keeps events for replay. Implement it to plug another
 * store (e.g. Redis Streams for several instances) into
 * `serve({ historyStore })`; the server needs nothing else.
 *
 * @example
 * ```ts
 * import { MemoryHistory, type HistoryStore } from "./history.ts";
 * const store: HistoryStore = new MemoryHistory({ maxEvents: 100 });
 * const { id } = store.append("news", { bytes: new TextEncoder().encode("data: hi\n\n") }) as {
 *   id: string;
 * };
 * ```
 */
export interface HistoryStore {
  /**
   * Records one event at the end of a channel's history, applying the
   * retention limits. When this returns (or its promise resolves) the event
   * must be as durable as the store promises (on disk for a file store).
   *
   * @param channel The channel.
   * @param event The encoded event and the publisher's id, if any.
   * @returns The id and the bytes to send (with the assigned `id:` line).
   * @throws {DuplicateEventIdError} When `event.id` is already retained in the channel.
   */
  append(channel: string, event: HistoryInput): MaybePromise<StoredEvent>;
  /**
   * The retained events of some channels published after the event `lastId`,
   * merged in publication order. With `lastId` undefined: no events and no
   * gap, only the bounds.
   *
   * @param channels The channels of a stream.
   * @param lastId The client's `Last-Event-ID`.
   * @returns The events, whether some are missing, and the bounds.
   */
  since(
    channels: readonly string[],
    lastId?: string,
    options?: SinceOptions,
  ): MaybePromise<HistoryReplay>;
  /**
   * The channels with retained events (optional): lets a stream that follows
   * a topic filter (`sensors/+/temp`) replay every matching channel.
   *
   * @returns The channel names (history keys).
   */
  channels?(): MaybePromise<readonly string[]>;
  /** Releases the store (closes files and connections). Idempotent. */
  close(): MaybePromise<void>;
}

/** Options of {@linkcode HistoryStore.since}. */
export interface SinceOptions {
  /**
   * With no `lastId`: the last this-many retained events of each channel,
   * merged in publication order (`?rewind=N`: current values first), with no
   * gap. Ignored when `lastId` is given.
   * @default {0}
   */
  readonly last?: number;
}

/**
 * Thrown by {@linkcode HistoryStore.append} when a publisher's id is taken.
 * The hub's publish API answers it with `409 Conflict`.
 *
 * @example
 * ```ts
 * import { DuplicateEventIdError, MemoryHistory } from "./history.ts";
 * const h = new MemoryHistory();
 * const bytes = new TextEncoder().encode("id: a\ndata: x\n\n");
 * h.append("c", { id: "a", bytes });
 * try {
 *   h.append("c", { id: "a", bytes });
 * } catch (err) {
 *   if (err instanceof DuplicateEventIdError) console.log(err.id); // "a"
 * }
 * ```
 */
export class DuplicateEventIdError extends Error {
  /** The channel. */
  readonly channel: string;
  /** The id that is already retained. */
  readonly id: string;
  /**
   * Creates the error.
   *
   * @param channel The channel.
   * @param id The duplicate id.
   */
  constructor(channel: string, id: string) {
    super(`event id ${JSON.stringify(id)} is already used in channel ${JSON.stringify(channel)}`);
    this.name = "DuplicateEventIdError";
    this.channel = channel;
    this.id = id;
  }
}

/**
 * A store cannot record or read events now (its server is down, slow or
 * full). Publishers are told to come back later: the hub answers `503` with
 * `Retry-After`. Network stores throw it (or a subclass).
 *
 * @example
 * ```ts
 * import { HistoryUnavailableError } from "./history.ts";
 * const err = new HistoryUnavailableError("redis is down", { retryAfterSeconds: 1 });
 * err.retryAfterSeconds; // 1
 * ```
 */
export class HistoryUnavailableError extends Error {
  /** Seconds a client should wait before retrying (for `Retry-After`). */
  readonly retryAfterSeconds: number;
  /**
   * Creates the error.
   *
   * @param message What is wrong.
   * @param options The cause, and the retry hint (default 1 s).
   */
  constructor(message: string, options: { cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = "HistoryUnavailableError";
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }
}

/**
 * A store that assigns every id itself (a shared counter) refuses an id
 * given by the publisher: the hub answers `400`.
 *
 * @example
 * ```ts
 * import { EventIdRefusedError } from "./history.ts";
 * new EventIdRefusedError("news", "a1").message;
 * ```
 */
export class EventIdRefusedError extends Error {
  /** The channel. */
  readonly channel: string;
  /** The refused id. */
  readonly id: string;
  /**
   * Creates the error.
   *
   * @param channel The channel.
   * @param id The publisher's id.
   */
  constructor(channel: string, id: string) {
    super(`event ids are assigned by the store: ${JSON.stringify(id)} refused`);
    this.name = "EventIdRefusedError";
    this.channel = channel;
    this.id = id;
  }
}

/**
 * The event type of gap notices.
 *
 * @example
 * ```js
 * // In a browser: resync when events were missed.
 * const es = new EventSource("/events/orders");
 * es.addEventListener("sluice.gap", (e) => {
 *   const { lastEventId, earliest } = JSON.parse(e.data);
 *   console.log(`missed events after ${lastEventId}; history starts at ${earliest}`);
 * });
 * ```
 */
export const GAP_EVENT = "sluice.gap";

/**
 * Encodes a gap notice: `event: sluice.gap` with JSON data
 * `{"lastEventId": <asked>, "earliest": <first retained id or null>}`. It has
 * no `id:` line, so the client's last event id stays what it was.
 *
 * @param lastEventId The last id the client had (asked, or last delivered), or `null`.
 * @param earliest The oldest retained id of the stream's channels, or `null`.
 * @returns The encoded event.
 *
 * @example
 * ```ts
 * import { encodeGapEvent } from "./history.ts";
 * encodeGapEvent("41", "1000");
 * // event: sluice.gap\ndata: {"lastEventId":"41","earliest":"1000"}\n\n
 * ```
 */
export function encodeGapEvent(lastEventId: string | null, earliest: string | null): Uint8Array {
  return encodeEvent(JSON.stringify({ lastEventId, earliest }), { event: GAP_EVENT });
}

/**
 * Whether a store answer is a promise.
 *
 * @param value A store answer.
 * @returns `true` for a promise (or any thenable).
 */
export function isPromiseLike<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/** Options of {@linkcode MemoryHistory} and the SQLite store. */
export interface HistoryOptions {
  /** Most events kept per channel. @default {1000} */
  maxEvents?: number;
  /**
   * Most bytes (encoded events) kept per channel; the newest event is kept
   * even when it alone is larger.
   * @default {1048576}
   */
  maxBytes?: number;
  /**
   * First id the sequence hands out, when nothing larger was seen.
   * @default {Date.now() * 1000}
   */
  firstId?: number;
  /**
   * Most channels with retained events. Appending to a new channel past it
   * drops the channel appended to least recently, whole (its clients get
   * `sluice.gap` if they reconnect), so memory stays bounded however many
   * channel names publishers use.
   * @default {10000}
   */
  maxChannels?: number;
}

/** Defaults of {@linkcode HistoryOptions}. */
export const DEFAULT_HISTORY_OPTIONS = {
  maxEvents: 1000,
  maxBytes: 1024 * 1024,
  maxChannels: 10_000,
} as const;

interface Entry extends SeqEvent {
  readonly channel: string;
}

/** One channel's retained events, oldest first (`entries[head..]`). */
class ChannelLog {
  entries: Entry[] = [];
  head = 0;
  bytes = 0;
  /** `seq` of the newest event dropped by retention, `0` when none. */
  evictedSeq = 0;
  readonly byId = new Map<string, Entry>();

  get size(): number {
    return this.entries.length - this.head;
  }

  get first(): Entry | undefined {
    return this.entries[this.head];
  }

  get last(): Entry | undefined {
    return this.size > 0 ? this.entries[this.entries.length - 1] : undefined;
  }

  push(e: Entry): void {
    this.entries.push(e);
    this.byId.set(e.id, e);
    this.bytes += e.bytes.length;
  }

  evictOldest(): void {
    const e = this.entries[this.head];
    this.entries[this.head] = undefined as unknown as Entry;
    this.head++;
    this.bytes -= e.bytes.length;
    this.evictedSeq = e.seq;
    this.byId.delete(e.id);
    if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Retained entries with `seq > after`, oldest first. */
  after(after: number): Entry[] {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid].seq <= after) lo = mid + 1;
      else hi = mid;
    }
    return this.entries.slice(lo);
  }
}

/**
 * The default history: each channel keeps its latest events in memory,
 * bounded by count and bytes. Nothing survives a restart; ids keep growing
 * across restarts because the sequence starts above the clock.
 *
 * @example
 * ```ts
 * import { MemoryHistory } from "./history.ts";
 * const history = new MemoryHistory({ maxEvents: 2, firstId: 1 });
 * const data = new TextEncoder().encode("data: x\n\n");
 * history.append("a", { bytes: data }); // id "1"
 * history.append("a", { bytes: data }); // id "2"
 * history.append("a", { bytes: data }); // id "3"; "1" is dropped
 * history.since(["a"], "2"); // { events: [id "3"], gap: false, earliest: "2", latest: "3" }
 * history.since(["a"], "1"); // { events: ["2", "3"], gap: true, ... }
 * ```
 */
export class MemoryHistory implements HistoryStore {
  readonly #maxEvents: number;
  readonly #maxBytes: number;
  readonly #maxChannels: number;
  readonly #ids: EventIdSequence;
  readonly #channels = new Map<string, ChannelLog>();
  #seq = 0;

  /**
   * Creates an empty history.
   *
   * @param options Retention limits and the first id.
   * @throws {RangeError} When a limit is not a positive integer.
   */
  constructor(options: HistoryOptions = {}) {
    const d = DEFAULT_HISTORY_OPTIONS;
    const limits = checkHistoryLimits(
      options.maxEvents ?? d.maxEvents,
      options.maxBytes ?? d.maxBytes,
    );
    this.#maxEvents = limits.maxEvents;
    this.#maxBytes = limits.maxBytes;
    const maxChannels = options.maxChannels ?? d.maxChannels;
    if (!Number.isSafeInteger(maxChannels) || maxChannels < 1) {
      throw new RangeError(`maxChannels must be a positive integer: received ${maxChannels}`);
    }
    this.#maxChannels = maxChannels;
    this.#ids = new EventIdSequence(options.firstId ?? clockFloorId());
  }

  /** Number of channels with retained events. */
  get channelCount(): number {
    return this.#channels.size;
  }

  /** Number of events retained, over all channels. */
  get size(): number {
    let n = 0;
    for (const log of this.#channels.values()) n += log.size;
    return n;
  }

  /**
   * Records an event; see {@linkcode HistoryStore.append}.
   *
   * @param channel The channel.
   * @param event The encoded event and the publisher's id, if any.
   * @returns The id and the bytes to send.
   * @throws {DuplicateEventIdError} When `event.id` is already retained in the channel.
   */
  append(channel: string, event: HistoryInput): StoredEvent {
    let log = this.#channels.get(channel);
    if (log === undefined) {
      if (this.#channels.size >= this.#maxChannels) {
        // Map order is append recency (see below): the first key is the stalest channel.
        this.#channels.delete(this.#channels.keys().next().value!);
      }
      log = new ChannelLog();
    } else {
      this.#channels.delete(channel);
    }
    this.#channels.set(channel, log);
    let id = event.id;
    let bytes = event.bytes;
    if (id === undefined) {
      do id = this.#ids.next(); while (log.byId.has(id));
      bytes = withEventId(id, bytes);
    } else {
      if (log.byId.has(id)) throw new DuplicateEventIdError(channel, id);
      this.#ids.observe(id);
    }
    const entry: Entry = { seq: ++this.#seq, id, bytes, channel };
    log.push(entry);
    while (log.size > this.#maxEvents || (log.bytes > this.#maxBytes && log.size > 1)) {
      log.evictOldest();
    }
    return entry;
  }

  /**
   * The retained events after `lastId`; see {@linkcode HistoryStore.since}.
   *
   * @param channels The channels of a stream.
   * @param lastId The client's `Last-Event-ID`.
   * @param options `last`: the newest events of each channel, without `lastId`.
   * @returns The events, whether some are missing, and the bounds.
   */
  since(channels: readonly string[], lastId?: string, options: SinceOptions = {}): HistoryReplay {
    if (lastId === undefined && channels.length === 1 && !(options.last! > 0)) {
      // A stream without Last-Event-ID on one channel (most of them): only its bounds.
      const log = this.#channels.get(channels[0]);
      return {
        events: [],
        gap: false,
        earliest: log?.first?.id ?? null,
        latest: log?.last?.id ?? null,
      };
    }
    const logs: ChannelLog[] = [];
    for (const ch of channels) {
      const log = this.#channels.get(ch);
      if (log !== undefined && !logs.includes(log)) logs.push(log);
    }
    let earliest: Entry | undefined;
    let latest: Entry | undefined;
    for (const log of logs) {
      const f = log.first;
      const l = log.last;
      if (f !== undefined && (earliest === undefined || f.seq < earliest.seq)) earliest = f;
      if (l !== undefined && (latest === undefined || l.seq > latest.seq)) latest = l;
    }
    const bounds = { earliest: earliest?.id ?? null, latest: latest?.id ?? null };
    if (lastId === undefined) {
      const last = options.last ?? 0;
      const events = last > 0
        ? mergeBySeq(
          logs.map((log) => log.entries.slice(Math.max(log.head, log.entries.length - last))),
        )
        : [];
      return { events, gap: false, ...bounds };
    }
    let from = -1;
    for (const log of logs) {
      const at = log.byId.get(lastId);
      if (at !== undefined && at.seq > from) from = at.seq;
    }
    const gap = from < 0 || logs.some((log) => log.evictedSeq > from);
    const events = mergeBySeq(logs.map((log) => log.after(Math.max(from, 0))));
    return { events, gap, ...bounds };
  }

  /**
   * The channels with retained events.
   *
   * @returns Their names.
   */
  channels(): string[] {
    return [...this.#channels.keys()];
  }

  /** Forgets every event. */
  close(): void {
    this.#channels.clear();
  }
}
