/**
 * {@linkcode RedisEngine}: history and event feed on Redis Streams, shared by
 * several Sluice instances. It is both a `HistoryStore` (append, replay) and
 * an `EventFeed` (every event appended by any instance, in one order).
 *
 * @module
 */

import type { EventFeed, FeedSink, FeedStats } from "../event_feed.ts";
import { clockFloorId, numericId, withEventId } from "../event_ids.ts";
import type { HistoryInput, HistoryReplay, HistoryStore, StoredEvent } from "../history.ts";
import { openConnection, parseRedisUrl, type RedisAddress, type RedisClient } from "./_client.ts";
import { Follower } from "./_follower.ts";
import { type RedisKeys, redisKeys } from "./_keys.ts";
import {
  backoffDelay,
  type ResolvedRedisEngineOptions,
  resolveRedisEngineOptions,
} from "./_resolve_options.ts";
import { loadScripts, PUBLISH, runScript, SINCE } from "./_scripts.ts";
import { EngineUnavailableError, PublisherIdRefusedError } from "./errors.ts";
import type { RedisEngineOptions } from "./options.ts";

/** Options of {@linkcode RedisEngine.since} (the core's `SinceOptions`, and what `last` means after an id here). */
export interface RedisSinceOptions {
  /**
   * Keep only the newest `last` events of each key (after `lastId` when it
   * is given). Without `lastId` this is a rewind: the last N retained events
   * of each key, without a gap. With `lastId`, cutting events is a gap.
   */
  last?: number;
}

/** Counters and state of a {@linkcode RedisEngine}: the feed's, plus publishing. */
export interface RedisEngineStats extends FeedStats {
  /** Whether the command connection (appends, replays) is up. */
  readonly commandConnected: boolean;
  /** Events appended (acknowledged by Redis) through this engine. */
  readonly published: number;
  /** Appends that failed with {@linkcode EngineUnavailableError}. */
  readonly publishErrors: number;
  /** Appends waiting for Redis now. */
  readonly pendingAppends: number;
}

const IDLE_FEED: FeedStats = {
  connected: false,
  position: null,
  head: null,
  lag: 0,
  delivered: 0,
  reconnects: 0,
  gaps: 0,
  watchdogRestarts: 0,
};

type RawEntry = [Uint8Array, Uint8Array[]];
type RawKey = [RawEntry | null, Uint8Array | null, RawEntry[]];

const latin1 = new TextDecoder("latin1");

interface Entry extends StoredEvent {
  readonly seq: number;
  readonly prev: number | null;
}

function parseEntry([rawId, fields]: RawEntry): Entry {
  const sid = latin1.decode(rawId);
  const seq = Number(sid.slice(0, sid.indexOf("-")));
  let prev: number | null = null;
  let bytes = new Uint8Array(0);
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = latin1.decode(fields[i]);
    if (name === "p") {
      prev = fields[i + 1].length === 0 ? null : Number(latin1.decode(fields[i + 1]));
    } else if (name === "b") bytes = new Uint8Array(fields[i + 1]);
  }
  return { seq, id: String(seq), prev, bytes };
}

/**
 * Maps a client failure to the error the hub answers with 503. The client
 * gives plain errors, so the kind is told by what can be observed: an error
 * reply is a refusal (e.g. out of memory under `noeviction`), a failure after
 * the whole command timeout is a timeout, an earlier one a lost connection.
 *
 * @param err The client's error.
 * @param elapsedMs Time from sending the command to its failure.
 * @param timeoutMs The command timeout.
 */
function unavailable(err: unknown, elapsedMs: number, timeoutMs: number): EngineUnavailableError {
  const message = err instanceof Error ? err.message : String(err);
  const reason = err instanceof Error && err.name === "ReplyError"
    ? "refused"
    : elapsedMs >= timeoutMs
    ? "timeout"
    : "disconnected";
  return new EngineUnavailableError(reason, message, { cause: err });
}

/**
 * History and event feed on Redis Streams, for several Sluice instances
 * sharing channels, ids and history.
 *
 * Every append is one Lua script: it takes the next id from one global
 * counter, adds the event to its key's stream (bounded by `maxEvents`, with
 * the key's previous id so replays can see holes) and to one global log
 * (bounded by `logMax`) that {@linkcode RedisEngine.follow} reads. Ids are
 * therefore contiguous across all instances, only grow (the counter starts
 * above the clock, `Date.now() * 1000`, whenever the dataset is new), and a
 * dataset lost by Redis is told apart by its `born` id.
 *
 * Publishers cannot choose ids: `append` with `event.id` rejects with
 * {@linkcode PublisherIdRefusedError}. While Redis is down or slow, `append`
 * and `since` reject within `commandTimeoutMs` with
 * {@linkcode EngineUnavailableError}.
 *
 * @example
 * ```ts ignore
 * import { RedisEngine } from "./redis_engine.ts";
 * await using engine = await RedisEngine.connect("redis://127.0.0.1:6379", { maxEvents: 500 });
 * const stop = engine.follow({
 *   deliver: (events) => events.length,
 *   whenRoom: () => Promise.resolve(),
 *   gap: (notice) => console.log("lost events after", notice.afterId),
 * });
 * const { id } = await engine.append("news", { bytes: new TextEncoder().encode("data: hi\n\n") });
 * await engine.since(["news"], id); // { events: [], gap: false, earliest: id, latest: id }
 * stop();
 * ```
 */
export class RedisEngine implements HistoryStore, EventFeed, AsyncDisposable {
  readonly #options: ResolvedRedisEngineOptions;
  readonly #address: RedisAddress;
  readonly #keys: RedisKeys;
  readonly #client: RedisClient;
  #follower: Follower | undefined;
  #closed: Promise<void> | undefined;
  #published = 0;
  #publishErrors = 0;
  #pendingAppends = 0;

  /**
   * Connects to Redis and returns a ready engine. The client library is
   * loaded here, on first use.
   *
   * @param url `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS.
   * @param options Bounds, timeouts and the logger.
   * @returns The engine, its command connection ready.
   * @throws {RangeError} When the URL or an option is invalid.
   * @throws {EngineUnavailableError} When Redis cannot be reached within `connectTimeoutMs`.
   */
  static async connect(url: string, options: RedisEngineOptions = {}): Promise<RedisEngine> {
    const resolved = resolveRedisEngineOptions(options);
    const address = parseRedisUrl(url);
    let client: RedisClient;
    try {
      client = await openConnection(address, {
        name: "sluice-engine",
        commandTimeoutMs: resolved.commandTimeoutMs,
        connectTimeoutMs: resolved.connectTimeoutMs,
        tlsCa: resolved.tlsCa,
        retryDelay: (n) => backoffDelay(n, resolved.backoffMinMs, resolved.backoffMaxMs),
        onError: (err) =>
          resolved.logger?.("warn", "engine: connection error", { error: err.message }),
      });
    } catch (err) {
      throw new EngineUnavailableError(
        "disconnected",
        `cannot connect to ${address.host}:${address.port}`,
        {
          cause: err,
        },
      );
    }
    const reload = () =>
      loadScripts(client, [PUBLISH, SINCE]).catch((err) =>
        resolved.logger?.("warn", "engine: cannot load scripts", { error: String(err) })
      );
    await reload();
    client.on("ready", reload);
    return new RedisEngine(address, resolved, client);
  }

  private constructor(
    address: RedisAddress,
    options: ResolvedRedisEngineOptions,
    client: RedisClient,
  ) {
    this.#address = address;
    this.#options = options;
    this.#keys = redisKeys(options.prefix);
    this.#client = client;
  }

  /**
   * Appends an event to a key's history and to the global log; resolves
   * once Redis ran the script (what a publisher's `202` means).
   *
   * @param channel The history key.
   * @param event The encoded event, without `id:` line and without `id`.
   * @returns The assigned id and the bytes with their `id:` line.
   * @throws {PublisherIdRefusedError} When `event.id` is given.
   * @throws {EngineUnavailableError} When Redis is down, slow or refuses the write.
   */
  async append(channel: string, event: HistoryInput): Promise<StoredEvent> {
    if (event.id !== undefined) throw new PublisherIdRefusedError(channel, event.id);
    if (this.#closed !== undefined) throw new EngineUnavailableError("closed", "engine closed");
    const k = this.#keys;
    const o = this.#options;
    if (this.#pendingAppends >= o.maxPendingAppends) {
      this.#publishErrors++;
      throw new EngineUnavailableError(
        "overloaded",
        `${this.#pendingAppends} appends already wait for Redis`,
      );
    }
    let reply: unknown;
    const sent = Date.now();
    this.#pendingAppends++;
    try {
      reply = await runScript(
        this.#client,
        PUBLISH,
        [k.counter, k.born, k.stream(channel), k.log],
        [
          clockFloorId(),
          o.maxEvents,
          o.logMax,
          o.trimming === "exact" ? "=" : "~",
          channel,
          event.bytes,
        ],
      );
    } catch (err) {
      this.#publishErrors++;
      throw unavailable(err, Date.now() - sent, this.#options.commandTimeoutMs);
    } finally {
      this.#pendingAppends--;
    }
    this.#published++;
    const id = latin1.decode((reply as Uint8Array[])[0]);
    return { id, bytes: withEventId(id, event.bytes) };
  }

  /**
   * The retained events of some keys after `lastId`, merged in id order;
   * `gap` is `true` when some may be missing: `lastId` is not a numeric id,
   * older than the dataset (Redis lost its data since), newer than any id
   * handed out, or a key dropped events after it (its oldest event after
   * `lastId` names a previous event that is no longer retained).
   *
   * @param keys The history keys of a stream.
   * @param lastId The client's `Last-Event-ID`; without it, no events (unless `last`), only the bounds.
   * @param options `last`: the newest N events of each key.
   * @returns The events, whether some are missing, and the bounds.
   * @throws {RangeError} When `last` is not a positive integer.
   * @throws {EngineUnavailableError} When Redis is down or slow.
   */
  async since(
    keys: readonly string[],
    lastId?: string,
    options: RedisSinceOptions = {},
  ): Promise<HistoryReplay> {
    const last = options.last;
    if (last !== undefined && (!Number.isSafeInteger(last) || last < 1)) {
      throw new RangeError(`last must be a positive integer: received ${last}`);
    }
    if (this.#closed !== undefined) throw new EngineUnavailableError("closed", "engine closed");
    const unique = [...new Set(keys)];
    const from = lastId === undefined ? undefined : numericId(lastId);
    const mode = lastId === undefined
      ? (last === undefined ? "none" : "all")
      : (from === undefined ? "all" : "after");
    const k = this.#keys;
    let reply: unknown[];
    const sent = Date.now();
    try {
      reply = await runScript(
        this.#client,
        SINCE,
        [k.born, k.counter, ...unique.map((key) => k.stream(key))],
        [mode, from ?? 0, last ?? 0],
      ) as unknown[];
    } catch (err) {
      throw unavailable(err, Date.now() - sent, this.#options.commandTimeoutMs);
    }
    const born = reply[0] === null ? null : Number(latin1.decode(reply[0] as Uint8Array));
    const counter = reply[1] === null ? null : Number(latin1.decode(reply[1] as Uint8Array));
    let earliest: number | null = null;
    let latest: number | null = null;
    let gap = lastId !== undefined &&
      (born === null || counter === null || from === undefined || from < born || from > counter);
    const lists: Entry[][] = [];
    for (const raw of reply.slice(2) as RawKey[]) {
      const [first, lastRaw, rawEntries] = raw;
      if (first !== null) {
        const seq = parseEntry(first).seq;
        if (earliest === null || seq < earliest) earliest = seq;
      }
      if (lastRaw !== null) {
        const s = latin1.decode(lastRaw);
        const seq = Number(s.slice(0, s.indexOf("-")));
        if (latest === null || seq > latest) latest = seq;
      }
      let entries = rawEntries.map(parseEntry);
      if (last !== undefined && entries.length > last) {
        // One more than asked was read: events after lastId were cut.
        entries = entries.slice(entries.length - last);
        if (mode === "after") gap = true;
      }
      if (mode === "after" && entries.length > 0) {
        const prev = entries[0].prev;
        if (prev !== null && prev > from!) gap = true;
      }
      lists.push(entries);
    }
    const merged = lists.filter((l) => l.length > 0);
    const events = merged.length === 1 ? merged[0] : merged.flat().sort((a, b) => a.seq - b.seq);
    return {
      events: events.map(({ id, bytes }) => ({ id, bytes })),
      gap,
      earliest: earliest === null ? null : String(earliest),
      latest: latest === null ? null : String(latest),
    };
  }

  /**
   * Follows every event appended by any instance from now on, over a
   * dedicated connection; see {@linkcode EventFeed.follow}. One follower per
   * engine: a second call while one runs throws.
   *
   * The start position ("now") is resolved once the feed's connection is
   * up: await {@linkcode RedisEngine.whenFollowing} before relying on
   * events appended after this call.
   *
   * @param sink Where events go.
   * @returns A function that stops following (idempotent).
   * @throws {Error} When the engine is closed or already following.
   */
  follow(sink: FeedSink): () => void {
    if (this.#closed !== undefined) throw new Error("engine closed");
    if (this.#follower !== undefined) throw new Error("engine already has a follower");
    const o = this.#options;
    const follower = new Follower({
      keys: this.#keys,
      options: o,
      open: () =>
        openConnection(this.#address, {
          name: "sluice-feed",
          commandTimeoutMs: undefined,
          connectTimeoutMs: o.connectTimeoutMs,
          tlsCa: o.tlsCa,
          retryDelay: undefined,
          onError: (err) => o.logger?.("debug", "feed: connection error", { error: err.message }),
        }),
      readHead: async () => {
        const v = await this.#client.get(this.#keys.counter);
        return v === null ? null : Number(v);
      },
    }, sink);
    this.#follower = follower;
    return () => {
      follower.stop();
      if (this.#follower === follower) this.#follower = undefined;
    };
  }

  /**
   * Resolves once the feed started by {@linkcode RedisEngine.follow} has
   * resolved its start position: every event appended after that is
   * delivered. Resolves at once when not following.
   *
   * @returns A promise that resolves when the feed is positioned.
   *
   * @example
   * ```ts ignore
   * import { RedisEngine } from "./redis_engine.ts";
   * const engine = await RedisEngine.connect("redis://127.0.0.1:6379");
   * engine.follow({ deliver: (e) => e.length, whenRoom: () => Promise.resolve(), gap: () => {} });
   * await engine.whenFollowing();
   * ```
   */
  whenFollowing(): Promise<void> {
    return this.#follower?.started ?? Promise.resolve();
  }

  /** The feed's state (idle values before {@linkcode RedisEngine.follow}). */
  get feedStats(): FeedStats {
    return this.#follower?.stats ?? IDLE_FEED;
  }

  /** The feed's state plus publishing counters, for `/status` and `/metrics`. */
  get stats(): RedisEngineStats {
    return {
      ...this.feedStats,
      commandConnected: this.#client.status === "ready",
      published: this.#published,
      publishErrors: this.#publishErrors,
      pendingAppends: this.#pendingAppends,
    };
  }

  /**
   * Stops the feed and closes both connections. Idempotent; never throws.
   *
   * @returns A promise that settles once the feed's loop has ended.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const follower = this.#follower;
      this.#follower = undefined;
      follower?.stop();
      this.#client.disconnect();
      await follower?.finished;
    })();
    return this.#closed;
  }

  /** Same as {@linkcode RedisEngine.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
