/**
 * Internal helper of the server: the reads of a socket while it receives
 * requests. Each read ends at a deadline, checked by one sweep for every
 * socket (no timer per read), and the read buffers are pooled across sockets.
 *
 * @module
 */

import { isDisconnect } from "./conn_io.ts";
import type { PendingHead } from "./pending_heads.ts";

/** Read size while receiving requests, and how many such buffers are kept for reuse. */
const READ_BUFFER_BYTES = 2 * 1024;
const READ_BUFFER_POOL = 256;

/**
 * How a request read ends: the number of bytes read, `null` at EOF (or when
 * the peer vanished), `"timeout"` past its deadline, `"evicted"` when the
 * socket was chosen to make room under `maxPendingHeads`.
 */
export type RequestRead = number | null | "timeout" | "evicted";

/** A request read that failed with an error other than a disconnect. */
export class ReadFailed {
  /**
   * @param error What the read rejected with.
   */
  constructor(readonly error: unknown) {}
}

/** The timeouts that set how often {@linkcode RequestReads} checks deadlines. */
export interface RequestReadsOptions {
  /** Milliseconds to receive a whole request (see `ServerOptions.headerTimeout`). */
  headerTimeout: number;
  /** Milliseconds an idle keep-alive socket waits (see `ServerOptions.idleTimeout`). */
  idleTimeout: number;
}

/** The request reads of one server: deadline sweep and buffer pool. */
export class RequestReads {
  /** Sockets waiting for request bytes, with their read deadline. */
  readonly #reading = new Set<PendingHead>();
  /** Free request read buffers (see {@linkcode READ_BUFFER_POOL}). */
  readonly #buffers: Uint8Array[] = [];
  /**
   * Buffers of reads that lost to their deadline or an eviction: the read is
   * still pending on them until the socket closes, and may still fill them,
   * so they never go back to the pool.
   */
  readonly #abandoned = new WeakSet<Uint8Array>();
  readonly #sweepMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #enabled = false;

  /**
   * Creates the reads; the sweep starts with {@linkcode RequestReads.start}.
   *
   * @param options The timeouts the sweep interval follows.
   */
  constructor(options: RequestReadsOptions) {
    // Request read deadlines are checked a few times per timeout (at most every 250 ms).
    this.#sweepMs = Math.max(
      5,
      Math.min(250, Math.floor(Math.min(options.headerTimeout, options.idleTimeout) / 8)),
    );
  }

  /**
   * Enables the deadline sweep. It runs only while reads are pending: an idle
   * server keeps no timer (no wake-ups, and Deno's first timer costs memory).
   */
  start(): void {
    this.#enabled = true;
  }

  /** Stops the deadline sweep: pending reads then only end with their socket. */
  stop(): void {
    this.#enabled = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A read buffer for one socket: from the pool when there is one.
   *
   * @returns A buffer of {@linkcode READ_BUFFER_BYTES} bytes; hand it back with
   * {@linkcode RequestReads.releaseBuffer}.
   */
  takeBuffer(): Uint8Array {
    return this.#buffers.pop() ?? new Uint8Array(READ_BUFFER_BYTES);
  }

  /**
   * Gives a buffer back to the pool (dropped when the pool is full).
   *
   * @param chunk A buffer from {@linkcode RequestReads.takeBuffer}, no longer used.
   */
  releaseBuffer(chunk: Uint8Array): void {
    if (this.#buffers.length < READ_BUFFER_POOL && !this.#abandoned.has(chunk)) {
      this.#buffers.push(chunk);
    }
  }

  /**
   * Reads once into `chunk`, ending at `deadline` or when the socket is evicted.
   *
   * @param conn The socket.
   * @param chunk Where the bytes go.
   * @param deadline When the read times out (ms since the epoch).
   * @param pending The socket's record; its `wake` is set while the read is pending.
   * @returns How the read ended.
   */
  read(
    conn: Deno.Conn,
    chunk: Uint8Array,
    deadline: number,
    pending: PendingHead,
  ): Promise<RequestRead> {
    return new Promise<RequestRead>((resolve, reject) => {
      this.readThen(conn, chunk, deadline, pending, (result) => {
        if (result instanceof ReadFailed) reject(result.error);
        else resolve(result);
      });
    });
  }

  /**
   * {@linkcode RequestReads.read} with a callback instead of a promise: the
   * first read of a new socket goes this way, so that a request that arrives
   * whole is answered with no promise of the server's own in between.
   *
   * @param conn The socket.
   * @param chunk Where the bytes go.
   * @param deadline When the read times out (ms since the epoch).
   * @param pending The socket's record; its `wake` is set while the read is pending.
   * @param done Called once, with how the read ended (possibly before this returns).
   */
  readThen(
    conn: Deno.Conn,
    chunk: Uint8Array,
    deadline: number,
    pending: PendingHead,
    done: (result: RequestRead | ReadFailed) => void,
  ): void {
    if (pending.evicted) return done("evicted");
    if (deadline <= Date.now()) return done("timeout");
    // No timer per read: one sweep wakes the reads whose deadline passed.
    // `wake` is also this read's token: whichever settles first clears it.
    pending.deadline = deadline;
    this.#reading.add(pending);
    if (this.#timer === undefined && this.#enabled) {
      this.#timer = setInterval(() => this.#sweep(), this.#sweepMs);
    }
    const wake = (why: "timeout" | "evicted"): void => {
      if (pending.wake !== wake) return;
      this.#settled(pending);
      this.#abandoned.add(chunk); // The read goes on.
      done(pending.evicted ? "evicted" : why);
    };
    pending.wake = wake;
    conn.read(chunk).then((n) => {
      if (pending.wake !== wake) return;
      this.#settled(pending);
      done(pending.evicted ? "evicted" : n);
    }, (err) => {
      if (pending.wake !== wake) return;
      this.#settled(pending);
      done(isDisconnect(err) ? null : new ReadFailed(err));
    });
  }

  /** The socket's read has settled (or was woken): it leaves the sweep. */
  #settled(pending: PendingHead): void {
    this.#reading.delete(pending);
    pending.wake = undefined;
  }

  /** Wakes every request read whose deadline has passed (see {@linkcode RequestReads.read}). */
  #sweep(): void {
    if (this.#reading.size === 0) {
      clearInterval(this.#timer); // Idle: the next read starts it again.
      this.#timer = undefined;
      return;
    }
    const now = Date.now();
    for (const p of this.#reading) {
      if (p.deadline <= now) p.wake?.("timeout");
    }
  }
}
