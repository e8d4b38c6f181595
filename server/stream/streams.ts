/**
 * The stream layer of a server: the session table, the event sources' host
 * (publish into the delivery path), the opener, the watcher of stream
 * sockets, the keep-alive and write-deadline ticks, gap notices, and the end
 * of each session. The server facade wires it to the HTTP layer.
 *
 * @module
 */

import { encodeComment, encodeRetry } from "../../queue/encode_event.ts";
import { encodeGapEvent, type HistoryStore, isPromiseLike } from "../../queue/history.ts";
import type { FeedGap } from "../../queue/event_feed.ts";
import type { CloseReason, Session, SlowConsumerPolicy } from "../../sessions/session.ts";
import { SessionTable } from "../../sessions/session_table.ts";
import type { RequestLimits } from "../http/request_parser.ts";
import type { RequestResult } from "../http/request_result.ts";
import type { ConnectionCloseReason, HttpRequest, Logger } from "../http/types.ts";
import { Delivery, type DeliveryStats, historyKey, type QueuedEvent } from "./delivery.ts";
import { EventSource, type EventSourceOptions, PublishRejectedError } from "./event_source.ts";
import type { SourceHost } from "./event_source.ts";
import { newStreamCounters, type StreamCounters } from "./stream_counters.ts";
import { PeerStreams } from "./peer_streams.ts";
import { jitter, StreamOpener } from "./stream_opener.ts";
import { StreamWatcher } from "./stream_watch.ts";

const KEEP_ALIVE = encodeComment("keep-alive");

/** Options of {@linkcode Streams} (resolved; see `ServerOptions`). */
export interface StreamsOptions {
  /** Session table capacity. */
  readonly maxClients: number;
  /** Most streams per peer address; `0`: no cap. */
  readonly maxClientsPerIp: number;
  /** Loopback peers are not counted against `maxClientsPerIp`. */
  readonly exemptLoopback: boolean;
  /** Queue capacity. */
  readonly queueSize: number;
  /** Per-session byte budget. */
  readonly maxPendingBytes: number;
  /** Over budget: disconnect or drop. */
  readonly slowConsumer: SlowConsumerPolicy;
  /** Write deadline in ms; `0`: none. */
  readonly writeTimeout: number;
  /** Keep-alive comment interval in s; `0`: none. */
  readonly keepAlive: number;
  /** Full table answer. */
  readonly busy: "503" | "retry";
  /** `Retry-After` seconds. */
  readonly retryAfter: number;
  /** Most stream sockets with a read pending. */
  readonly watchStreams: number;
  /** Request limits (requests on stream sockets are parsed with them). */
  readonly limits: RequestLimits;
  /** Server-wide `retry:` for each stream. */
  readonly retry: number | undefined;
  /** The history store, if any. */
  readonly history: HistoryStore | undefined;
  /** Where it logs. */
  readonly log: Logger;
}

/** What the stream layer needs from the HTTP layer, bound after both exist. */
export interface StreamsHttp {
  /** Counts an error answer. */
  countError(status: number): void;
  /** Counts and logs the end of an adopted socket. */
  connectionEnded(peer: string, reason: ConnectionCloseReason): void;
  /** The 503 head with `Retry-After`. */
  busyResponse(extra: readonly [string, string][]): Uint8Array;
  /** Registers a source's stream route. */
  addRoute(
    path: string,
    open: (
      req: HttpRequest,
      conn: Deno.Conn,
      headers: [string, string][],
    ) => RequestResult | Promise<RequestResult>,
  ): void;
  /** Removes a source's stream route. */
  removeRoute(path: string): void;
}

/**
 * The stream layer of one server.
 *
 * @example
 * ```ts
 * import type { Streams } from "./streams.ts";
 * // Built by the server facade (server/server.ts); sources come from
 * // streams.addSource(path, options).
 * const _check = (s: Streams) => s.sessions.capacity;
 * ```
 */
export class Streams {
  /** The session table of every event stream. */
  readonly sessions: SessionTable;
  /** The delivery path. */
  readonly delivery: Delivery;
  /** Counters the parts add to. */
  readonly counters: StreamCounters = newStreamCounters();
  /** Open streams per peer address (`maxClientsPerIp`). */
  readonly peers: PeerStreams;
  /** The source of each open stream; its size is the number of sockets streams own. */
  readonly sourceOf: Map<number, EventSource> = new Map();
  readonly #opts: StreamsOptions;
  readonly #log: Logger;
  readonly #watcher: StreamWatcher;
  readonly #opener: StreamOpener;
  readonly #sources = new Map<EventSource, readonly string[]>();
  /** Sources by their (first) path, the prefix of their history keys. */
  readonly #byPath = new Map<string, EventSource>();
  #http!: StreamsHttp;
  #running = true;
  #keepAliveTimer: ReturnType<typeof setInterval> | undefined;
  #writeTimer: ReturnType<typeof setInterval> | undefined;

  /**
   * Creates the layer; ticks start with {@linkcode start}.
   *
   * @param options Resolved options.
   */
  constructor(options: StreamsOptions) {
    this.#opts = options;
    this.#log = options.log;
    this.peers = new PeerStreams(options.maxClientsPerIp, {
      exemptLoopback: options.exemptLoopback,
    });
    this.sessions = new SessionTable(options.maxClients, {
      maxPendingBytes: options.maxPendingBytes,
      slowConsumer: options.slowConsumer,
      gapNotice: (s, lastEventId) => this.#gapNotice(s, lastEventId),
      onClose: (s, reason, error) => this.#sessionClosed(s, reason, error),
    });
    this.delivery = new Delivery({
      queueSize: options.queueSize,
      history: options.history,
      sessions: this.sessions,
      log: options.log,
      sourceAt: (path) => this.#byPath.get(path),
      onFeedGap: (gap) => this.#feedGap(gap),
    });
    this.#watcher = new StreamWatcher({
      limits: options.limits,
      log: options.log,
      countError: (status) => this.#http.countError(status),
    });
    this.#opener = new StreamOpener({
      sessions: this.sessions,
      peers: this.peers,
      maxPerIp: options.maxClientsPerIp,
      delivery: this.delivery,
      counters: this.counters,
      sourceOf: this.sourceOf,
      log: options.log,
      running: () => this.#running,
      busy: options.busy,
      retryAfter: options.retryAfter,
      busyResponse: (extra) => this.#http.busyResponse(extra),
      retry: options.retry,
      opened: (session, conn, leftover) => {
        this.#ensureTicks();
        // With no keep-alive comments, nothing is written to a quiet stream:
        // TCP keep-alive probes are then what finds a peer that vanished.
        if (this.#opts.keepAlive === 0) keepAliveProbes(conn);
        if (this.#watcher.pending < this.#opts.watchStreams) {
          this.#watcher.watch(conn, session, leftover);
        }
      },
    });
  }

  /**
   * Binds the HTTP layer and starts the keep-alive and write-deadline ticks.
   *
   * @param http What the layer needs from the HTTP side.
   */
  start(http: StreamsHttp): void {
    this.#http = http;
    this.delivery.startFeed();
  }

  /**
   * Starts the keep-alive and write-deadline ticks when a stream opens; they
   * stop by themselves once no stream is left (an idle server keeps no timer).
   */
  #ensureTicks(): void {
    if (!this.#running) return;
    if (this.#opts.keepAlive > 0 && this.#keepAliveTimer === undefined) {
      this.#keepAliveTimer = setInterval(() => this.#keepAliveTick(), this.#opts.keepAlive * 1000);
    }
    if (this.#opts.writeTimeout > 0 && this.#writeTimer === undefined) {
      const every = Math.min(1000, Math.max(10, Math.floor(this.#opts.writeTimeout / 2)));
      this.#writeTimer = setInterval(() => this.#writeDeadlineTick(), every);
    }
  }

  #stopTicks(): void {
    clearInterval(this.#keepAliveTimer);
    clearInterval(this.#writeTimer);
    this.#keepAliveTimer = this.#writeTimer = undefined;
  }

  /** Stream reads pending (see `watchStreams`). */
  get streamsWatched(): number {
    return this.#watcher.pending;
  }

  /** Counters of the delivery path. */
  get deliveryStats(): DeliveryStats {
    return this.delivery.stats;
  }

  /** Bytes written to streams, open and closed. */
  get bytesWritten(): number {
    let n = this.counters.bytesOfClosed;
    for (const s of this.sessions) n += s.bytesSent;
    return n;
  }

  /**
   * Registers an event source at one path or several (all serve the same
   * channels, history and sessions).
   *
   * @param paths Path patterns.
   * @param options The source's options.
   * @returns The source.
   * @throws {RoutePatternError} When a pattern is malformed or taken.
   */
  addSource(paths: readonly string[], options: EventSourceOptions): EventSource {
    const source = new EventSource(this.#host, paths[0], options);
    const open = (req: HttpRequest, conn: Deno.Conn, headers: [string, string][]) =>
      this.#opener.open(source, req, conn, headers);
    const added: string[] = [];
    try {
      for (const path of paths) {
        this.#http.addRoute(path, open);
        added.push(path);
      }
    } catch (err) {
      for (const path of added) this.#http.removeRoute(path);
      throw err;
    }
    this.#sources.set(source, paths);
    this.#byPath.set(source.path, source);
    return source;
  }

  /** The host of every source: publishing goes through the delivery path. */
  readonly #host: SourceHost = {
    enqueue: (source, channel, bytes, fields) => {
      const done = this.delivery.publish({ source, channel, bytes, fields });
      if (typeof done === "boolean") return done;
      done.catch(() => {}); // Counted and logged by the delivery path.
      return true;
    },
    enqueueWait: (source, channel, bytes, fields, timeoutMs) =>
      this.delivery.publishWait({ source, channel, bytes, fields }, timeoutMs),
    publish: async (source, channel, bytes, fields, timeoutMs) => {
      const ev: QueuedEvent = { source, channel, bytes, fields };
      if (!(await this.delivery.publishWait(ev, timeoutMs))) {
        throw new PublishRejectedError(this.#running ? "queue-full" : "closed");
      }
      return ev.id;
    },
    detach: (source) => {
      for (const path of this.#sources.get(source) ?? []) this.#http.removeRoute(path);
      this.#sources.delete(source);
      if (this.#byPath.get(source.path) === source) this.#byPath.delete(source.path);
    },
  };

  /** Stops the ticks and refuses new events and streams. */
  stop(): void {
    this.#running = false;
    this.#stopTicks();
    this.delivery.stop();
  }

  /**
   * Graceful end: fans out what is queued, sends each stream a jittered
   * `retry:` and waits (at most `timeoutMs`) for the sessions to flush.
   *
   * @param timeoutMs The most to wait.
   */
  async flush(timeoutMs: number): Promise<void> {
    await this.delivery.appended();
    this.delivery.drain();
    this.#sendShutdownRetry();
    const flushed = Promise.all([...this.sessions].map((s) => s.idle()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([flushed, new Promise((r) => timer = setTimeout(r, timeoutMs))]);
    clearTimeout(timer);
  }

  /** Ends every session (free callbacks run). */
  closeAll(): void {
    this.sessions.closeAll("shutdown");
  }

  /** Waits for stream reads and appends to end, then closes the history store. */
  async settle(): Promise<void> {
    // The reads of closed stream sockets end with the next turn of the loop.
    await this.#watcher.allEnded();
    await this.delivery.appended();
    try {
      await this.delivery.history?.close();
    } catch (err) {
      this.#log("error", "history store failed to close", { error: String(err) });
    }
  }

  #keepAliveTick(): void {
    if (this.sessions.size === 0) return this.#stopTicks();
    const replaying = this.delivery.replaying;
    for (const s of this.sessions) {
      if (s.pendingBytes === 0 && !replaying.has(s.id)) s.write(KEEP_ALIVE);
    }
  }

  /** Closes sessions whose socket write has been in flight longer than `writeTimeout`. */
  #writeDeadlineTick(): void {
    if (this.sessions.size === 0) return this.#stopTicks();
    const limit = Date.now() - this.#opts.writeTimeout;
    for (const s of this.sessions) {
      const since = s.writeStartedAt;
      if (since !== undefined && since < limit) {
        this.counters.writeTimeouts++;
        this.#log("warn", "write deadline passed", {
          session: s.id,
          peer: s.remoteAddr,
          pendingBytes: s.pendingBytes,
          reason: "write-timeout",
        });
        s.close("write-timeout");
      }
    }
  }

  /** Queues a jittered `retry:` on every stream, so clients do not all reconnect at once. */
  #sendShutdownRetry(): void {
    for (const s of this.sessions) {
      if (this.delivery.replaying.has(s.id)) continue;
      const base = this.sourceOf.get(s.id)?.retry ?? this.#opts.retry ??
        this.#opts.retryAfter * 1000;
      const bytes = encodeRetry(jitter(base));
      if (s.pendingBytes + bytes.length <= this.#opts.maxPendingBytes) s.write(bytes);
    }
  }

  /**
   * The shared feed lost events (its store lost data, or trimmed past this
   * instance's position): every stream that may have missed some gets one
   * `sluice.gap` (all of them when the feed cannot tell which channels).
   */
  #feedGap(gap: FeedGap): void {
    const keys = gap.keys === undefined ? undefined : new Set(gap.keys);
    const notice = encodeGapEvent(gap.afterId, null);
    let streams = 0;
    for (const s of this.sessions) {
      const source = this.sourceOf.get(s.id);
      if (source === undefined || this.delivery.replaying.has(s.id)) continue;
      if (keys !== undefined && !s.channels.some((c) => keys.has(historyKey(source, c)))) continue;
      if (s.write(notice)) streams++;
    }
    this.counters.gapsSent += streams;
    this.#log("warn", "event feed lost events", {
      reason: gap.reason,
      afterId: gap.afterId,
      streams,
    });
  }

  /** The `sluice.gap` event a session under the `drop` policy writes once it has caught up. */
  #gapNotice(session: Session, lastEventId: string | undefined): Uint8Array {
    this.counters.gapsSent++;
    let earliest: string | null = null;
    const source = this.sourceOf.get(session.id);
    try {
      const bounds = source && this.delivery.history?.since(
        session.channels.map((c) => historyKey(source, c)),
      );
      if (bounds !== undefined && !isPromiseLike(bounds)) earliest = bounds.earliest;
      else bounds?.catch(() => {}); // An asynchronous store cannot answer in time.
    } catch {
      // The store failed: the earliest retained id is unknown.
    }
    return encodeGapEvent(lastEventId ?? null, earliest);
  }

  #sessionClosed(session: Session, reason: CloseReason, freeError?: unknown): void {
    if (freeError !== undefined) {
      this.#log("error", "free callback failed", {
        session: session.id,
        peer: session.remoteAddr,
        error: String(freeError),
      });
    }
    this.counters.bytesOfClosed += session.bytesSent;
    this.peers.closed(session.id);
    this.delivery.replaying.delete(session.id);
    const source = this.sourceOf.get(session.id);
    this.sourceOf.delete(session.id);
    this.#log("info", "stream closed", {
      session: session.id,
      peer: session.remoteAddr,
      reason,
      events: session.eventsSent,
      bytes: session.bytesSent,
      error: session.closeError === undefined ? undefined : String(session.closeError),
    });
    try {
      source?.detachSession(session, reason);
    } catch (err) {
      // An onDisconnect callback threw: log it; the close itself is done.
      this.#log("error", "onDisconnect callback failed", {
        session: session.id,
        peer: session.remoteAddr,
        error: String(err),
      });
    }
    // A stream of this server: the session closed the socket it owned.
    if (source !== undefined) this.#http.connectionEnded(session.remoteAddr, "stream");
  }
}

/** Turns on TCP keep-alive probes (`ETIMEDOUT` reads as a disconnect); TLS and gone sockets: no-op. */
function keepAliveProbes(conn: Deno.Conn): void {
  try {
    (conn as Deno.TcpConn).setKeepAlive?.(true);
  } catch {
    // Already gone: its session ends by itself.
  }
}
