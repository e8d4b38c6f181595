/**
 * The CLI's logger: one line per record (`<ISO time> <LEVEL> <message> k=v...`),
 * info and debug lines to stdout in batches, warnings and errors to stderr at once.
 *
 * Batching matters on a busy server: a connect burst logs a line per stream,
 * and one write per line was a third of the CPU time of accepting a stream.
 *
 * @module
 */

import type { Logger, LogLevel } from "../server_options.ts";

/** Options of {@linkcode createLineLogger}. */
export interface LineLoggerOptions {
  /** Drop info and debug records. @default {false} */
  quiet?: boolean;
  /** Most milliseconds an info line waits in the batch. @default {10} */
  flushMs?: number;
  /** Most bytes (about) batched before they are written at once. @default {65536} */
  maxBatchBytes?: number;
  /** Where info and debug lines go. @default {Deno.stdout} */
  stdout?: { writeSync(p: Uint8Array): number };
  /** Where warnings and errors go. @default {Deno.stderr} */
  stderr?: { writeSync(p: Uint8Array): number };
}

/** A {@linkcode Logger} whose batched lines can be written out now. */
export type LineLogger = Logger & {
  /** Writes the batched lines now (call before exiting). */
  flush(): void;
};

const encoder = new TextEncoder();
const LABELS: Readonly<Record<LogLevel, string>> = {
  debug: " DEBUG ",
  info: " INFO  ",
  warn: " WARN  ",
  error: " ERROR ",
};

/**
 * Creates the CLI's logger.
 *
 * Lines are written as bytes straight into one batch buffer (ASCII char by
 * char, anything else through `encodeInto`): a connect burst logs a line per
 * stream, and building each line as a string, then the batch as one more,
 * was the largest garbage per accepted stream after Deno's own.
 *
 * @param options Quiet mode, batch limits, output streams.
 * @returns The logger, with `flush()`.
 */
export function createLineLogger(options: LineLoggerOptions = {}): LineLogger {
  const quiet = options.quiet ?? false;
  const flushMs = options.flushMs ?? 10;
  const maxBatch = options.maxBatchBytes ?? 64 * 1024;
  const stdout = options.stdout ?? Deno.stdout;
  const stderr = options.stderr ?? Deno.stderr;
  /** Batched lines in `buf[0, batched)`; the line being written runs on to `at`. */
  let buf = new Uint8Array(Math.max(1024, maxBatch + 1024));
  let batched = 0;
  let at = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A burst logs many lines in the same millisecond: format its time once.
  let stampMs = -1;
  let lastLineAt = -Infinity;
  let stamp = "";

  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (batched === 0) return;
    writeAllSync(stdout, buf.subarray(0, batched));
    // The line being written (if any) moves to the front.
    buf.copyWithin(0, batched, at);
    at -= batched;
    batched = 0;
  };

  /** Room for `n` more bytes of the current line: batched lines go out first, then the buffer grows. */
  const room = (n: number): void => {
    if (at + n <= buf.length) return;
    flush();
    if (at + n <= buf.length) return;
    const bigger = new Uint8Array(Math.max(buf.length * 2, at + n));
    bigger.set(buf.subarray(0, at));
    buf = bigger;
  };

  /** Appends `s` as UTF-8. */
  const put = (s: string): void => {
    const n = s.length;
    room(n);
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      buf[at + i] = c;
    }
    at += i;
    if (i === n) return;
    const rest = s.slice(i);
    room(rest.length * 3);
    at += encoder.encodeInto(rest, buf.subarray(at)).written;
  };

  /** Appends `JSON.stringify(s)`, without its call for the plain strings (most peers and paths). */
  const putQuoted = (s: string): void => {
    const n = s.length;
    room(n + 2);
    const from = at;
    buf[at++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) {
        at = from;
        put(JSON.stringify(s));
        return;
      }
      buf[at++] = c;
    }
    buf[at++] = 0x22;
  };

  const log = ((level, message, fields) => {
    if (quiet && (level === "info" || level === "debug")) return;
    const now = Date.now();
    if (now !== stampMs) {
      stampMs = now;
      stamp = isoTime(now);
    }
    put(stamp);
    put(LABELS[level]);
    put(message);
    if (fields !== undefined) {
      for (const k in fields) {
        const v = fields[k];
        if (v === undefined) continue;
        put(" ");
        put(k);
        put("=");
        if (typeof v === "string") putQuoted(v);
        else put(String(v));
      }
    }
    room(1);
    buf[at++] = 0x0a;
    if (level === "error" || level === "warn") {
      // Keep the order of what was logged before (flush moves this line to
      // the front); the line itself goes to stderr.
      flush();
      writeAllSync(stderr, buf.subarray(0, at));
      at = 0;
      return;
    }
    batched = at;
    if (batched >= maxBatch || (timer === undefined && now - lastLineAt > flushMs)) {
      // A line after a quiet spell goes out at once (no timer for an idle hub's
      // few lines); lines that follow within flushMs are batched.
      lastLineAt = now;
      flush();
    } else if (timer === undefined) {
      timer = setTimeout(flush, flushMs);
      Deno.unrefTimer(timer); // A pending line must not keep the process alive.
    }
  }) as LineLogger;
  log.flush = flush;
  return log;
}

const pad = (n: number, width: number): string => String(n).padStart(width, "0");

/**
 * `new Date(ms).toISOString()`, by arithmetic: V8's `toISOString` sets up its
 * date and time-zone caches on first use (about 2 MB of an idle hub's memory,
 * measured), which a UTC timestamp does not need. Days to a civil date by
 * Howard Hinnant's `civil_from_days`.
 *
 * @param ms Milliseconds since the epoch (1970 to 9999).
 * @returns E.g. `2026-12-06T16:04:45.123Z`.
 * @example
 * ```ts
 * import { isoTime } from "./line_logger.ts";
 * isoTime(0); // "1970-01-01T00:00:00.000Z"
 * ```
 */
export function isoTime(ms: number): string {
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) -
      Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.floor(rest / 1000);
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}.${
    pad(rest - s * 1000, 3)
  }Z`;
}

function writeAllSync(out: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  try {
    for (let at = 0; at < bytes.length;) at += out.writeSync(bytes.subarray(at));
  } catch {
    // The log's reader is gone (closed pipe): logging must not stop the server.
  }
}
