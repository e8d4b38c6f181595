/**
 * The options of the SQLite history store and their defaults, apart from the
 * store itself so that reading them (the CLI's flag table) does not load
 * `node:sqlite`.
 *
 * @module
 */

import { DEFAULT_HISTORY_OPTIONS, type HistoryOptions } from "./history.ts";

/** How hard each commit is pushed to the disk. */
export type SqliteSync = "normal" | "full";

/** Options of `SqliteHistory`: retention, first id, and durability. */
export interface SqliteHistoryOptions extends HistoryOptions {
  /**
   * SQLite `synchronous` setting in WAL mode. `"normal"`: a commit is in the
   * operating system once `append` returns, so it survives the process being
   * killed (`kill -9`, a crash), not a power cut. `"full"`: the log is also
   * flushed to the device on every commit, surviving power loss, at the cost
   * of one `fsync` per event.
   * @default {"normal"}
   */
  synchronous?: SqliteSync;
}

/** Defaults of {@linkcode SqliteHistoryOptions}. */
export const DEFAULT_SQLITE_HISTORY_OPTIONS = {
  ...DEFAULT_HISTORY_OPTIONS,
  synchronous: "normal" as SqliteSync,
} as const;
