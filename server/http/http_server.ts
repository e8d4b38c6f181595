/**
 * The HTTP/1.1 connection loop: accept (plain TCP or TLS), the
 * `maxConnections` cap, request heads and bodies read with limits and
 * deadlines, the slowloris cap, error answers, keep-alive and linger close.
 * It knows nothing of event streams: it hands each request to a
 * {@linkcode RequestHandler} and gets back a response, bytes to write, or
 * "this socket is now adopted" (the stream layer then owns it).
 *
 * @module
 */

import { HttpError } from "./http_error.ts";
import { IncomingRequest } from "./incoming_request.ts";
import { parseRequestHead, type RequestHead } from "./request_parser.ts";
import { type PendingHead, pendingHead, PendingHeads } from "./pending_heads.ts";
import { peerIp } from "./peer_address.ts";
import {
  closeQuietly,
  concat,
  isDisconnect,
  LINGER_AFTER,
  lingerClose,
  peerString,
  writeAll,
} from "./conn_io.ts";
import { ReadFailed, type RequestRead, RequestReads } from "./_request_reads.ts";
import { Answers, busyAnswer } from "./_answers.ts";
import type { ConnectionCloseReason, HttpRequest, Logger } from "./types.ts";
import type { RequestHandler, RequestResult } from "./request_result.ts";
import { ConnectionCounters, type HttpServerStats } from "./connection_counters.ts";
import type { HttpServerLimits, HttpServerOptions } from "./http_server_options.ts";

export type { HttpServerStats } from "./connection_counters.ts";
export type { HttpServerLimits, HttpServerOptions } from "./http_server_options.ts";
export type { RequestHandler, RequestResult } from "./request_result.ts";

/** A handler took the socket: what it is handed, with the bytes read past its request. */
interface Adoption {
  adopt: (leftover: Uint8Array) => void;
  leftover: Uint8Array;
}

/** A request handled in the turn its bytes came, for the loop to finish answering. */
interface Handled {
  readonly req: HttpRequest;
  readonly result: RequestResult | Promise<RequestResult>;
  /** What the client sent past the request. */
  readonly rest: Uint8Array;
  readonly keepAlive: boolean;
}

/** No bytes: shared by every empty body and buffer (nothing can be written into it). */
const EMPTY = new Uint8Array(0);

/**
 * The connection loop of one listener. Start it with {@linkcode HttpServer.start};
 * stop it with {@linkcode HttpServer.stopAccepting}, then
 * {@linkcode HttpServer.closeAll} and {@linkcode HttpServer.settled}.
 *
 * @example
 * ```ts
 * import { HttpServer } from "./http_server.ts";
 * import { DEFAULT_REQUEST_LIMITS } from "./request_parser.ts";
 * const http = new HttpServer({
 *   limits: {
 *     ...DEFAULT_REQUEST_LIMITS,
 *     port: 0,
 *     hostname: "127.0.0.1",
 *     maxConnections: 64,
 *     headerTimeout: 10_000,
 *     maxPendingHeads: 32,
 *     idleTimeout: 30_000,
 *     retryAfter: 5,
 *     busyStatusText: "Service Unavailable",
 *   },
 *   handler: () => ({ kind: "response", response: { status: 204 }, headers: [], close: false }),
 *   log: () => {},
 *   adoptedSockets: () => 0,
 * });
 * http.start();
 * http.stopAccepting();
 * http.closeAll();
 * await http.settled();
 * ```
 */
export class HttpServer {
  /** The address the server listens on. */
  readonly addr: Deno.NetAddr;
  /** Whether connections are TLS. */
  readonly secure: boolean;
  readonly #limits: HttpServerLimits;
  readonly #handler: RequestHandler;
  readonly #log: Logger;
  readonly #adopted: () => number;
  readonly #onFirst: (() => void) | undefined;
  readonly #listener: Deno.Listener;
  readonly #reads: RequestReads;
  /** The slowloris cap: sockets still receiving a request. */
  readonly #pending: PendingHeads<Deno.Conn>;
  readonly #conns = new Set<Deno.Conn>();
  /** Sockets evicted to make room at `maxConnections`, still closing. */
  readonly #leaving = new Set<Deno.Conn>();
  /** Connection handlers still running, and what {@linkcode settled} waits on when some are. */
  #serving = 0;
  #served: Promise<void> | undefined;
  #allServed: (() => void) | undefined;
  #acceptLoop: Promise<void> = Promise.resolve();
  #running = true;
  readonly #counters: ConnectionCounters;
  readonly #answers: Answers;

  /**
   * Listens at once (so `addr` is known); accepting starts with {@linkcode start}.
   *
   * @param options Limits, TLS, the handler and the logger.
   */
  constructor(options: HttpServerOptions) {
    this.#limits = options.limits;
    this.#handler = options.handler;
    this.#log = options.log;
    this.#adopted = options.adoptedSockets;
    this.#onFirst = options.onFirstConnection;
    this.#counters = new ConnectionCounters(options.log, () => this.#running);
    this.#answers = new Answers(this.#limits, this.#log, this.#counters);
    this.#pending = new PendingHeads(
      this.#limits.maxPendingHeads,
      Math.min(1_000, this.#limits.headerTimeout / 4),
    );
    this.secure = options.tls !== undefined;
    const { port, hostname } = this.#limits;
    const reusePort = this.#limits.reusePort === true ? { reusePort: true } : {};
    this.#listener = options.tls
      ? Deno.listenTls({ port, hostname, cert: options.tls.cert, key: options.tls.key })
      : Deno.listen({ port, hostname, ...reusePort });
    this.addr = this.#listener.addr as Deno.NetAddr;
    this.#reads = new RequestReads(this.#limits);
  }

  /** Starts the read deadline sweep and the accept loop. */
  start(): void {
    this.#reads.start();
    this.#acceptLoop = this.#accept();
  }

  /** Whether the server still accepts and keeps connections alive. */
  get running(): boolean {
    return this.#running;
  }

  /** Counters since start. */
  get stats(): HttpServerStats {
    return this.#counters.snapshot(this.#conns.size + this.#adopted(), this.#pending.counted);
  }

  /**
   * Counts an error answer by status (the stream layer counts its own refusals here).
   *
   * @param status The HTTP status sent.
   */
  countError(status: number): void {
    this.#counters.countError(status);
  }

  /**
   * Counts and logs the end of a socket (the stream layer reports adopted
   * sockets here when it closes them).
   *
   * @param peer The peer as `host:port`.
   * @param reason Why the socket ended.
   * @param error The error, for `"error"` and `"write-error"`.
   */
  connectionEnded(peer: string, reason: ConnectionCloseReason, error?: string): void {
    this.#counters.ended(peer, reason, error);
  }

  /** Stops accepting: closes the listener and the deadline sweep. Idempotent. */
  stopAccepting(): void {
    this.#running = false;
    this.#reads.stop();
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
  }

  /** Closes every socket the loop still holds (not the adopted ones). */
  closeAll(): void {
    for (const c of this.#conns) closeQuietly(c);
  }

  /** Resolves when the accept loop and every connection handler have ended. */
  async settled(): Promise<void> {
    await this.#acceptLoop;
    if (this.#serving > 0) {
      await (this.#served ??= new Promise<void>((resolve) => this.#allServed = resolve));
    }
  }

  /** The 503 head sent when the server is full, with `Retry-After`. */
  busyResponse(extra: readonly [string, string][] = []): Uint8Array {
    return busyAnswer(this.#limits, extra);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (!this.#running || err instanceof Deno.errors.BadResource) return;
        this.#log("error", "accept failed", { error: String(err) });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.#counters.accepted++ === 0) this.#onFirst?.();
      if (this.#conns.size - this.#leaving.size + this.#adopted() >= this.#limits.maxConnections) {
        // Full: a socket still receiving its request (of the peer holding the
        // most) makes room, so that one host's silent sockets cannot lock
        // everyone else out; with none, the newcomer is refused.
        const victim = this.#pending.makeRoom();
        if (victim === undefined) {
          this.#refuse(conn);
          continue;
        }
        this.#leaving.add(victim);
      }
      if (!this.secure) {
        try {
          // No TCP keep-alive probes here: the header and idle timeouts end a
          // silent request socket long before the kernel's first probe (2 h by
          // default); the stream layer turns them on where nothing else would.
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // Not a TCP socket (or already gone): nothing to tune.
        }
      }
      this.#conns.add(conn);
      this.#serving++;
      this.#startConn(conn);
    }
  }

  /**
   * Starts serving a new socket with its first read, by callback: the
   * request begins at accept, and one that arrives whole (head and body) is
   * parsed, handled and (as a stream) adopted in the turn its bytes come,
   * with no promise or frame of the loop's own (a connect burst is mostly
   * such requests). Everything else goes on in `#serveConn`.
   */
  #startConn(conn: Deno.Conn): void {
    const peer = conn.remoteAddr as Deno.NetAddr;
    const pending = pendingHead(peerIp(peer.hostname));
    // Read buffers are reused across sockets: a connect burst allocates none.
    const chunk = this.#reads.takeBuffer();
    const deadline = Date.now() + this.#limits.headerTimeout;
    this.#pending.enter(conn, pending);
    this.#reads.readThen(conn, chunk, deadline, pending, (first) => {
      const handled = typeof first === "number"
        ? this.#firstRequest(conn, peer, pending, chunk, first)
        : undefined;
      if (handled === "adopted") return;
      if (handled !== undefined) {
        this.#serveConn(conn, peer, pending, chunk, deadline, undefined, handled);
      } else {
        this.#serveConn(conn, peer, pending, chunk, deadline, first);
      }
    });
  }

  /**
   * Handles a socket's first request when its first read holds all of it:
   * `"adopted"` when a handler took the socket in this turn; the request
   * and what its handler answered, for the loop to finish; `undefined` when
   * the request is not whole or is malformed (the loop reads, parses and
   * answers it from the start).
   */
  #firstRequest(
    conn: Deno.Conn,
    peer: Deno.NetAddr,
    pending: PendingHead,
    chunk: Uint8Array,
    n: number,
  ): Handled | "adopted" | undefined {
    const bytes = chunk.subarray(0, n);
    let head: RequestHead | undefined;
    try {
      head = parseRequestHead(bytes, this.#limits);
    } catch {
      return undefined;
    }
    if (head === undefined || head.headBytes + head.contentLength > n) return undefined;
    const handled = this.#handle(conn, pending, head, bytes, peer, conn.localAddr as Deno.NetAddr);
    const { result, rest } = handled;
    if (result instanceof Promise || result.kind !== "adopted") return handled;
    this.#released(conn, pending, chunk);
    result.adopt(rest);
    this.#served1();
    return "adopted";
  }

  /**
   * Hands a whole request to the handler. `bytes` holds its head and body
   * from index 0, and whatever the client sent past it (handed on as `rest`,
   * a copy: never a view of the pooled read buffer). A handler that throws
   * answers with the rejection: the loop ends the socket with it.
   */
  #handle(
    conn: Deno.Conn,
    pending: PendingHead,
    head: RequestHead,
    bytes: Uint8Array,
    peer: Deno.NetAddr,
    localAddr: Deno.NetAddr,
  ): Handled {
    this.#pending.leave(conn, pending);
    const total = head.headBytes + head.contentLength;
    const body = head.contentLength === 0 ? EMPTY : bytes.slice(head.headBytes, total);
    const req: HttpRequest = new IncomingRequest(head, body, peer, localAddr, this.secure);
    const rest = total === bytes.length ? EMPTY : bytes.slice(total);
    this.#counters.requests++;
    const keepAlive = head.keepAlive && this.#running;
    let result: RequestResult | Promise<RequestResult>;
    try {
      result = this.#handler(req, conn, keepAlive);
    } catch (err) {
      result = Promise.reject(err);
    }
    return { req, result, rest, keepAlive };
  }

  /** The loop no longer holds the socket (closed by it, or adopted). */
  #released(conn: Deno.Conn, pending: PendingHead, chunk: Uint8Array): void {
    this.#reads.releaseBuffer(chunk);
    this.#pending.leave(conn, pending);
    this.#conns.delete(conn);
    this.#leaving.delete(conn);
  }

  /** One connection handler has ended: wakes {@linkcode HttpServer.settled} after the last. */
  #served1(): void {
    if (--this.#serving === 0 && this.#allServed !== undefined) {
      this.#allServed();
      this.#served = this.#allServed = undefined;
    }
  }

  #refuse(conn: Deno.Conn): void {
    this.#counters.refused();
    this.#log("warn", "connection refused: too many connections", {
      peer: peerString(conn.remoteAddr as Deno.NetAddr),
      limit: this.#limits.maxConnections,
      reason: "too-many-connections",
    });
    conn.write(this.busyResponse()).catch(() => {}).finally(() => closeQuietly(conn));
  }

  /**
   * Why a socket ends when a request read brought no bytes: the peer left,
   * the socket was evicted (503), or the deadline passed (408 once a request
   * has begun, else the idle keep-alive simply ends).
   */
  async #noBytes(
    conn: Deno.Conn,
    peer: Deno.NetAddr,
    read: Exclude<RequestRead, number>,
    receiving: boolean,
  ): Promise<ConnectionCloseReason> {
    if (read === null) return "client-closed";
    if (read === "evicted") return await this.#answers.evicted(conn, peer);
    if (!receiving) return "idle-timeout";
    await this.#answers.error(conn, new HttpError(408, "Request Timeout"), peer);
    return "header-timeout";
  }

  /**
   * Reads and answers requests on one socket until it closes or a handler
   * adopts it; never rejects. Every socket the loop keeps ends with one
   * reason, counted and logged. `first` is how the socket's first read ended
   * (see `#startConn`); the first request's deadline runs from
   * accept. `buf` may be a view of `chunk` (a request that came in one read
   * is parsed in place); it is copied before the next read into `chunk`, and
   * nothing handed on aliases it.
   */
  async #serveConn(
    conn: Deno.Conn,
    peer: Deno.NetAddr,
    pending: PendingHead,
    chunk: Uint8Array,
    firstDeadline: number,
    first: RequestRead | ReadFailed | undefined,
    handled?: Handled,
  ): Promise<void> {
    let outcome: ConnectionCloseReason | Adoption;
    let reason: ConnectionCloseReason;
    let error: string | undefined;
    let adoption: Adoption | undefined;
    try {
      const limits = this.#limits;
      // Deno's own address objects (a `PeerAddr` with its `transport`): no copy per socket.
      const localAddr = conn.localAddr as Deno.NetAddr;
      let buf: Uint8Array = EMPTY;
      // The first request may have been handled in the turn it came (see #firstRequest).
      let firstRequest = handled === undefined;
      serve: for (;;) {
        if (handled === undefined) {
          // Read until a head is complete: within the header timeout once the
          // request has begun (the first one begins at accept), else the idle timeout.
          let head: RequestHead | undefined;
          let receiving = firstRequest || buf.length > 0;
          let deadline = firstRequest
            ? firstDeadline
            : Date.now() + (receiving ? limits.headerTimeout : limits.idleTimeout);
          if (receiving) this.#pending.enter(conn, pending);
          reading: for (;;) {
            try {
              // Nothing received yet (a new socket): nothing to parse.
              head = buf.length === 0 ? undefined : parseRequestHead(buf, limits);
            } catch (err) {
              if (err instanceof HttpError) {
                await this.#answers.error(conn, err, peer);
                outcome = "bad-request";
                break serve;
              }
              throw err;
            }
            if (head !== undefined) break reading;
            if (buf.length > 0) this.#pending.markSlow(conn, pending);
            if (buf.buffer === chunk.buffer) buf = buf.slice();
            let n: RequestRead;
            if (first === undefined) {
              n = await this.#reads.read(conn, chunk, deadline, pending);
            } else {
              // The socket's first read, started at accept, has ended already.
              const read = first;
              first = undefined;
              if (read instanceof ReadFailed) throw read.error;
              n = read;
            }
            if (typeof n !== "number") {
              outcome = await this.#noBytes(conn, peer, n, receiving);
              break serve;
            }
            if (!receiving) {
              // The next request on a keep-alive socket has begun: the header timeout applies.
              receiving = true;
              deadline = Date.now() + limits.headerTimeout;
              this.#pending.enter(conn, pending);
            }
            buf = buf.length === 0 ? chunk.subarray(0, n) : concat(buf, chunk.subarray(0, n));
          }
          firstRequest = false;
          // Read the body.
          const total = head.headBytes + head.contentLength;
          while (buf.length < total) {
            this.#pending.markSlow(conn, pending);
            if (buf.buffer === chunk.buffer) buf = buf.slice();
            const n = await this.#reads.read(conn, chunk, deadline, pending);
            if (typeof n !== "number") {
              outcome = await this.#noBytes(conn, peer, n, true);
              break serve;
            }
            buf = concat(buf, chunk.subarray(0, n));
          }
          handled = this.#handle(conn, pending, head, buf, peer, localAddr);
        }
        const { req, keepAlive, result: answer } = handled;
        buf = handled.rest;
        handled = undefined;
        const result = answer instanceof Promise ? await answer : answer;
        if (result.kind === "adopted") {
          outcome = { adopt: result.adopt, leftover: buf };
          break serve;
        }
        if (result.kind === "bytes") {
          if (result.status >= 400) this.countError(result.status);
          await writeAll(conn, result.bytes);
          outcome = "response-sent";
          break serve;
        }
        // Whether the server is still running is read again once the handler has answered.
        const close = this.#answers.response(conn, req, result, keepAlive && this.#running);
        await close.written;
        if (close.close) {
          outcome = "response-sent";
          break serve;
        }
        if (!this.#running) {
          outcome = "shutdown";
          break serve;
        }
      }
      if (typeof outcome === "object") {
        // The socket now belongs to its adopter (closed, counted and logged
        // by it): this handler returns, so an idle stream holds no suspended frame.
        adoption = outcome;
        return;
      }
      reason = outcome;
      if (LINGER_AFTER.has(reason) && this.#running) await lingerClose(conn);
    } catch (err) {
      error = String(err);
      // Reads report a vanished peer as EOF, so a disconnect error here came from a write.
      reason = isDisconnect(err) ? "write-error" : "error";
    } finally {
      this.#released(conn, pending, chunk);
      if (adoption === undefined) closeQuietly(conn);
      else adoption.adopt(adoption.leftover);
      this.#served1();
    }
    this.connectionEnded(peerString(peer), reason, error);
  }
}
