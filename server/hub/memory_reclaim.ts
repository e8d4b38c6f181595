/**
 * Gives memory back after a burst of connections: once the burst has
 * settled, one memory-reducing garbage collection.
 *
 * Why: during a large connect burst every new stream's state survives its
 * first collections, so V8 grows its young generation to the cap (16 MiB per
 * semi-space with `deno task start`) and, after 10 000 streams connected at
 * once, did not shrink it again while the server idled (after 1 000 or 5 000
 * it did, by itself). Measured at 10 000: RSS 117 MB before, 85 MB after one
 * memory-reducing collection (3.7 instead of 6.8 KiB per stream), which
 * paused the event loop for 60 to 100 ms. So it runs only after a burst
 * (many connections opened or streams closed), only once nothing has
 * connected or closed for a while, only while the young generation is still
 * grown, and only where the process exposes `gc` (`--v8-flags=--expose-gc`,
 * as `deno task start` does); elsewhere it does nothing. A process-wide
 * decision, so the CLI starts it; an app that imports Sluice decides for itself.
 *
 * @module
 */

import { type Logger, positiveInt } from "../server_options.ts";
import type { ServerStats } from "../server_stats.ts";

/** Options of {@linkcode startMemoryReclaim}. */
export interface MemoryReclaimOptions {
  /** Connections opened plus streams closed since the last collection that make a burst. @default {5000} */
  afterConnections?: number;
  /** Collect only while V8's young generation has at least this many MiB committed. @default {16} */
  minYoungMb?: number;
  /** Milliseconds with no connection opened and no stream closed before collecting. @default {1000} */
  quietMs?: number;
  /** How often the counters are looked at (ms). @default {250} */
  checkMs?: number;
  /** Where the one line per collection goes (before and after RSS, pause). */
  logger?: Logger;
  /** The collector; by default `globalThis.gc` (present with `--expose-gc`). */
  gc?: (options?: unknown) => unknown;
}

/** Defaults of {@linkcode MemoryReclaimOptions}. */
export const DEFAULT_MEMORY_RECLAIM_OPTIONS = {
  afterConnections: 5000,
  minYoungMb: 16,
  quietMs: 1000,
  checkMs: 250,
} as const;

/** A running reclaimer; stop it with `stop()` (or `using`). */
export interface MemoryReclaim extends Disposable {
  /** Collections run so far. */
  readonly collections: number;
  /** Stops watching. Idempotent. */
  stop(): void;
}

/**
 * Starts collecting after connection bursts, for a server (or anything with
 * its `stats`).
 *
 * @param server The server whose connections are watched.
 * @param options Burst size, quiet time, logger.
 * @returns The reclaimer, or `undefined` when no collector is available
 * (the process was started without `--expose-gc`) or `afterConnections` is 0.
 * @throws {RangeError} When an option is not a non-negative integer.
 *
 * @example
 * ```ts
 * import { serve, startMemoryReclaim } from "../../mod.ts";
 * await using server = serve({ port: 0 });
 * using _reclaim = startMemoryReclaim(server, { gc: () => {} }); // `globalThis.gc` by default
 * ```
 */
export function startMemoryReclaim(
  server: { readonly stats: ServerStats; readonly active?: Promise<void> },
  options: MemoryReclaimOptions = {},
): MemoryReclaim | undefined {
  const d = DEFAULT_MEMORY_RECLAIM_OPTIONS;
  const after = positiveInt("afterConnections", options.afterConnections ?? d.afterConnections, 0);
  const quietMs = positiveInt("quietMs", options.quietMs ?? d.quietMs, 0);
  const checkMs = positiveInt("checkMs", options.checkMs ?? d.checkMs, 0);
  const minYoung = positiveInt("minYoungMb", options.minYoungMb ?? d.minYoungMb, 0) * 1024 * 1024;
  const gc = options.gc ?? (globalThis as { gc?: (options?: unknown) => unknown }).gc;
  if (gc === undefined || after === 0) return undefined;
  const log = options.logger ?? (() => {});
  const churnOf = (s: ServerStats): number => {
    let closed = 0;
    for (const n of Object.values(s.sessions.closed)) closed += n;
    return s.accepted + closed;
  };
  let collections = 0;
  let v8: V8Heap | undefined;
  let loading: Promise<void> | undefined;
  let seen = churnOf(server.stats);
  let changedAt = Date.now();
  let atLastCollection = seen;
  const check = (): void => {
    const churn = churnOf(server.stats);
    const now = Date.now();
    if (churn !== seen) {
      seen = churn;
      changedAt = now;
      return;
    }
    if (churn - atLastCollection < after || now - changedAt < quietMs) return;
    if (v8 === undefined) {
      // node:v8 is loaded once a burst has passed: not at start (an idle hub
      // stays small) nor during the burst. The decision waits for the next check.
      loading ??= import("node:v8").then((m) => {
        v8 = m;
      }, (err) => log("error", "memory reclaim cannot load node:v8", { error: String(err) }));
      return;
    }
    atLastCollection = churn;
    if (youngCommitted(v8) < minYoung) return; // V8 gave it back by itself.
    const before = Deno.memoryUsage().rss;
    const t0 = performance.now();
    try {
      // V8's memory-reducing full collection: also shrinks the young generation.
      gc({ type: "major", execution: "sync", flavor: "last-resort" });
    } catch (err) {
      log("error", "memory reclaim failed", { error: String(err) });
      return;
    }
    collections++;
    log("info", "memory reclaimed", {
      rssBeforeMb: mb(before),
      rssAfterMb: mb(Deno.memoryUsage().rss),
      pauseMs: Math.round(performance.now() - t0),
      streams: server.stats.sessions.open,
    });
  };
  let timer: ReturnType<typeof setInterval> | undefined;
  let stopped = false;
  const arm = (): void => {
    if (stopped || timer !== undefined) return;
    timer = setInterval(check, checkMs);
    Deno.unrefTimer(timer);
  };
  // An idle server keeps no timer: the checks start with its first connection.
  if (server.active === undefined) arm();
  else server.active.then(arm);
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
  };
  return {
    get collections() {
      return collections;
    },
    stop,
    [Symbol.dispose]: stop,
  };
}

/** What memory reclaim uses of `node:v8` (a type-only import would load it at start). */
interface V8Heap {
  getHeapSpaceStatistics(): { space_name: string; space_size: number }[];
}

function youngCommitted(v8: V8Heap): number {
  let bytes = 0;
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.space_name === "new_space") bytes += s.space_size;
  }
  return bytes;
}

function mb(bytes: number): number {
  return Math.round(bytes / 1024 / 1024);
}
