/**
 * The Sluice server: a raw `Deno.listen` (or `Deno.listenTls`) accept loop,
 * HTTP/1.1 request handling with limits, plain routes, event sources backed
 * by the session table, and the bounded queue drained into every subscriber.
 *
 * @module
 */

import type { EventFields } from "../queue/encode_event.ts";
import { encodeComment, encodeRetry } from "../queue/encode_event.ts";
import { fanOut } from "../queue/fan_out.ts";
import { MessageQueue, type MessageQueueStats } from "../queue/message_queue.ts";
import type { CloseReason, Session, SlowConsumerPolicy } from "../sessions/session.ts";
import { SessionTable, type SessionTableStats } from "../sessions/session_table.ts";
import { composeMiddleware } from "./compose_middleware.ts";
import { EventSource, type EventSourceOptions, type SourceHost } from "./event_source.ts";
import { HttpError } from "./http_error.ts";
import { DEFAULT_REQUEST_LIMITS, parseRequestHead, type RequestHead } from "./request_parser.ts";
import { encodeResponse, encodeStreamHead, headerPairs } from "./response_head.ts";
import { Router } from "./router.ts";
import type { HttpRequest, HttpResponse, Middleware, PeerAddr, RouteHandler } from "./types.ts";

/** Severity of a log record. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * Receives the server's log records. Library code never prints; the CLI
 * supplies a logger that does.
 */
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** Options of {@linkcode serve}. Every default is in {@linkcode DEFAULT_SERVER_OPTIONS}. */
export interface ServerOptions {
  /** TCP port; `0` picks a free one. @default {8080} */
  port?: number;
  /** Address to listen on. @default {"0.0.0.0"} */
  hostname?: string;
  /** PEM certificate chain; with `key`, the server listens with TLS. */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /** Capacity of the session table: most event streams at once. @default {1024} */
  maxClients?: number;
  /** Most sockets at once, streams and plain requests together. @default {maxClients + 256} */
  maxConnections?: number;
  /** Capacity of the message queue. @default {1024} */
  queueSize?: number;
  /** Seconds between keep-alive comments on each stream; `0` turns them off. @default {15} */
  keepAlive?: number;
  /** Reconnection delay (ms) sent as `retry:` first on every stream. */
  retry?: number;
  /** Most bytes queued for one stream before the slow-consumer policy applies. @default {1048576} */
  maxPendingBytes?: number;
  /** Over budget: `"disconnect"` the stream or `"drop"` events. @default {"disconnect"} */
  slowConsumer?: SlowConsumerPolicy;
  /** Longest request line in bytes (414). @default {8192} */
  maxRequestLine?: number;
  /** Largest request head in bytes (431). @default {16384} */
  maxHeadBytes?: number;
  /** Most request header fields (431). @default {100} */
  maxHeaders?: number;
  /** Largest request body in bytes (413). @default {1048576} */
  maxBodyBytes?: number;
  /** Milliseconds to receive a whole request head (and body) before 408. @default {10000} */
  headerTimeout?: number;
  /** Milliseconds an idle keep-alive connection (no stream) stays open. @default {30000} */
  idleTimeout?: number;
  /** Seconds a client should wait after a 503 (`Retry-After`). @default {5} */
  retryAfter?: number;
  /** Milliseconds `shutdown()` waits for queued events to flush. @default {5000} */
  shutdownTimeout?: number;
  /** Receives log records. */
  logger?: Logger;
  /** Called once listening. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** Defaults of {@linkcode ServerOptions}, like `HTTPD_DEFAULT_CONFIG`. */
export const DEFAULT_SERVER_OPTIONS = {
  port: 8080,
  hostname: "0.0.0.0",
  maxClients: 1024,
  queueSize: 1024,
  keepAlive: 15,
  maxPendingBytes: 1024 * 1024,
  slowConsumer: "disconnect" as SlowConsumerPolicy,
  maxRequestLine: DEFAULT_REQUEST_LIMITS.maxRequestLine,
  maxHeadBytes: DEFAULT_REQUEST_LIMITS.maxHeadBytes,
  maxHeaders: DEFAULT_REQUEST_LIMITS.maxHeaders,
  maxBodyBytes: DEFAULT_REQUEST_LIMITS.maxBodyBytes,
  headerTimeout: 10_000,
  idleTimeout: 30_000,
  retryAfter: 5,
  shutdownTimeout: 5_000,
} as const;

/** Counters of a server, read through `server.stats`. */
export interface ServerStats {
  /** Sockets open now (streams and plain requests). */
  readonly connections: number;
  /** Sockets accepted since start. */
  readonly accepted: number;
  /** Sockets refused at once because `maxConnections` was reached. */
  readonly connectionsRefused: number;
  /** The session table's counters (open, capacity, rejected, closed by reason). */
  readonly sessions: SessionTableStats;
  /** The queue's counters and depth. */
  readonly queue: MessageQueueStats & { readonly depth: number; readonly capacity: number };
  /** Events taken from the queue and fanned out. */
  readonly eventsPublished: number;
  /** Event copies accepted by sessions (one per recipient). */
  readonly eventsDelivered: number;
  /** Event copies refused by sessions (closed or over budget). */
  readonly eventsDropped: number;
  /** Bytes written to event streams, open and closed. */
  readonly bytesWritten: number;
  /** Requests answered with an error status, by status. */
  readonly httpErrors: Readonly<Record<number, number>>;
  /** Requests served (plain routes and stream opens). */
  readonly requests: number;
  /** Milliseconds since the server started. */
  readonly uptimeMs: number;
}

interface QueuedEvent {
  source: EventSource;
  channel: string;
  bytes: Uint8Array;
  fields: EventFields;
}

type RouteValue =
  | { kind: "route"; handler: RouteHandler; guard: Middleware | undefined }
  | { kind: "stream"; source: EventSource };

const KEEP_ALIVE = encodeComment("keep-alive");

function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) {
    const what = min === 0 ? "a non-negative integer" : "a positive integer";
    throw new RangeError(`${name} must be ${what}: received ${value}`);
  }
  return value;
}

/**
 * A running Sluice server. Create it with {@linkcode serve}.
 */
export class SluiceServer implements AsyncDisposable {
  /** The address the server listens on. */
  readonly addr: Deno.NetAddr;
  /** Resolves when the server has stopped and every socket is closed. */
  readonly finished: Promise<void>;
  /** The session table of every event stream. */
  readonly sessions: SessionTable;

  readonly #listener: Deno.Listener;
  readonly #opts: Required<Omit<ServerOptions, "cert" | "key" | "retry" | "logger" | "onListen">>;
  readonly #retry: number | undefined;
  readonly #log: Logger;
  readonly #router = new Router<RouteValue>();
  readonly #queue: MessageQueue<QueuedEvent>;
  readonly #conns = new Set<Deno.Conn>();
  readonly #sourceOf = new Map<number, EventSource>();
  readonly #middleware: Middleware[] = [];
  #guard: Middleware | undefined;
  readonly #secure: boolean;
  readonly #startedAt = Date.now();
  #drainScheduled = false;
  #keepAliveTimer: ReturnType<typeof setInterval> | undefined;
  #state: "running" | "stopping" | "closed" = "running";
  #resolveFinished!: () => void;
  #accepted = 0;
  #connectionsRefused = 0;
  #eventsPublished = 0;
  #eventsDelivered = 0;
  #eventsDropped = 0;
  #requests = 0;
  #bytesOfClosed = 0;
  readonly #httpErrors: Record<number, number> = {};
  readonly #acceptLoop: Promise<void>;
  readonly #handlers = new Set<Promise<void>>();

  /** @internal Use {@linkcode serve}. */
  constructor(options: ServerOptions = {}) {
    const d = DEFAULT_SERVER_OPTIONS;
    const maxClients = positiveInt("maxClients", options.maxClients ?? d.maxClients);
    const port = options.port ?? d.port;
    if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`port must be an integer from 0 to 65535: received ${port}`);
    }
    this.#opts = {
      port,
      hostname: options.hostname ?? d.hostname,
      maxClients,
      maxConnections: positiveInt(
        "maxConnections",
        options.maxConnections ?? maxClients + 256,
      ),
      queueSize: positiveInt("queueSize", options.queueSize ?? d.queueSize),
      keepAlive: positiveInt("keepAlive", options.keepAlive ?? d.keepAlive, 0),
      maxPendingBytes: positiveInt(
        "maxPendingBytes",
        options.maxPendingBytes ?? d.maxPendingBytes,
      ),
      slowConsumer: options.slowConsumer ?? d.slowConsumer,
      maxRequestLine: positiveInt("maxRequestLine", options.maxRequestLine ?? d.maxRequestLine),
      maxHeadBytes: positiveInt("maxHeadBytes", options.maxHeadBytes ?? d.maxHeadBytes),
      maxHeaders: positiveInt("maxHeaders", options.maxHeaders ?? d.maxHeaders),
      maxBodyBytes: positiveInt("maxBodyBytes", options.maxBodyBytes ?? d.maxBodyBytes, 0),
      headerTimeout: positiveInt("headerTimeout", options.headerTimeout ?? d.headerTimeout),
      idleTimeout: positiveInt("idleTimeout", options.idleTimeout ?? d.idleTimeout),
      retryAfter: positiveInt("retryAfter", options.retryAfter ?? d.retryAfter, 0),
      shutdownTimeout: positiveInt(
        "shutdownTimeout",
        options.shutdownTimeout ?? d.shutdownTimeout,
        0,
      ),
    };
    if (this.#opts.maxConnections < maxClients) {
      throw new RangeError(
        `maxConnections must be at least maxClients (${maxClients}): received ${this.#opts.maxConnections}`,
      );
    }
    if (options.retry !== undefined) positiveInt("retry", options.retry, 0);
    this.#retry = options.retry;
    if ((options.cert === undefined) !== (options.key === undefined)) {
      throw new TypeError("cert and key must be given together");
    }
    this.#log = options.logger ?? (() => {});
    this.sessions = new SessionTable(maxClients, {
      maxPendingBytes: this.#opts.maxPendingBytes,
      slowConsumer: this.#opts.slowConsumer,
      onClose: (s, reason) => this.#sessionClosed(s, reason),
    });
    this.#queue = new MessageQueue<QueuedEvent>(this.#opts.queueSize, this.#scheduleDrain);
    this.#secure = options.cert !== undefined;
    this.#listener = this.#secure
      ? Deno.listenTls({
        port,
        hostname: this.#opts.hostname,
        cert: options.cert!,
        key: options.key!,
      })
      : Deno.listen({ port, hostname: this.#opts.hostname });
    this.addr = this.#listener.addr as Deno.NetAddr;
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
    if (this.#opts.keepAlive > 0) {
      this.#keepAliveTimer = setInterval(() => this.#keepAliveTick(), this.#opts.keepAlive * 1000);
    }
    this.#acceptLoop = this.#accept();
    options.onListen?.(this.addr);
  }

  /** Counters since start. */
  get stats(): ServerStats {
    return {
      connections: this.#conns.size,
      accepted: this.#accepted,
      connectionsRefused: this.#connectionsRefused,
      sessions: this.sessions.stats,
      queue: {
        ...this.#queue.stats,
        depth: this.#queue.length,
        capacity: this.#queue.capacity,
      },
      eventsPublished: this.#eventsPublished,
      eventsDelivered: this.#eventsDelivered,
      eventsDropped: this.#eventsDropped,
      bytesWritten: this.#bytesOfClosed + this.#bytesOfOpen(),
      httpErrors: { ...this.#httpErrors },
      requests: this.#requests,
      uptimeMs: Date.now() - this.#startedAt,
    };
  }

  /**
   * Adds middleware run before every route and event source (e.g. CORS).
   *
   * @param mw The middleware.
   * @returns This server.
   */
  use(mw: Middleware): this {
    this.#middleware.push(mw);
    this.#guard = composeMiddleware(this.#middleware);
    return this;
  }

  /**
   * Registers a plain route.
   *
   * @param method HTTP method, e.g. `GET` (also answers `HEAD`).
   * @param path Path pattern, e.g. `/rest/events/:n`.
   * @param handler Turns the request into a response.
   * @param options Middleware for this route only.
   * @returns This server.
   * @throws {RoutePatternError} When the pattern is malformed or taken.
   */
  route(
    method: string,
    path: string,
    handler: RouteHandler,
    options: { middleware?: Middleware[] } = {},
  ): this {
    const mws = options.middleware ?? [];
    this.#router.add(method.toUpperCase(), path, {
      kind: "route",
      handler,
      guard: mws.length ? composeMiddleware(mws) : undefined,
    });
    return this;
  }

  /**
   * Registers an event source at a path.
   *
   * @param path Path pattern; a `:channel` segment gives one channel per name.
   * @param options Retry, channel selection and middleware.
   * @returns The source.
   * @throws {RoutePatternError} When the pattern is malformed or taken.
   */
  eventSource(path: string, options: EventSourceOptions = {}): EventSource {
    if (options.retry !== undefined) positiveInt("retry", options.retry, 0);
    const source = new EventSource(this.#host, path, options);
    this.#router.add("GET", path, { kind: "stream", source });
    return source;
  }

  /**
   * Stops gracefully: stop accepting, flush queued events (bounded by
   * `shutdownTimeout`), end every session (free callbacks run), close the
   * remaining sockets. Idempotent.
   *
   * @returns Resolves when everything is closed.
   */
  async shutdown(): Promise<void> {
    if (this.#state !== "running") return this.finished;
    this.#state = "stopping";
    this.#stopAccepting();
    this.#drain();
    const flushed = Promise.all([...this.sessions].map((s) => s.idle()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      flushed,
      new Promise((r) => timer = setTimeout(r, this.#opts.shutdownTimeout)),
    ]);
    clearTimeout(timer);
    this.#closeEverything();
    await this.#settle();
  }

  /** Stops now: every socket is closed without flushing. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === "closed") return this.finished;
    this.#state = "stopping";
    this.#stopAccepting();
    this.#closeEverything();
    await this.#settle();
  }

  /** Same as {@linkcode shutdown}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  // ---------------------------------------------------------------- internals

  #host: SourceHost = {
    enqueue: (source, channel, bytes, fields) => {
      if (this.#state !== "running") return false;
      return this.#queue.push({ source, channel, bytes, fields });
    },
    enqueueWait: (source, channel, bytes, fields, timeoutMs) => {
      if (this.#state !== "running") return Promise.resolve(false);
      return this.#queue.pushWait({ source, channel, bytes, fields }, timeoutMs);
    },
    detach: (source) => {
      this.#router.remove("GET", source.path);
    },
  };

  #scheduleDrain = (): void => {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    queueMicrotask(() => this.#drain());
  };

  #drain(): void {
    this.#drainScheduled = false;
    for (let ev = this.#queue.shift(); ev !== undefined; ev = this.#queue.shift()) {
      this.#eventsPublished++;
      const sessions = ev.source.sessionsOf(ev.channel);
      if (sessions === undefined) continue;
      const accepted = fanOut(ev.bytes, sessions.values());
      this.#eventsDelivered += accepted;
      this.#eventsDropped += sessions.size - accepted;
    }
  }

  #keepAliveTick(): void {
    for (const s of this.sessions) {
      if (s.pendingBytes === 0) s.write(KEEP_ALIVE);
    }
  }

  #stopAccepting(): void {
    clearInterval(this.#keepAliveTimer);
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    this.#queue.wakeAll();
  }

  #closeEverything(): void {
    this.sessions.closeAll("shutdown");
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // Closed by its handler meanwhile.
      }
    }
  }

  async #settle(): Promise<void> {
    await this.#acceptLoop;
    await Promise.allSettled([...this.#handlers]);
    this.#state = "closed";
    this.#resolveFinished();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#state !== "running" || err instanceof Deno.errors.BadResource) return;
        this.#log("error", "accept failed", { error: String(err) });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      this.#accepted++;
      if (this.#conns.size >= this.#opts.maxConnections) {
        this.#connectionsRefused++;
        this.#log("warn", "connection refused: too many connections", {
          peer: peerString(conn.remoteAddr as Deno.NetAddr),
          limit: this.#opts.maxConnections,
        });
        const busy = encodeResponse(503, [["Retry-After", String(this.#opts.retryAfter)]], "", {
          close: true,
        });
        conn.write(busy).catch(() => {}).finally(() => closeQuietly(conn));
        continue;
      }
      if (!this.#secure) {
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // Not a TCP socket (or already gone): nothing to tune.
        }
      }
      this.#conns.add(conn);
      const p = this.#serveConn(conn).finally(() => {
        this.#conns.delete(conn);
        this.#handlers.delete(p);
      });
      this.#handlers.add(p);
    }
  }

  #countError(status: number): void {
    this.#httpErrors[status] = (this.#httpErrors[status] ?? 0) + 1;
  }

  /** Serves the requests of one connection until it closes or becomes a stream. */
  async #serveConn(conn: Deno.Conn): Promise<void> {
    const peer = conn.remoteAddr as Deno.NetAddr;
    const remoteAddr: PeerAddr = { hostname: peer.hostname, port: peer.port };
    let buf: Uint8Array = new Uint8Array(0);
    const chunk = new Uint8Array(16 * 1024);
    let firstRequest = true;
    try {
      for (;;) {
        // Read until a head is complete, within the header timeout.
        let head: RequestHead | undefined;
        const deadline = Date.now() +
          (firstRequest || buf.length > 0 ? this.#opts.headerTimeout : this.#opts.idleTimeout);
        for (;;) {
          try {
            head = parseRequestHead(buf, this.#opts);
          } catch (err) {
            if (err instanceof HttpError) {
              await this.#sendError(conn, err, peer);
              return;
            }
            throw err;
          }
          if (head !== undefined) break;
          const n = await this.#readWithDeadline(conn, chunk, deadline);
          if (n === "timeout") {
            if (buf.length > 0 || firstRequest) {
              await this.#sendError(conn, new HttpError(408, "Request Timeout"), peer);
            }
            return;
          }
          if (n === null) return;
          buf = concat(buf, chunk.subarray(0, n));
        }
        firstRequest = false;
        // Read the body.
        const total = head.headBytes + head.contentLength;
        while (buf.length < total) {
          const n = await this.#readWithDeadline(conn, chunk, deadline);
          if (n === "timeout") {
            await this.#sendError(conn, new HttpError(408, "Request Timeout"), peer);
            return;
          }
          if (n === null) return;
          buf = concat(buf, chunk.subarray(0, n));
        }
        const req: HttpRequest = {
          method: head.method,
          target: head.target,
          path: head.path,
          query: head.query,
          version: head.version,
          headers: head.headers,
          body: buf.slice(head.headBytes, total),
          params: {},
          remoteAddr,
          secure: this.#secure,
        };
        buf = buf.slice(total);
        this.#requests++;
        const outcome = await this.#dispatch(conn, req, head);
        if (typeof outcome === "object") {
          await this.#watchStream(conn, outcome, buf);
          return;
        }
        if (outcome === "close" || this.#state !== "running") return;
      }
    } catch (err) {
      if (!isDisconnect(err)) {
        this.#log("error", "connection failed", { peer: peerString(peer), error: String(err) });
      }
    } finally {
      closeQuietly(conn);
    }
  }

  async #readWithDeadline(
    conn: Deno.Conn,
    chunk: Uint8Array,
    deadline: number,
  ): Promise<number | null | "timeout"> {
    const ms = deadline - Date.now();
    if (ms <= 0) return "timeout";
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
    try {
      const n = await Promise.race([conn.read(chunk), timeout]);
      return n;
    } catch (err) {
      if (isDisconnect(err)) return null;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async #sendError(conn: Deno.Conn, err: HttpError, peer: Deno.NetAddr): Promise<void> {
    this.#countError(err.status);
    this.#log("info", "request rejected", {
      peer: peerString(peer),
      status: err.status,
      reason: err.message,
    });
    const bytes = encodeResponse(
      err.status,
      [["Content-Type", "text/plain; charset=utf-8"], ...err.headers],
      err.message + "\n",
      { close: err.close },
    );
    await writeAll(conn, bytes).catch(() => {});
  }

  /** Routes one request; returns the session when the connection now carries an event stream. */
  async #dispatch(
    conn: Deno.Conn,
    req: HttpRequest,
    head: RequestHead,
  ): Promise<"keep" | "close" | Session> {
    const peer = conn.remoteAddr as Deno.NetAddr;
    const extra: [string, string][] = [];
    let res: HttpResponse | undefined;
    let close = !head.keepAlive || this.#state !== "running";
    try {
      res = await this.#guard?.(req, extra);
      if (res === undefined) {
        const m = this.#router.match(req.method, req.path);
        if (m.kind === "found") {
          req.params = m.params;
          if (m.value.kind === "stream") {
            return await this.#openStream(conn, req, m.value.source, extra);
          }
          res = await m.value.guard?.(req, extra) ?? await m.value.handler(req);
        } else if (m.kind === "method-not-allowed") {
          if (req.method === "OPTIONS") {
            res = { status: 204, headers: { Allow: [...m.allow, "OPTIONS"].join(", ") } };
          } else {
            res = {
              status: 405,
              headers: { Allow: m.allow.join(", "), "Content-Type": "text/plain; charset=utf-8" },
              body: "Method Not Allowed\n",
            };
          }
        } else {
          res = notFound(req);
        }
      }
    } catch (err) {
      if (err instanceof HttpError) {
        res = {
          status: err.status,
          headers: [["Content-Type", "text/plain; charset=utf-8"], ...err.headers],
          body: err.message + "\n",
        };
        close ||= err.close;
      } else {
        this.#log("error", "handler failed", {
          peer: peerString(peer),
          path: req.path,
          error: String(err),
        });
        res = { status: 500, body: "Internal Server Error\n" };
      }
    }
    if (res.status >= 400) {
      this.#countError(res.status);
      this.#log("info", "request answered with error", {
        peer: peerString(peer),
        method: req.method,
        path: req.path,
        status: res.status,
      });
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeResponse(res.status, [...extra, ...headerPairs(res.headers)], res.body, {
        close,
        headOnly: req.method === "HEAD",
      });
    } catch (err) {
      this.#log("error", "invalid response", { path: req.path, error: String(err) });
      bytes = encodeResponse(500, [], "Internal Server Error\n", { close: true });
      close = true;
    }
    await writeAll(conn, bytes);
    return close ? "close" : "keep";
  }

  async #openStream(
    conn: Deno.Conn,
    req: HttpRequest,
    source: EventSource,
    extra: [string, string][],
  ): Promise<"close" | Session> {
    const peer = conn.remoteAddr as Deno.NetAddr;
    const res = await source.guard(req, extra);
    if (res !== undefined) {
      const bytes = encodeResponse(res.status, [...extra, ...headerPairs(res.headers)], res.body, {
        close: true,
      });
      if (res.status >= 400) {
        this.#countError(res.status);
        this.#log("info", "stream refused", {
          peer: peerString(peer),
          path: req.path,
          status: res.status,
          reason: res.status === 401 || res.status === 403 ? "auth-failed" : "rejected",
        });
      }
      await writeAll(conn, bytes);
      return "close";
    }
    const channels = source.channelsFor(req);
    if (req.method === "HEAD") {
      await writeAll(conn, encodeStreamHead(extra));
      return "close";
    }
    const release = this.sessions.reserve();
    if (release === undefined || this.#state !== "running") {
      release?.();
      this.#countError(503);
      this.#log("warn", "stream rejected: session table full", {
        peer: peerString(peer),
        path: req.path,
        capacity: this.sessions.capacity,
        reason: "rejected",
      });
      await writeAll(
        conn,
        encodeResponse(503, [...extra, ["Retry-After", String(this.#opts.retryAfter)]], "", {
          close: true,
        }),
      );
      return "close";
    }
    const lastEventId = req.headers.get("last-event-id") ?? req.query.get("lastEventId") ??
      undefined;
    const session = this.sessions.open(conn, {
      remoteAddr: peerString(peer),
      channels,
      lastEventId: lastEventId === undefined ? undefined : lastEventId.slice(0, 256),
    }, release);
    this.#sourceOf.set(session.id, source);
    const retry = source.retry ?? this.#retry;
    const headBytes = encodeStreamHead(headerPairs(extra));
    session.write(retry === undefined ? headBytes : concat(headBytes, encodeRetry(retry)));
    this.#log("info", "stream opened", {
      session: session.id,
      peer: session.remoteAddr,
      path: req.path,
      channels: channels.join(","),
      lastEventId,
    });
    source.attach(session);
    return session;
  }

  /**
   * Reads from a stream's socket until the client leaves. Bytes the client
   * sends are parsed as requests: a second request on a stream socket gets
   * `400 Session Already Active` (written in order through the session).
   */
  async #watchStream(conn: Deno.Conn, session: Session, leftover: Uint8Array): Promise<void> {
    let buf: Uint8Array = leftover;
    const chunk = new Uint8Array(512);
    for (;;) {
      let head: RequestHead | undefined;
      try {
        head = buf.length ? parseRequestHead(buf, this.#opts) : undefined;
      } catch {
        buf = new Uint8Array(0); // Garbage on a stream socket: ignored, bounded.
      }
      if (head !== undefined) {
        buf = buf.slice(head.headBytes + head.contentLength);
        this.#countError(400);
        session.write(
          encodeResponse(400, [["Content-Type", "text/plain"]], "Session Already Active\n"),
        );
        continue;
      }
      let n: number | null;
      try {
        n = await conn.read(chunk);
      } catch {
        n = null;
      }
      if (n === null) {
        session.close("client-closed");
        return;
      }
      if (session.closed) return;
      buf = concat(buf, chunk.subarray(0, n));
      if (buf.length > this.#opts.maxHeadBytes + this.#opts.maxBodyBytes) buf = new Uint8Array(0);
    }
  }

  #bytesOfOpen(): number {
    let n = 0;
    for (const s of this.sessions) n += s.bytesSent;
    return n;
  }

  #sessionClosed(session: Session, reason: CloseReason): void {
    this.#bytesOfClosed += session.bytesSent;
    const source = this.#sourceOf.get(session.id);
    this.#sourceOf.delete(session.id);
    this.#log("info", "stream closed", {
      session: session.id,
      peer: session.remoteAddr,
      reason,
      events: session.eventsSent,
      bytes: session.bytesSent,
    });
    source?.detachSession(session, reason);
  }
}

function notFound(req: HttpRequest): HttpResponse {
  let body = `Not Found\n\nURI: ${req.path}\nMethod: ${req.method}\n`;
  const args = [...req.query];
  body += `Arguments: ${args.length}\n`;
  for (const [k, v] of args) body += ` ${k}: ${v}\n`;
  return { status: 404, headers: { "Content-Type": "text/plain; charset=utf-8" }, body };
}

function peerString(addr: Deno.NetAddr): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(off ? bytes.subarray(off) : bytes);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function isDisconnect(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted || err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.NotConnected || err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.UnexpectedEof;
}

/**
 * Starts a Sluice server, listening at once.
 *
 * @param options Port, limits, TLS, logger...; see {@linkcode ServerOptions}.
 * @returns The running server.
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts
 * import { serve } from "../mod.ts";
 * await using server = serve({ port: 0, maxClients: 8 });
 * const events = server.eventSource("/events");
 * events.send("hello");
 * ```
 */
export function serve(options: ServerOptions = {}): SluiceServer {
  return new SluiceServer(options);
}
