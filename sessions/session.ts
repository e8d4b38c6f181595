/**
 * One open event stream: its socket, its counters, its context slot and the
 * write path that keeps at most one write in flight and coalesces what
 * arrives meanwhile into one bounded backlog.
 *
 * @module
 */

/**
 * Why a session ended. Given to free callbacks, close hooks and logs.
 * `"client-closed"`: the peer went away; `"write-error"`: a send failed;
 * `"slow-consumer"`: the pending-bytes budget was exceeded;
 * `"write-timeout"`: a write stayed in flight past the server's
 * `writeTimeout`; `"shutdown"`: the server is stopping; `"closed"`: `close()`
 * by the application (or a stream whose replay could not be read).
 * Requests refused before a session exists (auth, full table) never get a
 * session, so they have no close reason: they are counted as HTTP errors.
 */
export type CloseReason =
  | "client-closed"
  | "write-error"
  | "slow-consumer"
  | "write-timeout"
  | "shutdown"
  | "closed";

/** The part of a socket a session needs. `Deno.Conn` satisfies it. */
export interface SessionSocket {
  /** Writes some bytes; resolves with how many were written. */
  write(bytes: Uint8Array): Promise<number>;
  /** Closes the socket; may throw when already closed. */
  close(): void;
}

/** What to do when a session's pending bytes would exceed its budget. */
export type SlowConsumerPolicy = "disconnect" | "drop";

/**
 * Builds the notice written when a session under the `drop` policy has caught
 * up after skipping events (the server sends a `sluice.gap` event).
 *
 * @param session The session.
 * @param lastEventId Id of the last event written before the skipped ones, if known.
 * @param skipped How many events were skipped.
 * @returns The bytes to write, or `undefined` to write nothing.
 */
export type GapNotice = (
  session: Session,
  lastEventId: string | undefined,
  skipped: number,
) => Uint8Array | undefined;

/** Per-session limits, fixed when the session opens. */
export interface SessionLimits {
  /** Most bytes queued for this socket (in flight plus backlog). */
  maxPendingBytes: number;
  /**
   * Over budget: close the session, or skip events and keep it. Under `drop`,
   * once an event is skipped every later one is skipped too until the socket
   * has caught up (nothing pending); then `gapNotice` is written, so the hole
   * is one contiguous run of events, announced right where it is.
   */
  slowConsumer: SlowConsumerPolicy;
  /** Under `drop`: the notice written once the session has caught up. */
  gapNotice?: GapNotice;
  /**
   * Set by the table while it is corked: a session with nothing in flight
   * does not start a write but hands itself to this callback, and the table
   * starts one write per session (with everything queued) when it uncorks.
   */
  corked?: (session: Session) => void;
}

/** Called exactly once when a session ends, with its context and the reason. */
export type FreeContext = (context: unknown, reason: CloseReason) => void;

/**
 * A session of the {@linkcode SessionTable}: one socket carrying one event stream.
 * Create sessions with `SessionTable.open()`.
 */
export class Session {
  /** Numeric session id, unique within its table. */
  readonly id: number;
  /** Peer address as `host:port`. */
  readonly remoteAddr: string;
  /** Channels this session receives. */
  readonly channels: readonly string[];
  /** When the session opened (ms since the epoch). */
  readonly connectedAt: number;
  /** The last event id the client reported (`Last-Event-ID`), or `undefined`. */
  lastEventId: string | undefined;
  /** Events (and other blocks) accepted for this socket. */
  eventsSent = 0;
  /** Bytes written to the socket. */
  bytesSent = 0;
  /** Bytes accepted but not yet written (in flight plus backlog). */
  pendingBytes = 0;
  /**
   * Events skipped under the `drop` policy in the current hole; back to `0`
   * once the socket has caught up and the gap notice is written.
   */
  droppedEvents = 0;
  /** Total events skipped under the `drop` policy. */
  droppedTotal = 0;
  /** Id of the last event accepted for this socket (replayed or live), if known. */
  lastSentId: string | undefined;
  /**
   * When the socket write now in flight started (ms since the epoch), or
   * `undefined` when nothing is being written. The server's write deadline
   * closes sessions whose write has been stuck too long.
   */
  writeStartedAt: number | undefined;
  /** Application context, freed by the free callback. */
  context: unknown = undefined;
  /** Why the session ended, once it has. */
  closeReason: CloseReason | undefined;
  /** The error of the failed write that ended the session (`"write-error"`), for the logs. */
  closeError: unknown = undefined;

  #socket: SessionSocket;
  #limits: SessionLimits;
  #freeContext: FreeContext | undefined;
  #onClosed: (session: Session, reason: CloseReason, error?: unknown) => void;
  /** A write is in flight, or held back by a corked table. */
  #writing = false;
  #held = false;
  /** The first buffer queued behind the write in flight (most passes queue one). */
  #queued: Uint8Array | undefined;
  /** Buffers queued after {@linkcode #queued}, if any. */
  #queuedMore: Uint8Array[] | undefined;
  #queuedBytes = 0;
  /** The buffer being written, and how much of it has been. */
  #inFlight: Uint8Array | undefined;
  #offset = 0;
  #idle: (() => void)[] | undefined;

  /** @internal Use `SessionTable.open()`. */
  constructor(
    id: number,
    socket: SessionSocket,
    info: { remoteAddr: string; channels: readonly string[]; lastEventId?: string },
    limits: SessionLimits,
    onClosed: (session: Session, reason: CloseReason, error?: unknown) => void,
  ) {
    this.id = id;
    this.#socket = socket;
    this.remoteAddr = info.remoteAddr;
    this.channels = info.channels;
    this.lastEventId = info.lastEventId;
    this.connectedAt = Date.now();
    this.#limits = limits;
    this.#onClosed = onClosed;
  }

  /** Whether the session has ended. */
  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /**
   * Sets the context slot and the callback that frees it. The callback runs
   * exactly once, when the session ends for any reason.
   *
   * @param context Anything the application wants to keep with the session.
   * @param free Called with the context and the close reason.
   */
  setContext(context: unknown, free?: FreeContext): void {
    this.context = context;
    this.#freeContext = free;
  }

  /**
   * Queues bytes for this socket without waiting. At most one write is in
   * flight; bytes that arrive meanwhile are appended to the backlog and
   * written together when it settles.
   *
   * @param bytes The bytes; they are not copied, so do not reuse the buffer.
   * @param eventId The id of the (last) event in `bytes`, if any; kept as
   * {@linkcode lastSentId} when the bytes are accepted.
   * @param events How many events `bytes` hold (counted in `eventsSent`).
   * @returns `false` when the session is closed or the bytes were refused by
   * the slow-consumer policy.
   */
  write(bytes: Uint8Array, eventId?: string, events = 1): boolean {
    if (this.closeReason !== undefined) return false;
    // The budget bounds every byte queued for this socket, held by a corked
    // table or waiting behind a write in flight: a burst handed out in one
    // fan-out pass counts too, so size the budget above the largest burst.
    if (
      this.droppedEvents > 0 ||
      (this.pendingBytes > 0 && this.pendingBytes + bytes.length > this.#limits.maxPendingBytes)
    ) {
      if (this.#limits.slowConsumer === "disconnect") {
        this.close("slow-consumer");
      } else {
        this.droppedEvents += events;
        this.droppedTotal += events;
      }
      return false;
    }
    if (eventId !== undefined) this.lastSentId = eventId;
    this.eventsSent += events;
    this.pendingBytes += bytes.length;
    if (this.#writing) {
      this.#enqueue(bytes);
    } else if (this.#limits.corked !== undefined) {
      // The table is corked (a fan-out pass is running): start nothing yet,
      // so that every event of the pass goes out in this session's one write.
      this.#writing = true;
      this.#held = true;
      this.#enqueue(bytes);
      this.#limits.corked(this);
    } else {
      this.#writing = true;
      this.#start(bytes);
    }
    return true;
  }

  /** @internal Starts the write the table held back while corked. */
  uncork(): void {
    if (!this.#held) return;
    this.#held = false;
    if (this.closeReason !== undefined) return;
    this.#start(this.#takeQueued());
  }

  /**
   * Resolves when nothing is pending (or the session is closed).
   *
   * @returns A promise settled once the backlog is written.
   */
  idle(): Promise<void> {
    if (!this.#writing || this.closed) return Promise.resolve();
    return new Promise((resolve) => (this.#idle ??= []).push(resolve));
  }

  /**
   * Ends the session: closes the socket, runs the free callback once and
   * removes the session from its table. Idempotent. Never throws: an error
   * thrown by the free callback is handed to the table's `onClose` hook.
   *
   * Order, like `httpd_sess_delete`: (1) the socket is closed; (2) the free
   * callback runs with `context` still set; (3) `context` is cleared and the
   * session leaves its table, whose `onClose` hook runs (in a server, that
   * hook detaches the stream from its source, so the source's `onDisconnect`
   * callbacks run last and see `context` as `undefined`).
   *
   * @param reason Why the session ends.
   */
  close(reason: CloseReason = "closed"): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.#queued = this.#queuedMore = undefined;
    this.#queuedBytes = 0;
    try {
      this.#socket.close();
    } catch {
      // Already closed by the peer or the runtime: nothing left to release.
    }
    this.#wakeIdle();
    const free = this.#freeContext;
    this.#freeContext = undefined;
    let error: unknown;
    try {
      free?.(this.context, reason);
    } catch (err) {
      // An application callback must not stop the close (nor escape from a
      // failed write): the slot is freed anyway and the error is handed on.
      error = err;
    }
    this.context = undefined;
    this.#onClosed(this, reason, error);
  }

  // The write path is callbacks, not an async loop: the async function's frame
  // and awaits were about a fifth of the garbage per socket write (measured
  // with V8's sampling heap profiler during a 1 000-client fan-out; Deno's
  // own write op makes ~1 KB per call), and collections show in the latency tail.

  /** Starts writing `buf` (nothing else is in flight). */
  #start(buf: Uint8Array): void {
    this.#inFlight = buf;
    this.#offset = 0;
    this.#send();
  }

  /** Writes what is left of the buffer in flight; partial writes come back here. */
  #send(): void {
    const buf = this.#inFlight!;
    this.writeStartedAt = Date.now();
    let written: Promise<number>;
    try {
      written = this.#socket.write(this.#offset === 0 ? buf : buf.subarray(this.#offset));
    } catch (err) {
      this.#failed(err);
      return;
    }
    written.then((n) => this.#written(n), (err) => this.#failed(err));
  }

  #written(n: number): void {
    const buf = this.#inFlight!;
    this.#offset += n;
    if (this.#offset < buf.length) {
      if (this.closeReason === undefined) {
        this.#send();
      } else {
        this.#settle();
      }
      return;
    }
    this.bytesSent += buf.length;
    this.pendingBytes -= buf.length;
    if (this.closeReason === undefined && this.#queued !== undefined) {
      this.#start(this.#takeQueued());
      return;
    }
    this.#settle();
    if (this.closeReason !== undefined) return;
    if (this.droppedEvents > 0) {
      // Caught up after a hole: announce it before anything else.
      const skipped = this.droppedEvents;
      this.droppedEvents = 0;
      const notice = this.#limits.gapNotice?.(this, this.lastSentId, skipped);
      if (notice !== undefined && this.write(notice)) return;
    }
    this.#wakeIdle();
  }

  /** A send failed: it ends only this session (BrokenPipe, ConnectionReset, BadResource...). */
  #failed(err: unknown): void {
    if (this.closeReason === undefined) this.closeError = err;
    this.close(this.closeReason ?? "write-error");
    this.#settle();
  }

  /** Nothing in flight any more. */
  #settle(): void {
    this.#writing = false;
    this.#inFlight = undefined;
    this.writeStartedAt = undefined;
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#queued === undefined) this.#queued = bytes;
    else (this.#queuedMore ??= []).push(bytes);
    this.#queuedBytes += bytes.length;
  }

  /** Takes everything queued, joined into one buffer when there are several. */
  #takeQueued(): Uint8Array {
    const first = this.#queued!;
    const more = this.#queuedMore;
    const total = this.#queuedBytes;
    this.#queued = this.#queuedMore = undefined;
    this.#queuedBytes = 0;
    if (more === undefined) return first;
    const out = new Uint8Array(total);
    out.set(first, 0);
    let at = first.length;
    for (const p of more) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  #wakeIdle(): void {
    const waiters = this.#idle;
    if (waiters === undefined) return;
    this.#idle = undefined;
    for (const w of waiters) w();
  }
}
