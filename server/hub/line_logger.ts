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
 * @param options Quiet mode, batch limits, output streams.
 * @returns The logger, with `flush()`.
 */
export function createLineLogger(options: LineLoggerOptions = {}): LineLogger {
  const quiet = options.quiet ?? false;
  const flushMs = options.flushMs ?? 10;
  const maxBatch = options.maxBatchBytes ?? 64 * 1024;
  const stdout = options.stdout ?? Deno.stdout;
  const stderr = options.stderr ?? Deno.stderr;
  let batch = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A burst logs many lines in the same millisecond: format its time once.
  let stampMs = -1;
  let stamp = "";

  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (batch === "") return;
    const text = batch;
    batch = "";
    writeAllSync(stdout, encoder.encode(text));
  };

  const log = ((level, message, fields) => {
    if (quiet && (level === "info" || level === "debug")) return;
    const now = Date.now();
    if (now !== stampMs) {
      stampMs = now;
      stamp = new Date(now).toISOString();
    }
    let line = stamp + LABELS[level] + message;
    if (fields !== undefined) {
      for (const k in fields) {
        const v = fields[k];
        if (v !== undefined) line += " " + k + "=" + (typeof v === "string" ? quote(v) : v);
      }
    }
    if (level === "error" || level === "warn") {
      flush(); // Keep the order of what was logged before.
      writeAllSync(stderr, encoder.encode(line + "\n"));
      return;
    }
    batch += line + "\n";
    if (batch.length >= maxBatch) {
      flush();
    } else if (timer === undefined) {
      timer = setTimeout(flush, flushMs);
      Deno.unrefTimer(timer); // A pending line must not keep the process alive.
    }
  }) as LineLogger;
  log.flush = flush;
  return log;
}

/** `JSON.stringify` of a string, without its call for the plain ones (most peers and paths). */
function quote(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

function writeAllSync(out: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  try {
    for (let at = 0; at < bytes.length;) at += out.writeSync(bytes.subarray(at));
  } catch {
    // The log's reader is gone (closed pipe): logging must not stop the server.
  }
}
