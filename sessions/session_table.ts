/**
 * The session table: a fixed-capacity map of open event streams, in the
 * manner of ESP-IDF's `esp_http_server` (numeric ids, a context slot with a
 * free callback, `triggerClose`, lookup and iteration).
 *
 * @module
 */

import {
  type CloseReason,
  type GapNotice,
  Session,
  type SessionLimits,
  type SessionSocket,
  type SlowConsumerPolicy,
} from "./session.ts";

/** Thrown by {@linkcode SessionTable.open} when every slot is taken. */
export class SessionTableFullError extends Error {
  /** The table's capacity. */
  readonly capacity: number;
  /**
   * Creates the error.
   *
   * @param capacity The table's capacity.
   */
  constructor(capacity: number) {
    super(`session table is full: ${capacity} of ${capacity} sessions open`);
    this.name = "SessionTableFullError";
    this.capacity = capacity;
  }
}

/** Options of a {@linkcode SessionTable}. */
export interface SessionTableOptions {
  /**
   * Most bytes queued for one socket before the slow-consumer policy applies.
   * @default {1048576}
   */
  maxPendingBytes?: number;
  /**
   * What to do with a session over its pending-bytes budget.
   * @default {"disconnect"}
   */
  slowConsumer?: SlowConsumerPolicy;
  /** Under `drop`: builds the notice a session writes once it caught up after skipping events. */
  gapNotice?: GapNotice;
  /**
   * Called after each session ends (after its free callback), with what the
   * free callback threw, if it threw: the close completes either way.
   */
  onClose?: (session: Session, reason: CloseReason, error?: unknown) => void;
}

/** What is known of a stream when its session opens. */
export interface SessionInfo {
  /** Peer address as `host:port`. */
  remoteAddr: string;
  /** Channels the session receives. */
  channels: readonly string[];
  /** The last event id the client reported. */
  lastEventId?: string;
}

/** Counters of a {@linkcode SessionTable}. */
export interface SessionTableStats {
  /** Sessions open now. */
  readonly open: number;
  /** Capacity. */
  readonly capacity: number;
  /** Sessions opened since start. */
  readonly opened: number;
  /** Opens refused because the table was full. */
  readonly rejected: number;
  /** Sessions ended, by reason. */
  readonly closed: Readonly<Record<CloseReason, number>>;
}

/** Defaults of the session table. */
export const DEFAULT_SESSION_TABLE = {
  maxPendingBytes: 1024 * 1024,
  slowConsumer: "disconnect" as SlowConsumerPolicy,
} as const;

/**
 * A fixed-capacity table of sessions keyed by numeric id.
 *
 * @example
 * ```ts
 * import { SessionTable } from "./session_table.ts";
 * const table = new SessionTable(8);
 * // const session = table.open(conn, { remoteAddr: "127.0.0.1:5000", channels: ["a"] });
 * // session.setContext({ user: "x" }, (ctx, reason) => console.log("freed", reason));
 * // table.triggerClose(session.id);
 * ```
 */
export class SessionTable {
  readonly #sessions = new Map<number, Session>();
  readonly #capacity: number;
  readonly #limits: SessionLimits;
  readonly #onClose:
    | ((session: Session, reason: CloseReason, error?: unknown) => void)
    | undefined;
  #nextId = 1;
  #opened = 0;
  #rejected = 0;
  #reserved = 0;
  readonly #closed: Record<CloseReason, number> = {
    "client-closed": 0,
    "write-error": 0,
    "slow-consumer": 0,
    "write-timeout": 0,
    "shutdown": 0,
    "closed": 0,
  };

  /**
   * Creates an empty table.
   *
   * @param capacity Most sessions open at once, a positive integer.
   * @param options Budget, slow-consumer policy and close hook.
   * @throws {RangeError} When an option is out of range.
   */
  constructor(capacity: number, options: SessionTableOptions = {}) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`maxClients must be a positive integer: received ${capacity}`);
    }
    const maxPendingBytes = options.maxPendingBytes ?? DEFAULT_SESSION_TABLE.maxPendingBytes;
    if (!Number.isSafeInteger(maxPendingBytes) || maxPendingBytes < 1) {
      throw new RangeError(
        `maxPendingBytes must be a positive integer: received ${maxPendingBytes}`,
      );
    }
    const slowConsumer = options.slowConsumer ?? DEFAULT_SESSION_TABLE.slowConsumer;
    if (slowConsumer !== "disconnect" && slowConsumer !== "drop") {
      throw new RangeError(
        `slowConsumer must be "disconnect" or "drop": received ${JSON.stringify(slowConsumer)}`,
      );
    }
    this.#capacity = capacity;
    this.#limits = { maxPendingBytes, slowConsumer, gapNotice: options.gapNotice };
    this.#onClose = options.onClose;
  }

  /** Most sessions open at once. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Sessions open now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Whether a new session would be refused. */
  get full(): boolean {
    return this.#sessions.size + this.#reserved >= this.#capacity;
  }

  /** Counters since construction. */
  get stats(): SessionTableStats {
    return {
      open: this.#sessions.size,
      capacity: this.#capacity,
      opened: this.#opened,
      rejected: this.#rejected,
      closed: { ...this.#closed },
    };
  }

  /**
   * Holds a slot for a stream whose request is still being authorized, so
   * that the capacity check and the open are one decision.
   *
   * @returns A function that releases the slot; `undefined` when full (counted as rejected).
   */
  reserve(): (() => void) | undefined {
    if (this.full) {
      this.#rejected++;
      return undefined;
    }
    this.#reserved++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.#reserved--;
      }
    };
  }

  /**
   * Opens a session for a socket.
   *
   * @param socket The socket the stream is written to.
   * @param info Peer address, channels and last event id.
   * @param release A slot reservation from {@linkcode reserve} to use, if any.
   * @returns The new session.
   * @throws {SessionTableFullError} When the table is full.
   */
  open(socket: SessionSocket, info: SessionInfo, release?: () => void): Session {
    if (release) {
      release();
    } else if (this.full) {
      this.#rejected++;
      throw new SessionTableFullError(this.#capacity);
    }
    const id = this.#nextId++;
    const session = new Session(id, socket, info, this.#limits, this.#remove);
    this.#sessions.set(id, session);
    this.#opened++;
    return session;
  }

  /**
   * Looks a session up by id.
   *
   * @param id The session id.
   * @returns The session, or `undefined` when it is not open.
   */
  get(id: number): Session | undefined {
    return this.#sessions.get(id);
  }

  /**
   * Closes a session by id, like `httpd_sess_trigger_close`.
   *
   * @param id The session id.
   * @param reason The close reason.
   * @returns `false` when no such session is open.
   */
  triggerClose(id: number, reason: CloseReason = "closed"): boolean {
    const session = this.#sessions.get(id);
    if (session === undefined) return false;
    session.close(reason);
    return true;
  }

  /**
   * Closes every open session.
   *
   * @param reason The close reason.
   */
  closeAll(reason: CloseReason): void {
    for (const session of [...this.#sessions.values()]) session.close(reason);
  }

  /** Iterates the open sessions. */
  [Symbol.iterator](): IterableIterator<Session> {
    return this.#sessions.values();
  }

  #dirty: Session[] = [];
  #hold = (session: Session): void => {
    this.#dirty.push(session);
  };

  /**
   * Holds back writes: until {@linkcode uncork}, a session with nothing in
   * flight queues what it is given instead of writing it. A fan-out pass
   * corks the table, hands out its events, and uncorks, so each socket gets
   * one write with all of them (fewer, larger writes: the lever that counts).
   */
  cork(): void {
    this.#limits.corked = this.#hold;
  }

  /** Starts one write per session that was given bytes while corked. */
  uncork(): void {
    this.#limits.corked = undefined;
    const dirty = this.#dirty;
    if (dirty.length === 0) return;
    this.#dirty = [];
    for (const session of dirty) session.uncork();
  }

  #remove = (session: Session, reason: CloseReason, error?: unknown): void => {
    if (!this.#sessions.delete(session.id)) return;
    this.#closed[reason]++;
    this.#onClose?.(session, reason, error);
  };
}
