/**
 * The server's options, their defaults (one block, like
 * `HTTPD_DEFAULT_CONFIG`), the logger hook, the counters it exposes, and the
 * checks applied to options at construction.
 *
 * @module
 */

import type { HistoryStore } from "../queue/history.ts";
import type { SlowConsumerPolicy } from "../sessions/session.ts";
import { DEFAULT_REQUEST_LIMITS } from "./http/request_parser.ts";
import type { Logger } from "./http/types.ts";

export type { ConnectionCloseReason, Logger, LogLevel } from "./http/types.ts";
import { checkReasonPhrase } from "./http/response_head.ts";

/** Options of {@linkcode serve}. Every default is in {@linkcode DEFAULT_SERVER_OPTIONS}. */
export interface ServerOptions {
  /** TCP port; `0` picks a free one. @default {8080} */
  port?: number;
  /** Address to listen on. @default {"0.0.0.0"} */
  hostname?: string;
  /**
   * Share the port with other processes (Linux `SO_REUSEPORT`: the kernel
   * spreads connections over them). Deno 2.9 needs `--unstable-net` for it.
   * Only for instances that share their events (a shared history store such
   * as the Redis engine), or they would diverge.
   * @default {false}
   */
  reusePort?: boolean;
  /** PEM certificate chain; with `key`, the server listens with TLS. */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /** Capacity of the session table: most event streams at once. @default {1024} */
  maxClients?: number;
  /**
   * Most event streams one peer address may hold open at once, so that one
   * host cannot take every slot of the table; past it, a new stream from that
   * address gets the same answer as a full table (`busy`), counted in
   * `stats.perIpRejected`. An IPv4-mapped IPv6 peer counts as its IPv4
   * address. Left unset, the default applies to every peer except loopback
   * ones (127.0.0.0/8, `::1`: a local reverse proxy or the machine itself);
   * a value given here applies to every peer, loopback included. `0`: no cap
   * (e.g. behind a proxy on another host, where every stream comes from it).
   * @default {min(64, max(1, ceil(maxClients / 4))), loopback exempt}
   */
  maxClientsPerIp?: number;
  /** Most sockets at once, streams and plain requests together. @default {maxClients + 256} */
  maxConnections?: number;
  /** Capacity of the message queue. @default {1024} */
  queueSize?: number;
  /**
   * Seconds between keep-alive comments on each stream; `0` turns them off
   * (stream sockets then get TCP keep-alive probes instead, so that a peer
   * that vanished is still found). @default {15}
   */
  keepAlive?: number;
  /** Reconnection delay (ms) sent as `retry:` first on every stream. */
  retry?: number;
  /** Most bytes queued for one stream before the slow-consumer policy applies. @default {1048576} */
  maxPendingBytes?: number;
  /**
   * Over budget: `"disconnect"` the stream (close reason `"slow-consumer"`;
   * the client reconnects and replays from history) or `"drop"` events (the
   * stream stays; once it has caught up it gets a `sluice.gap` event).
   * @default {"disconnect"}
   */
  slowConsumer?: SlowConsumerPolicy;
  /**
   * Milliseconds a socket write may stay in flight (the client not reading)
   * before the session is closed as `"slow-consumer"`; `0`: no deadline.
   * @default {0}
   */
  writeTimeout?: number;
  /**
   * Events kept per channel in memory for `Last-Event-ID` replay; `0` turns
   * history (and server-assigned ids) off. Ignored when `historyStore` is given.
   * @default {1000}
   */
  history?: number;
  /** Bytes of events kept per channel in memory (see `history`). @default {1048576} */
  historyBytes?: number;
  /**
   * The history store: e.g. a `SqliteHistory` so that history survives
   * restarts, or any {@linkcode HistoryStore}. The server names a channel's
   * history `<source path>#<channel>` in it, and closes it when it stops.
   * @default {new MemoryHistory({ maxEvents: history, maxBytes: historyBytes })}
   */
  historyStore?: HistoryStore;
  /**
   * When the session table is full: `"503"` answers `503` (a browser's
   * `EventSource` then stops for good); `"retry"` answers `200
   * text/event-stream` with a jittered `retry:` (around `retryAfter` seconds)
   * and closes, so browsers keep retrying.
   * @default {"503"}
   */
  busy?: BusyPolicy;
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
  /**
   * Most connections at once still receiving a request head (or body): the
   * slowloris cap. A connection counts once a read leaves its request
   * incomplete, or once it has sent nothing for `min(1 s, headerTimeout / 4)`;
   * one that sends its whole request at once never counts. Past the cap, the
   * connection counted longest of the peer address that holds the most is
   * answered `503` and closed, counted in
   * `stats.connectionsClosed["pending-heads-full"]`. At `maxConnections`, a
   * connection still receiving its request is evicted the same way to let a
   * newcomer in, so that one host's silent sockets cannot lock others out.
   * @default {512}
   */
  maxPendingHeads?: number;
  /**
   * How many stream sockets keep a read pending, so that a client that leaves
   * is noticed at once (its FIN) and a second request on a stream socket gets
   * `400 Session Already Active`. `true`: every stream; `false` or `0`: none;
   * `N`: at most N at once (a stream opened while N are watched is not). An
   * unwatched stream holds no read, no buffer and no callback while idle
   * (Deno's pending read costs about 2.5 KiB per stream): a departed client
   * is found when a write to it fails, at the latest at the second keep-alive
   * comment, as ESP-IDF's demos do. The default watches every stream of a
   * small table and bounds what a large one spends on watching.
   * @default {1024}
   */
  watchStreams?: boolean | number;
  /** Milliseconds an idle keep-alive connection (no stream) stays open. @default {30000} */
  idleTimeout?: number;
  /** Seconds a client should wait after a 503 (`Retry-After`). @default {5} */
  retryAfter?: number;
  /**
   * Reason phrase of the `503` sent when the session table or `maxConnections`
   * is full, e.g. ESP-IDF's `"Server Busy"`.
   * @default {"Service Unavailable"}
   */
  busyStatusText?: string;
  /** Milliseconds `shutdown()` waits for queued events to flush. @default {5000} */
  shutdownTimeout?: number;
  /** Receives log records. */
  logger?: Logger;
  /** Called once listening. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** How a full session table answers a new stream: `503`, or `200` with a `retry:`. */
export type BusyPolicy = "503" | "retry";

/** Defaults of {@linkcode ServerOptions}, like `HTTPD_DEFAULT_CONFIG`. */
export const DEFAULT_SERVER_OPTIONS = {
  port: 8080,
  hostname: "0.0.0.0",
  reusePort: false,
  maxClients: 1024,
  /** The most a default per-peer cap is (it is also at most a quarter of `maxClients`). */
  maxClientsPerIp: 64,
  queueSize: 1024,
  keepAlive: 15,
  maxPendingBytes: 1024 * 1024,
  slowConsumer: "disconnect" as SlowConsumerPolicy,
  writeTimeout: 0,
  history: 1000,
  historyBytes: 1024 * 1024,
  busy: "503" as BusyPolicy,
  maxRequestLine: DEFAULT_REQUEST_LIMITS.maxRequestLine,
  maxHeadBytes: DEFAULT_REQUEST_LIMITS.maxHeadBytes,
  maxHeaders: DEFAULT_REQUEST_LIMITS.maxHeaders,
  maxBodyBytes: DEFAULT_REQUEST_LIMITS.maxBodyBytes,
  headerTimeout: 10_000,
  maxPendingHeads: 512,
  watchStreams: 1024,
  idleTimeout: 30_000,
  retryAfter: 5,
  busyStatusText: "Service Unavailable",
  shutdownTimeout: 5_000,
} as const;

/** Checks a `busy` option value. */
export function busyPolicy(value: string): BusyPolicy {
  if (value !== "503" && value !== "retry") {
    throw new RangeError(`busy must be "503" or "retry": received ${JSON.stringify(value)}`);
  }
  return value;
}

/** Checks a reason phrase option (e.g. `busyStatusText`). */
export function reasonPhrase(name: string, value: string): string {
  try {
    return checkReasonPhrase(value);
  } catch {
    throw new TypeError(
      `${name} must be tab, space or visible ASCII: received ${JSON.stringify(value)}`,
    );
  }
}

/** Checks an integer option, naming it and the received value in the error. */
export function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) {
    const what = min === 0 ? "a non-negative integer" : "a positive integer";
    throw new RangeError(`${name} must be ${what}: received ${value}`);
  }
  return value;
}

function watchLimit(value: boolean | number): number {
  if (value === true) return Infinity;
  if (value === false) return 0;
  return positiveInt("watchStreams", value, 0);
}

/** The options a server runs with: every default applied, every value checked. */
export type ResolvedServerOptions =
  & Required<
    Omit<
      ServerOptions,
      "cert" | "key" | "retry" | "logger" | "onListen" | "historyStore" | "watchStreams"
    >
  >
  & {
    /** Most streams watched at once (`Infinity` for `true`, `0` for `false`). */
    watchStreams: number;
    /** Loopback peers are not counted against `maxClientsPerIp` (it was not given). */
    exemptLoopback: boolean;
  };

/**
 * Applies the defaults of {@linkcode DEFAULT_SERVER_OPTIONS} and checks every
 * option, in this order: `maxClients`, `port`, the others as listed in the
 * result, `maxConnections` against `maxClients`, `retry`, `cert` with `key`.
 *
 * @param options The options given to `serve`.
 * @returns The options the server runs with (`retry`, TLS, the logger and
 * hooks, and the history store are read from `options` itself).
 * @throws {RangeError} When a value is out of range.
 * @throws {TypeError} When a reason phrase is invalid, or only one of `cert` and `key` is given.
 */
export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  const d = DEFAULT_SERVER_OPTIONS;
  const maxClients = positiveInt("maxClients", options.maxClients ?? d.maxClients);
  const port = options.port ?? d.port;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be an integer from 0 to 65535: received ${port}`);
  }
  const opts: ResolvedServerOptions = {
    port,
    hostname: options.hostname ?? d.hostname,
    reusePort: options.reusePort ?? d.reusePort,
    maxClients,
    maxClientsPerIp: options.maxClientsPerIp === undefined
      ? Math.min(d.maxClientsPerIp, Math.max(1, Math.ceil(maxClients / 4)))
      : positiveInt("maxClientsPerIp", options.maxClientsPerIp, 0),
    exemptLoopback: options.maxClientsPerIp === undefined,
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
    writeTimeout: positiveInt("writeTimeout", options.writeTimeout ?? d.writeTimeout, 0),
    history: positiveInt("history", options.history ?? d.history, 0),
    historyBytes: positiveInt("historyBytes", options.historyBytes ?? d.historyBytes),
    busy: busyPolicy(options.busy ?? d.busy),
    maxRequestLine: positiveInt("maxRequestLine", options.maxRequestLine ?? d.maxRequestLine),
    maxHeadBytes: positiveInt("maxHeadBytes", options.maxHeadBytes ?? d.maxHeadBytes),
    maxHeaders: positiveInt("maxHeaders", options.maxHeaders ?? d.maxHeaders),
    maxBodyBytes: positiveInt("maxBodyBytes", options.maxBodyBytes ?? d.maxBodyBytes, 0),
    headerTimeout: positiveInt("headerTimeout", options.headerTimeout ?? d.headerTimeout),
    maxPendingHeads: positiveInt(
      "maxPendingHeads",
      options.maxPendingHeads ?? d.maxPendingHeads,
    ),
    watchStreams: watchLimit(options.watchStreams ?? d.watchStreams),
    idleTimeout: positiveInt("idleTimeout", options.idleTimeout ?? d.idleTimeout),
    retryAfter: positiveInt("retryAfter", options.retryAfter ?? d.retryAfter, 0),
    busyStatusText: reasonPhrase("busyStatusText", options.busyStatusText ?? d.busyStatusText),
    shutdownTimeout: positiveInt(
      "shutdownTimeout",
      options.shutdownTimeout ?? d.shutdownTimeout,
      0,
    ),
  };
  if (opts.maxConnections < maxClients) {
    throw new RangeError(
      `maxConnections must be at least maxClients (${maxClients}): received ${opts.maxConnections}`,
    );
  }
  if (options.retry !== undefined) positiveInt("retry", options.retry, 0);
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new TypeError("cert and key must be given together");
  }
  return opts;
}
