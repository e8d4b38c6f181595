/**
 * A durable {@linkcode HistoryStore} in one SQLite file (`node:sqlite`,
 * write-ahead log). Every `append` is committed before it returns, so an
 * event the server acknowledged survives `kill -9`; after a restart the
 * retained events replay as before and new ids continue past the old ones.
 * Retention limits (count and bytes per channel) apply on disk.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { checkHistoryLimits, mergeBySeq, type SeqEvent } from "./_history_common.ts";
import { clockFloorId, EventIdSequence, withEventId } from "./event_ids.ts";
import {
  DuplicateEventIdError,
  type HistoryInput,
  type HistoryReplay,
  type HistoryStore,
  type SinceOptions,
  type StoredEvent,
} from "./history.ts";
import {
  DEFAULT_SQLITE_HISTORY_OPTIONS,
  type SqliteHistoryOptions,
} from "./sqlite_history_options.ts";

export {
  DEFAULT_SQLITE_HISTORY_OPTIONS,
  type SqliteHistoryOptions,
  type SqliteSync,
} from "./sqlite_history_options.ts";

/** SQLite's extended result code for a UNIQUE constraint violation. */
const SQLITE_CONSTRAINT_UNIQUE = 2067;

/** How far ahead `meta.max_id` is written, so that it is rewritten once per this many ids. */
const ID_RESERVE = 1024;

/** Version of the file layout, in `PRAGMA user_version`. */
const SCHEMA_VERSION = 1;

// `seq` is the rowid, so it only grows: the newest event of a channel is never
// dropped, hence the largest rowid is never deleted and never reused.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  channel TEXT NOT NULL,
  id TEXT NOT NULL,
  bytes BLOB NOT NULL,
  UNIQUE (channel, id)
);
CREATE INDEX IF NOT EXISTS events_by_channel ON events (channel, seq);
CREATE TABLE IF NOT EXISTS channels (
  channel TEXT PRIMARY KEY,
  evicted_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** A channel's retained events as `(seq, size)` pairs, oldest first, mirrored in memory. */
class ChannelIndex {
  seqs: number[] = [];
  sizes: number[] = [];
  head = 0;
  bytes = 0;
  evictedSeq = 0;
  firstId: string | null = null;
  lastId: string | null = null;

  get size(): number {
    return this.seqs.length - this.head;
  }

  push(seq: number, size: number): void {
    this.seqs.push(seq);
    this.sizes.push(size);
    this.bytes += size;
  }

  compact(): void {
    if (this.head >= 1024 && this.head * 2 >= this.seqs.length) {
      this.seqs = this.seqs.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }
}

interface Row {
  seq: number;
  channel: string;
  id: string;
  bytes: Uint8Array;
}

/**
 * History in a SQLite file. Synchronous: `append` returns once the event is
 * committed, which is what lets the server acknowledge it.
 *
 * The file holds one table of events (`seq`, `channel`, `id`, `bytes`), the
 * newest dropped `seq` per channel (to tell a gap from a quiet channel after
 * a restart) and the highest id handed out. Open one file from one process
 * only: the database is locked exclusively while open.
 *
 * @example
 * ```ts
 * import { SqliteHistory } from "./sqlite_history.ts";
 * using history = new SqliteHistory("/tmp/sluice-history.db", { maxEvents: 1000 });
 * const { id } = history.append("news", { bytes: new TextEncoder().encode("data: hi\n\n") });
 * history.since(["news"], id); // nothing newer yet
 * ```
 */
export class SqliteHistory implements HistoryStore, Disposable {
  /** The database file. */
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #maxEvents: number;
  readonly #maxBytes: number;
  readonly #ids: EventIdSequence;
  readonly #channels = new Map<string, ChannelIndex>();
  readonly #insert: StatementSync;
  readonly #evict: StatementSync;
  readonly #setEvicted: StatementSync;
  readonly #setMaxId: StatementSync;
  /** Ids up to this one are covered by `meta.max_id` (written in steps, not per event). */
  #reservedId = -1;
  readonly #findSeq: StatementSync;
  readonly #after: StatementSync;
  readonly #idAt: StatementSync;
  readonly #newest: StatementSync;
  #closed = false;

  /**
   * Opens (or creates) the file and loads the index of what it retains.
   *
   * @param path The database file.
   * @param options Retention limits, first id and `synchronous`.
   * @throws {RangeError} When an option is out of range.
   * @throws {Error} When the file cannot be opened (permissions, locked by another process).
   */
  constructor(path: string, options: SqliteHistoryOptions = {}) {
    const d = DEFAULT_SQLITE_HISTORY_OPTIONS;
    const limits = checkHistoryLimits(
      options.maxEvents ?? d.maxEvents,
      options.maxBytes ?? d.maxBytes,
    );
    const sync = options.synchronous ?? d.synchronous;
    if (sync !== "normal" && sync !== "full") {
      throw new RangeError(
        `synchronous must be "normal" or "full": received ${JSON.stringify(sync)}`,
      );
    }
    this.path = path;
    this.#maxEvents = limits.maxEvents;
    this.#maxBytes = limits.maxBytes;
    const db = this.#db = new DatabaseSync(path);
    try {
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${sync.toUpperCase()}`);
      const version = (db.prepare("PRAGMA user_version").get() as { user_version: number })
        .user_version;
      if (version !== 0 && version !== SCHEMA_VERSION) {
        throw new Error(`${path}: unknown history file version ${version}`);
      }
      db.exec(SCHEMA);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      this.#insert = db.prepare("INSERT INTO events (channel, id, bytes) VALUES (?, ?, ?)");
      this.#evict = db.prepare("DELETE FROM events WHERE channel = ? AND seq <= ?");
      this.#setEvicted = db.prepare(
        "INSERT INTO channels (channel, evicted_seq) VALUES (?, ?) " +
          "ON CONFLICT (channel) DO UPDATE SET evicted_seq = excluded.evicted_seq",
      );
      this.#setMaxId = db.prepare(
        "INSERT INTO meta (key, value) VALUES ('max_id', ?) " +
          "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
      );
      this.#findSeq = db.prepare("SELECT seq FROM events WHERE channel = ? AND id = ?");
      this.#after = db.prepare(
        "SELECT seq, channel, id, bytes FROM events WHERE channel = ? AND seq > ? ORDER BY seq",
      );
      this.#idAt = db.prepare("SELECT id FROM events WHERE seq = ?");
      this.#newest = db.prepare(
        "SELECT * FROM (SELECT seq, channel, id, bytes FROM events WHERE channel = ? " +
          "ORDER BY seq DESC LIMIT ?) ORDER BY seq",
      );
      this.#ids = new EventIdSequence(options.firstId ?? clockFloorId());
      this.#load();
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Reads the index of retained events, the dropped positions and the id sequence. */
  #load(): void {
    const rows = this.#db.prepare(
      "SELECT seq, channel, id, length(bytes) AS size FROM events ORDER BY seq",
    ).all() as unknown as { seq: number; channel: string; id: string; size: number }[];
    for (const r of rows) {
      const ch = this.#index(r.channel);
      ch.push(r.seq, r.size);
      ch.firstId ??= r.id;
      ch.lastId = r.id;
      this.#ids.observe(r.id);
    }
    const evicted = this.#db.prepare("SELECT channel, evicted_seq FROM channels")
      .all() as unknown as {
        channel: string;
        evicted_seq: number;
      }[];
    for (const r of evicted) this.#index(r.channel).evictedSeq = r.evicted_seq;
    const maxId = this.#db.prepare("SELECT value FROM meta WHERE key = 'max_id'").get() as
      | { value: number }
      | undefined;
    if (maxId !== undefined) {
      this.#ids.observe(String(maxId.value));
      this.#reservedId = maxId.value;
    }
  }

  #index(channel: string): ChannelIndex {
    let ch = this.#channels.get(channel);
    if (ch === undefined) this.#channels.set(channel, ch = new ChannelIndex());
    return ch;
  }

  /** Number of events retained, over all channels. */
  get size(): number {
    let n = 0;
    for (const ch of this.#channels.values()) n += ch.size;
    return n;
  }

  /**
   * Records an event and commits it; see {@linkcode HistoryStore.append}.
   * Dropping old events, when the limits require it, is part of the same
   * transaction.
   *
   * @param channel The channel.
   * @param event The encoded event and the publisher's id, if any.
   * @returns The id and the bytes to send.
   * @throws {DuplicateEventIdError} When `event.id` is already retained in the channel.
   * @throws {Error} When the store is closed or SQLite fails (disk full...).
   */
  append(channel: string, event: HistoryInput): StoredEvent {
    if (this.#closed) throw new Error("history store is closed");
    const ch = this.#index(channel);
    let id = event.id;
    let bytes = event.bytes;
    if (id === undefined) {
      id = this.#ids.next();
      bytes = withEventId(id, bytes);
    }
    // How many of the oldest events go, once this one is in.
    let count = ch.size + 1;
    let total = ch.bytes + bytes.length;
    let evict = 0;
    while (count > this.#maxEvents || (total > this.#maxBytes && count > 1)) {
      total -= ch.sizes[ch.head + evict];
      evict++;
      count--;
    }
    let seq: number;
    try {
      if (evict === 0) {
        seq = Number(this.#insert.run(channel, id, bytes).lastInsertRowid);
      } else {
        const upTo = ch.seqs[ch.head + evict - 1];
        this.#db.exec("BEGIN IMMEDIATE");
        try {
          seq = Number(this.#insert.run(channel, id, bytes).lastInsertRowid);
          this.#evict.run(channel, upTo);
          this.#setEvicted.run(channel, upTo);
          // Dropped rows take their ids with them: meta.max_id stays above
          // every id handed out, reserved in steps of ID_RESERVE.
          if (this.#ids.peek - 1 > this.#reservedId) {
            this.#setMaxId.run(this.#ids.peek - 1 + ID_RESERVE);
          }
          this.#db.exec("COMMIT");
        } catch (err) {
          this.#db.exec("ROLLBACK");
          throw err;
        }
        if (this.#ids.peek - 1 > this.#reservedId) {
          this.#reservedId = this.#ids.peek - 1 + ID_RESERVE;
        }
        ch.head += evict;
        ch.evictedSeq = upTo;
        ch.bytes -= ch.sizes.slice(ch.head - evict, ch.head).reduce((a, b) => a + b, 0);
        ch.compact();
        ch.firstId = null; // looked up lazily
      }
    } catch (err) {
      if ((err as { errcode?: number }).errcode === SQLITE_CONSTRAINT_UNIQUE) {
        throw new DuplicateEventIdError(channel, id);
      }
      throw err;
    }
    if (event.id !== undefined) this.#ids.observe(id);
    ch.push(seq, bytes.length);
    ch.lastId = id;
    if (ch.size === 1) ch.firstId = id;
    return { id, bytes };
  }

  /**
   * The retained events after `lastId`; see {@linkcode HistoryStore.since}.
   *
   * @param channels The channels of a stream.
   * @param lastId The client's `Last-Event-ID`.
   * @param options `last`: the newest events of each channel, without `lastId`.
   * @returns The events, whether some are missing, and the bounds.
   * @throws {Error} When the store is closed.
   */
  since(channels: readonly string[], lastId?: string, options: SinceOptions = {}): HistoryReplay {
    if (this.#closed) throw new Error("history store is closed");
    const names = [...new Set(channels)].filter((c) => this.#channels.has(c));
    let earliest: { seq: number; ch: ChannelIndex } | undefined;
    let latest: { seq: number; ch: ChannelIndex } | undefined;
    for (const name of names) {
      const ch = this.#channels.get(name)!;
      if (ch.size === 0) continue;
      const first = ch.seqs[ch.head];
      const last = ch.seqs[ch.seqs.length - 1];
      if (earliest === undefined || first < earliest.seq) earliest = { seq: first, ch };
      if (latest === undefined || last > latest.seq) latest = { seq: last, ch };
    }
    const bounds = {
      earliest: earliest === undefined ? null : this.#firstIdOf(earliest.ch),
      latest: latest?.ch.lastId ?? null,
    };
    if (lastId === undefined) {
      const last = options.last ?? 0;
      const events: SeqEvent[] = last > 0
        ? mergeBySeq(names.map((n) => this.#newest.all(n, last) as unknown as Row[]))
        : [];
      return { events, gap: false, ...bounds };
    }
    let from = -1;
    for (const name of names) {
      const row = this.#findSeq.get(name, lastId) as { seq: number } | undefined;
      if (row !== undefined && row.seq > from) from = row.seq;
    }
    const gap = from < 0 || names.some((n) => this.#channels.get(n)!.evictedSeq > from);
    const lists = names.map((n) => this.#after.all(n, Math.max(from, 0)) as unknown as Row[]);
    const events: SeqEvent[] = mergeBySeq(lists);
    return { events, gap, ...bounds };
  }

  #firstIdOf(ch: ChannelIndex): string | null {
    if (ch.size === 0) return null;
    if (ch.firstId === null) {
      const row = this.#idAt.get(ch.seqs[ch.head]) as { id: string } | undefined;
      ch.firstId = row?.id ?? null;
    }
    return ch.firstId;
  }

  /**
   * The channels with retained events.
   *
   * @returns Their names.
   */
  channels(): string[] {
    return [...this.#channels].filter(([, ch]) => ch.size > 0).map(([name]) => name);
  }

  /** Closes the database (checkpointing the log). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
