/**
 * Internal helper of the server: watching the sockets of open event streams,
 * to notice at once when a client leaves, and to refuse the requests a
 * client sends on a socket that already carries its stream.
 *
 * @module
 */

import type { Session } from "../../sessions/session.ts";
import { concat, isDisconnect } from "../http/conn_io.ts";
import { HttpError } from "../http/http_error.ts";
import { parseRequestHead, type RequestHead, type RequestLimits } from "../http/request_parser.ts";
import { encodeResponse } from "../http/response_head.ts";
import type { Logger } from "../server_options.ts";

/** Read size on a watched stream socket (kept inside V8's heap at this size). */
const WATCH_READ_BYTES = 64;

/** What {@linkcode StreamWatcher} needs from its server. */
export interface StreamWatchHost {
  /** The request limits: requests on a stream socket are parsed with them. */
  readonly limits: RequestLimits;
  /** Where the watcher logs. */
  readonly log: Logger;
  /** Counts an error response (a refused request) by status. */
  readonly countError: (status: number) => void;
}

/** Watches the sockets of a server's open streams, counting the reads pending on them. */
export class StreamWatcher {
  readonly #limits: RequestLimits;
  readonly #log: Logger;
  readonly #countError: (status: number) => void;
  /** Reads pending on watched stream sockets; the server waits for them to end when it stops. */
  #reads = 0;
  #allEnded: Promise<void> | undefined;
  #resolveAllEnded: (() => void) | undefined;

  /**
   * Creates the watcher.
   *
   * @param host What the watcher needs from its server.
   */
  constructor(host: StreamWatchHost) {
    this.#limits = host.limits;
    this.#log = host.log;
    this.#countError = host.countError;
  }

  /** Reads pending on watched stream sockets now. */
  get pending(): number {
    return this.#reads;
  }

  /**
   * Waits for the pending reads to end (closed sockets' reads end with the
   * next turn of the event loop). Every caller waits on the same promise.
   *
   * @returns Resolves when no read is pending.
   */
  allEnded(): Promise<void> {
    if (this.#reads === 0) return Promise.resolve();
    return this.#allEnded ??= new Promise<void>((resolve) => this.#resolveAllEnded = resolve);
  }

  /**
   * Keeps one small read pending on a stream's socket, to notice at once when
   * the client leaves (EOF or reset). Bytes the client sends are parsed as
   * requests: a second request on a stream socket gets `400 Session Already
   * Active` (written in order through the session). Callbacks, not an async
   * loop: an idle stream holds one pending read and its two handlers.
   *
   * @param conn The stream's socket.
   * @param session The session that owns the socket.
   * @param leftover Bytes received after the request that opened the stream.
   */
  watch(conn: Deno.Conn, session: Session, leftover: Uint8Array): void {
    let buf: Uint8Array = leftover;
    // At most 64 bytes: V8 keeps such a buffer inside its heap, with no
    // separate allocation (a stream's socket only carries the client's EOF
    // or, rarely, a request to refuse).
    const chunk = new Uint8Array(WATCH_READ_BYTES);
    this.#reads++;
    const ended = (): void => {
      if (--this.#reads === 0 && this.#resolveAllEnded !== undefined) {
        this.#resolveAllEnded();
        this.#allEnded = this.#resolveAllEnded = undefined;
      }
    };
    const onError = (err: unknown): void => {
      ended();
      // After the session closed its socket (slow consumer, shutdown...) a read fails: expected.
      if (!session.closed && !isDisconnect(err)) {
        this.#log("error", "stream read failed", { session: session.id, error: String(err) });
      }
      session.close("client-closed");
    };
    const onRead = (n: number | null): void => {
      if (n === null || session.closed) {
        ended();
        session.close("client-closed");
        return;
      }
      buf = concat(buf, chunk.subarray(0, n));
      if (buf.length > this.#limits.maxHeadBytes + this.#limits.maxBodyBytes) {
        buf = new Uint8Array(0);
      }
      buf = this.#refuseRequests(session, buf);
      conn.read(chunk).then(onRead, onError);
    };
    buf = this.#refuseRequests(session, buf);
    conn.read(chunk).then(onRead, onError);
  }

  /**
   * Answers every complete request in `buf` (received on a stream socket)
   * with `400 Session Already Active`; returns what is left.
   */
  #refuseRequests(session: Session, buf: Uint8Array): Uint8Array {
    while (buf.length > 0) {
      let head: RequestHead | undefined;
      try {
        head = parseRequestHead(buf, this.#limits);
      } catch (err) {
        // Garbage on a stream socket: dropped (bounded), the stream goes on.
        this.#log(
          err instanceof HttpError ? "debug" : "error",
          "input on a stream socket ignored",
          { session: session.id, bytes: buf.length, error: String(err) },
        );
        return new Uint8Array(0);
      }
      if (head === undefined) return buf;
      buf = buf.slice(head.headBytes + head.contentLength);
      this.#countError(400);
      this.#log("info", "request on a stream socket refused", {
        session: session.id,
        status: 400,
        reason: "Session Already Active",
      });
      session.write(
        encodeResponse(400, [["Content-Type", "text/plain"]], "Session Already Active\n", {
          statusText: "Session Already Active",
        }),
      );
    }
    return buf;
  }
}
