/**
 * Internal: applies the defaults of the Redis engine's options and checks
 * them; the reconnection backoff.
 *
 * @module
 */

import {
  DEFAULT_REDIS_ENGINE_OPTIONS,
  type RedisEngineLogger,
  type RedisEngineOptions,
  type RedisTrimming,
} from "./options.ts";

/** Options with every default applied, checked. */
export interface ResolvedRedisEngineOptions {
  prefix: string;
  maxEvents: number;
  logMax: number;
  trimming: RedisTrimming;
  commandTimeoutMs: number;
  maxPendingAppends: number;
  connectTimeoutMs: number;
  blockMs: number;
  batchSize: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  watchdogIntervalMs: number;
  watchdogStallMs: number;
  logger: RedisEngineLogger | undefined;
  tlsCa: string | undefined;
}

function positiveInt(name: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? "a positive integer"
      : `an integer in 1..${max}`;
    throw new RangeError(`${name} must be ${range}: received ${value}`);
  }
  return value;
}

/**
 * Applies the defaults and checks every option.
 *
 * @param options The caller's options.
 * @returns The options to use.
 * @throws {RangeError} When an option is out of range.
 */
export function resolveRedisEngineOptions(
  options: RedisEngineOptions = {},
): ResolvedRedisEngineOptions {
  const d = DEFAULT_REDIS_ENGINE_OPTIONS;
  const prefix = options.prefix ?? d.prefix;
  if (typeof prefix !== "string" || prefix.length === 0) {
    throw new RangeError(`prefix must be a non-empty string: received ${JSON.stringify(prefix)}`);
  }
  const trimming = options.trimming ?? d.trimming;
  if (trimming !== "approximate" && trimming !== "exact") {
    throw new RangeError(
      `trimming must be "approximate" or "exact": received ${JSON.stringify(trimming)}`,
    );
  }
  const backoffMinMs = positiveInt("backoffMinMs", options.backoffMinMs ?? d.backoffMinMs);
  const backoffMaxMs = positiveInt("backoffMaxMs", options.backoffMaxMs ?? d.backoffMaxMs);
  if (backoffMaxMs < backoffMinMs) {
    throw new RangeError(
      `backoffMaxMs must be at least backoffMinMs (${backoffMinMs}): received ${backoffMaxMs}`,
    );
  }
  const logger = options.logger;
  if (logger !== undefined && typeof logger !== "function") {
    throw new RangeError(`logger must be a function: received ${typeof logger}`);
  }
  return {
    prefix,
    trimming,
    maxEvents: positiveInt("maxEvents", options.maxEvents ?? d.maxEvents),
    logMax: positiveInt("logMax", options.logMax ?? d.logMax),
    commandTimeoutMs: positiveInt(
      "commandTimeoutMs",
      options.commandTimeoutMs ?? d.commandTimeoutMs,
    ),
    maxPendingAppends: positiveInt(
      "maxPendingAppends",
      options.maxPendingAppends ?? d.maxPendingAppends,
    ),
    connectTimeoutMs: positiveInt(
      "connectTimeoutMs",
      options.connectTimeoutMs ?? d.connectTimeoutMs,
    ),
    blockMs: positiveInt("blockMs", options.blockMs ?? d.blockMs),
    batchSize: positiveInt("batchSize", options.batchSize ?? d.batchSize, 100_000),
    backoffMinMs,
    backoffMaxMs,
    watchdogIntervalMs: positiveInt(
      "watchdogIntervalMs",
      options.watchdogIntervalMs ?? d.watchdogIntervalMs,
    ),
    watchdogStallMs: positiveInt("watchdogStallMs", options.watchdogStallMs ?? d.watchdogStallMs),
    logger,
    tlsCa: options.tlsCa,
  };
}

/**
 * The delay before reconnection attempt `attempt` (0-based): exponential
 * from `min`, capped at `max`, with "equal jitter" (half fixed, half random)
 * so that many instances do not reconnect in step.
 *
 * @param attempt Failed attempts so far.
 * @param min First delay.
 * @param max Longest delay.
 * @returns Milliseconds to wait.
 */
export function backoffDelay(attempt: number, min: number, max: number): number {
  const ceiling = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
}
