/**
 * Options of the Redis engine and their defaults, in one block.
 *
 * @module
 */

/** Severity of a log line. */
export type RedisEngineLogLevel = "debug" | "info" | "warn" | "error";

/** Where the engine reports what it does (connections, gaps, restarts); no `console` is used. */
export type RedisEngineLogger = (
  level: RedisEngineLogLevel,
  message: string,
  fields?: Record<string, unknown>,
) => void;

/** How streams are trimmed to their bound. */
export type RedisTrimming = "approximate" | "exact";

/** Options of `RedisEngine.connect`. */
export interface RedisEngineOptions {
  /**
   * Prefix of every key. Keep the `{...}` hash tag so that all keys map to
   * one slot, as the publish script touches several of them.
   * @default {"{sluice}:"}
   */
  prefix?: string;
  /** Most events kept per history key (`MAXLEN` of its stream). @default {1000} */
  maxEvents?: number;
  /**
   * Most events kept in the global log that followers read (`MAXLEN` of the
   * log stream). A follower further behind than this gets a gap.
   * @default {100000}
   */
  logMax?: number;
  /**
   * `"approximate"` trims with `MAXLEN ~` (cheap; keeps up to one stream
   * node, about 100 entries, more than the bound); `"exact"` with `MAXLEN =`.
   * @default {"approximate"}
   */
  trimming?: RedisTrimming;
  /**
   * Longest wait for Redis to answer a command; past it `append` rejects
   * with `EngineUnavailableError`.
   * @default {1000}
   */
  commandTimeoutMs?: number;
  /**
   * Most appends waiting for Redis at once; past it `append` rejects at
   * once with `EngineUnavailableError` (`overloaded`) instead of queueing
   * work that would only time out.
   * @default {1024}
   */
  maxPendingAppends?: number;
  /** Longest wait to open a connection. @default {2000} */
  connectTimeoutMs?: number;
  /** How long one `XREAD BLOCK` of the feed waits for new events. @default {1000} */
  blockMs?: number;
  /** Most log entries read (and offered to the sink) at once. @default {256} */
  batchSize?: number;
  /** First delay before reconnecting; doubled per failed attempt, with jitter. @default {50} */
  backoffMinMs?: number;
  /** Longest delay between reconnection attempts. @default {2000} */
  backoffMaxMs?: number;
  /** How often the feed's watchdog compares the counter with the feed's position. @default {1000} */
  watchdogIntervalMs?: number;
  /**
   * How long the feed may read nothing while the counter is ahead of it
   * before the watchdog restarts its connection.
   * @default {3000}
   */
  watchdogStallMs?: number;
  /**
   * Certificates to trust for `rediss://` (PEM), e.g. a private CA; the
   * system's trusted roots when not given.
   * @default {undefined}
   */
  tlsCa?: string;
  /** Receives log lines; nothing is logged without it. @default {undefined} */
  logger?: RedisEngineLogger;
}

/** Defaults of {@linkcode RedisEngineOptions}. */
export const DEFAULT_REDIS_ENGINE_OPTIONS = {
  prefix: "{sluice}:",
  maxEvents: 1000,
  logMax: 100_000,
  trimming: "approximate" as RedisTrimming,
  commandTimeoutMs: 1000,
  maxPendingAppends: 1024,
  connectTimeoutMs: 2000,
  blockMs: 1000,
  batchSize: 256,
  backoffMinMs: 50,
  backoffMaxMs: 2000,
  watchdogIntervalMs: 1000,
  watchdogStallMs: 3000,
} as const;
