/**
 * The Sluice server facade: wires the HTTP layer (`server/http/`), the stream
 * layer (`server/stream/`) and the options, and keeps the public API: `use`,
 * `route`, `onNotFound`, `eventSource`, `stats`, `shutdown`, `close` and
 * `Symbol.asyncDispose`.
 *
 * @module
 */

import { MemoryHistory } from "../queue/history.ts";
import type { SessionTable } from "../sessions/session_table.ts";
import { HttpServer } from "./http/http_server.ts";
import { RouteTable } from "./http/route_table.ts";
import type { Middleware, RouteHandler } from "./http/types.ts";
import type { EventSource, EventSourceOptions } from "./stream/event_source.ts";
import { Streams } from "./stream/streams.ts";
import {
  type Logger,
  positiveInt,
  type ResolvedServerOptions,
  resolveServerOptions,
  type ServerOptions,
} from "./server_options.ts";
import { collectStats, type ServerStats } from "./server_stats.ts";

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
  /**
   * Resolves when the first connection is accepted: what watches the
   * server's activity (e.g. `startMemoryReclaim`) can start then, so that an
   * idle server keeps no timer.
   */
  readonly active: Promise<void>;

  readonly #opts: ResolvedServerOptions;
  readonly #routes: RouteTable;
  readonly #http: HttpServer;
  readonly #streams: Streams;
  readonly #startedAt = Date.now();
  #state: "running" | "stopping" | "closed" = "running";
  #resolveFinished!: () => void;

  /** @internal Use {@linkcode serve}. */
  constructor(options: ServerOptions = {}) {
    const opts = this.#opts = resolveServerOptions(options);
    const logger = options.logger;
    const log: Logger = logger === undefined ? () => {} : (level, message, fields) => {
      try {
        logger(level, message, fields);
      } catch {
        // A failing logger must not take a connection (or the accept loop) down.
      }
    };
    this.#routes = new RouteTable(log);
    this.#streams = new Streams({
      ...opts,
      limits: opts,
      retry: options.retry,
      history: options.historyStore ??
        (opts.history > 0
          ? new MemoryHistory({ maxEvents: opts.history, maxBytes: opts.historyBytes })
          : undefined),
      log,
    });
    this.sessions = this.#streams.sessions;
    let markActive!: () => void;
    this.active = new Promise((resolve) => markActive = resolve);
    const sourceOf = this.#streams.sourceOf;
    this.#http = new HttpServer({
      limits: opts,
      tls: options.cert === undefined ? undefined : { cert: options.cert, key: options.key! },
      handler: this.#routes.handle,
      log,
      adoptedSockets: () => sourceOf.size,
      onFirstConnection: () => markActive(),
    });
    this.addr = this.#http.addr;
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
    const http = this.#http;
    const routes = this.#routes;
    this.#streams.start({
      countError: (status) => http.countError(status),
      connectionEnded: (peer, reason) => http.connectionEnded(peer, reason),
      busyResponse: (extra) => http.busyResponse(extra),
      addRoute: (path, open) => routes.takeover("GET", path, open),
      removeRoute: (path) => routes.remove("GET", path),
    });
    try {
      options.onListen?.(this.addr);
    } catch (err) {
      // No server to hand back: release the port and the timers, or the process never exits.
      this.#state = "stopping";
      this.#stopAccepting();
      throw err;
    }
    this.#http.start();
  }

  /** Counters since start. */
  get stats(): ServerStats {
    return collectStats(this.#http, this.#streams, this.#startedAt);
  }

  /**
   * Adds middleware run before every route and event source (e.g. CORS).
   *
   * @param mw The middleware.
   * @returns This server.
   */
  use(mw: Middleware): this {
    this.#routes.use(mw);
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
    this.#routes.route(method, path, handler, options.middleware);
    return this;
  }

  /**
   * Sets the handler for requests that match no route, like
   * ESP8266WebServer's `onNotFound`. The default answers `404` with a
   * `text/plain` page listing the URI, method and arguments.
   *
   * @param handler Turns the unmatched request into a response.
   * @returns This server.
   */
  onNotFound(handler: RouteHandler): this {
    this.#routes.onNotFound(handler);
    return this;
  }

  /**
   * Registers an event source at a path, or at several paths that then share
   * its channels, history and streams (e.g. `/events/:channel` and
   * `/events?channel=a&channel=b`).
   *
   * @param path Path pattern (or patterns); a `:channel` segment gives one channel per name.
   * @param options Retry, channel selection and middleware.
   * @returns The source.
   * @throws {RoutePatternError} When a pattern is malformed or taken.
   * @throws {RangeError} When `retry` is not a non-negative integer.
   */
  eventSource(path: string | readonly string[], options: EventSourceOptions = {}): EventSource {
    if (options.retry !== undefined) positiveInt("retry", options.retry, 0);
    const paths = typeof path === "string" ? [path] : path;
    if (paths.length === 0) throw new TypeError("eventSource needs at least one path");
    return this.#streams.addSource(paths, options);
  }

  /**
   * Stops gracefully: stop accepting, flush queued events and end each stream
   * with a jittered `retry:` (so clients do not all come back at once; bounded
   * by `shutdownTimeout`), end every session (free callbacks run), close the
   * remaining sockets and the history store. Idempotent.
   *
   * @returns Resolves when everything is closed.
   */
  async shutdown(): Promise<void> {
    if (this.#state !== "running") return this.finished;
    this.#state = "stopping";
    this.#stopAccepting();
    await this.#streams.flush(this.#opts.shutdownTimeout);
    this.#closeEverything();
    await this.#settle();
  }

  /** Stops now: every socket is closed without flushing. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === "closed") return this.finished;
    this.#state = "stopping";
    this.#stopAccepting();
    this.#streams.delivery.cancelDrain(); // Closing now: what is still queued is not sent.
    this.#closeEverything();
    await this.#settle();
  }

  /** Same as {@linkcode shutdown}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  #stopAccepting(): void {
    this.#streams.stop();
    this.#http.stopAccepting();
  }

  #closeEverything(): void {
    this.#streams.closeAll();
    this.#http.closeAll();
  }

  async #settle(): Promise<void> {
    await this.#http.settled();
    await this.#streams.settle();
    this.#state = "closed";
    this.#resolveFinished();
  }
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
