/**
 * Internal: the feed's follower. One dedicated connection reads the global
 * log with `XREAD BLOCK` from a concrete position, offers what it read to
 * the sink in order, and stops reading while the sink is full (Redis holds
 * the backlog). It checks every entry: a new dataset (`born` changed) or a
 * hole in the ids (the log was trimmed past the position) is told to the
 * sink once, then reading goes on from the oldest entry available. A
 * watchdog restarts the connection when the counter is ahead and nothing
 * was read for a while (a half-open socket, a wedged client).
 *
 * @module
 */

import type { FeedEvent, FeedGapReason, FeedSink, FeedStats } from "../event_feed.ts";
import type { RedisClient } from "./_client.ts";
import { backoffDelay, type ResolvedRedisEngineOptions } from "./_resolve_options.ts";
import type { RedisKeys } from "./_keys.ts";

/** What a follower needs from its engine. */
export interface FollowerDeps {
  /** Opens a new dedicated connection (no command timeout, no automatic reconnection). */
  readonly open: () => Promise<RedisClient>;
  /** Reads the counter (last id handed out) over the engine's command connection. */
  readonly readHead: () => Promise<number | null>;
  readonly keys: RedisKeys;
  readonly options: ResolvedRedisEngineOptions;
}

type RawEntry = [Uint8Array, Uint8Array[]];

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();

/** The `ms` part of a stream entry id `<ms>-<seq>`: the event id. */
function entryId(raw: Uint8Array): number {
  const s = latin1.decode(raw);
  return Number(s.slice(0, s.indexOf("-")));
}

/** A follower of the global log; see the module doc. */
export class Follower {
  readonly #deps: FollowerDeps;
  readonly #sink: FeedSink;
  #stopped = false;
  readonly #stop: Promise<void>;
  #resolveStop!: () => void;
  /** Settles when the read loop has ended. */
  readonly finished: Promise<void>;
  /** Resolves once the start position is resolved (or the follower stopped first). */
  readonly started: Promise<void>;
  #resolveStarted!: () => void;
  #client: RedisClient | undefined;
  #everConnected = false;
  #connected = false;
  #restartNow = false;
  /** `born` of the dataset being read, `null` when none existed. */
  #born: string | null = null;
  /** Id of the last log entry read (the `XREAD` position). */
  #cursor = 0;
  /** The id the next entry must have, `null` when unknown. */
  #expect: number | null = null;
  #position: string | null = null;
  #head: number | null = null;
  #paused = false;
  #lastProgress = Date.now();
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #delivered = 0;
  #reconnects = 0;
  #gaps = 0;
  #watchdogRestarts = 0;

  /**
   * Starts following.
   *
   * @param deps The engine's connection factory, keys and options.
   * @param sink Where events go.
   */
  constructor(deps: FollowerDeps, sink: FeedSink) {
    this.#deps = deps;
    this.#sink = sink;
    this.#stop = new Promise((resolve) => this.#resolveStop = resolve);
    this.started = new Promise((resolve) => this.#resolveStarted = resolve);
    this.finished = this.#run();
    this.#armWatchdog();
  }

  /** The feed's state. */
  get stats(): FeedStats {
    const head = this.#head === null ? null : Math.max(this.#head, this.#cursor);
    const position = this.#position === null ? null : Number(this.#position);
    return {
      connected: this.#connected,
      position: this.#position,
      head: head === null ? null : String(head),
      lag: head === null || position === null ? 0 : Math.max(0, head - position),
      delivered: this.#delivered,
      reconnects: this.#reconnects,
      gaps: this.#gaps,
      watchdogRestarts: this.#watchdogRestarts,
    };
  }

  /** Stops reading and closes the connection. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#resolveStop();
    this.#resolveStarted();
    clearTimeout(this.#watchdog);
    this.#client?.disconnect();
  }

  #log(
    level: "debug" | "info" | "warn" | "error",
    message: string,
    fields?: Record<string, unknown>,
  ) {
    this.#deps.options.logger?.(level, message, fields);
  }

  async #run(): Promise<void> {
    const { backoffMinMs, backoffMaxMs } = this.#deps.options;
    let attempt = 0;
    while (!this.#stopped) {
      let client: RedisClient;
      try {
        client = await this.#deps.open();
      } catch (err) {
        this.#log("warn", "feed: cannot connect", { error: String(err), attempt });
        await this.#sleep(backoffDelay(attempt++, backoffMinMs, backoffMaxMs));
        continue;
      }
      if (this.#stopped) {
        client.disconnect();
        break;
      }
      this.#client = client;
      try {
        await this.#sync(client);
        if (this.#everConnected) this.#reconnects++;
        this.#everConnected = true;
        this.#connected = true;
        this.#resolveStarted();
        this.#lastProgress = Date.now();
        attempt = 0;
        this.#log("info", "feed: reading", { cursor: this.#cursor, born: this.#born });
        await this.#read(client);
      } catch (err) {
        if (!this.#stopped) this.#log("warn", "feed: connection lost", { error: String(err) });
      } finally {
        this.#connected = false;
        this.#client = undefined;
        client.disconnect();
      }
      if (this.#restartNow) {
        this.#restartNow = false;
        attempt = 0;
      } else if (!this.#stopped) {
        await this.#sleep(backoffDelay(attempt++, backoffMinMs, backoffMaxMs));
      }
    }
  }

  /** Resolves the starting position, or checks after a reconnection that the dataset is the same. */
  async #sync(client: RedisClient): Promise<void> {
    const keys = this.#deps.keys;
    // This connection has no command timeout (its reads block): bound this step here.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const [born, counter] = await Promise.race([
      client.mget(keys.born, keys.counter),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("no answer to the position query")),
          this.#deps.options.commandTimeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    if (!this.#everConnected) {
      // "$" resolved to a concrete id: the counter and the log's last entry move together.
      this.#born = born;
      this.#cursor = counter === null ? 0 : Number(counter);
      this.#expect = counter === null || born === null ? null : this.#cursor + 1;
      this.#head = this.#cursor;
      // What was appended before we follow is not ours to deliver: we start "at" it.
      if (counter !== null) this.#position = counter;
      return;
    }
    if (born === this.#born) return;
    if (this.#born !== null) {
      this.#gap("epoch");
      this.#expect = null;
    } else {
      // A dataset was created while we were away; its first id is `born`.
      this.#expect = born === null ? null : Number(born);
    }
    this.#born = born;
    this.#cursor = 0;
  }

  async #read(client: RedisClient): Promise<void> {
    const { batchSize, blockMs } = this.#deps.options;
    const log = this.#deps.keys.log;
    while (!this.#stopped && !this.#restartNow) {
      const reply = await client.xreadBuffer(
        "COUNT",
        batchSize,
        "BLOCK",
        blockMs,
        "STREAMS",
        log,
        `${this.#cursor}-0`,
      ) as [Uint8Array, RawEntry[]][] | null;
      if (reply === null || reply.length === 0) continue;
      this.#lastProgress = Date.now();
      let batch: FeedEvent[] = [];
      for (const [rawId, fields] of reply[0][1]) {
        const id = entryId(rawId);
        let key = "";
        let born: string | null = null;
        let bytes = new Uint8Array(0);
        for (let i = 0; i + 1 < fields.length; i += 2) {
          const name = latin1.decode(fields[i]);
          if (name === "k") key = utf8.decode(fields[i + 1]);
          else if (name === "e") born = latin1.decode(fields[i + 1]);
          else if (name === "b") bytes = new Uint8Array(fields[i + 1]);
        }
        let reason: FeedGapReason | undefined;
        if (born !== this.#born) {
          if (this.#born !== null) reason = "epoch";
          this.#born = born;
          this.#expect = born === null ? null : Number(born);
        }
        if (reason === undefined && this.#expect !== null && id !== this.#expect) {
          reason = "trimmed";
        }
        if (reason !== undefined) {
          await this.#offer(batch);
          batch = [];
          if (this.#stopped) return;
          this.#gap(reason);
        }
        this.#cursor = id;
        this.#expect = id + 1;
        batch.push({ key, id: String(id), bytes });
      }
      if (this.#head === null || this.#head < this.#cursor) this.#head = this.#cursor;
      await this.#offer(batch);
    }
  }

  /** Offers events until the sink took them all, waiting for room in between. */
  async #offer(events: FeedEvent[]): Promise<void> {
    let i = 0;
    while (i < events.length && !this.#stopped) {
      const rest = i === 0 ? events : events.slice(i);
      let n: number;
      try {
        n = this.#sink.deliver(rest);
      } catch (err) {
        // A throwing sink is a bug of the core: report it, do not wedge the feed on it.
        this.#log("error", "feed: sink.deliver threw; events dropped", {
          error: String(err),
          count: rest.length,
        });
        n = rest.length;
      }
      n = Math.max(0, Math.min(rest.length, Math.trunc(n) || 0));
      if (n > 0) {
        i += n;
        this.#delivered += n;
        this.#position = events[i - 1].id;
      }
      if (i < events.length) {
        this.#paused = true;
        try {
          await Promise.race([this.#sink.whenRoom(), this.#stop]);
        } finally {
          this.#paused = false;
          this.#lastProgress = Date.now();
        }
      }
    }
  }

  #gap(reason: FeedGapReason): void {
    this.#gaps++;
    this.#log("warn", "feed: events lost", { reason, afterId: this.#position });
    try {
      this.#sink.gap({ afterId: this.#position, reason });
    } catch (err) {
      this.#log("error", "feed: sink.gap threw", { error: String(err) });
    }
  }

  #armWatchdog(): void {
    if (this.#stopped) return;
    this.#watchdog = setTimeout(async () => {
      await this.#check();
      this.#armWatchdog();
    }, this.#deps.options.watchdogIntervalMs);
  }

  async #check(): Promise<void> {
    let head: number | null;
    try {
      head = await this.#deps.readHead();
    } catch {
      return; // The engine's connection is down too; the feed's own errors drive its reconnection.
    }
    if (this.#stopped) return;
    this.#head = head;
    const now = Date.now();
    const client = this.#client;
    // Nothing to read: no counter yet (an empty Redis), or the feed is at the counter.
    const behind = head !== null && head > this.#cursor;
    if (this.#paused || client === undefined || !this.#connected || !behind) {
      this.#lastProgress = now;
      return;
    }
    if (now - this.#lastProgress < this.#deps.options.watchdogStallMs) return;
    this.#watchdogRestarts++;
    this.#log("warn", "feed: watchdog restarts the connection", {
      head,
      cursor: this.#cursor,
    });
    this.#lastProgress = now;
    this.#restartNow = true;
    client.disconnect();
  }

  async #sleep(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
      this.#stop,
    ]);
    clearTimeout(timer);
  }
}
