/**
 * Internal: incremental HTTP response-head and SSE stream parsing for the
 * subscriber load tool, shared by its engines. Counts events (a blank line
 * ending a block that had a `data` line, as browsers dispatch), decodes chunked
 * transfer coding, handles splits across reads, and samples latency from
 * `data: t=<CLOCK_MONOTONIC ns>`. No allocation per event.
 *
 * @module
 */
import { Histogram } from "./_histogram.ts";
import { monoNs, type StatsPage } from "./_libc.ts";

const LF = 10;
const CR = 13;
const CH_D = 0x64;

/** Per-connection parser state (flat, no closures). */
export interface StreamState {
  /** body uses chunked transfer coding */
  chunked: boolean;
  /** chunk decoder: 0 size line, 1 extension until LF, 2 data, 3 CRLF after data, 4 finished */
  cstate: number;
  /** bytes left in the current chunk (or the size being parsed) */
  csize: number;
  /** next byte starts an SSE line */
  atLineStart: boolean;
  /** current SSE block had a data line */
  hasData: boolean;
}

/**
 * Fresh parser state for a connection whose head said `chunked` or not.
 *
 * @param chunked whether the body is chunked
 * @returns the state
 */
export function newStreamState(chunked: boolean): StreamState {
  return { chunked, cstate: 0, csize: 0, atLineStart: true, hasData: false };
}

/** What a response head says. */
export interface ResponseHead {
  /** offset of the first body byte */
  end: number;
  /** status code */
  status: number;
  /** `Transfer-Encoding: chunked` */
  chunked: boolean;
  /** `Content-Type: text/event-stream` */
  eventStream: boolean;
}

/**
 * Parse a response head in buf[0, n), or return null while it is incomplete.
 *
 * @param buf bytes received so far
 * @param n how many are valid
 * @returns the head or null
 */
export function parseHead(buf: Uint8Array, n: number): ResponseHead | null {
  let end = -1;
  for (let i = 3; i < n; i++) {
    if (buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) {
      end = i + 1;
      break;
    }
  }
  if (end < 0) return null;
  const head = new TextDecoder().decode(buf.subarray(0, end)).toLowerCase();
  return {
    end,
    status: Number(head.slice(9, 12)),
    chunked: /\ntransfer-encoding:[^\n]*chunked/.test(head),
    eventStream: head.includes("\ncontent-type: text/event-stream"),
  };
}

/** Counters shared by every connection of a process. */
export class SseCounter {
  /** events dispatched */
  events = 0;
  /** latency samples only while true (the measurement window) */
  inWindow = false;
  /** publish-to-receive latency, microseconds */
  readonly latency: Histogram = new Histogram();
  /** samples with receive time before publish time (clock trouble) */
  latencyNegative = 0;

  /**
   * Feed body bytes buf[i, end) of one connection.
   *
   * @param s the connection's state
   * @param buf bytes
   * @param i first byte
   * @param end one past the last byte
   * @param recvNs CLOCK_MONOTONIC ns when the bytes were read
   */
  feed(s: StreamState, buf: Uint8Array, i: number, end: number, recvNs: number): void {
    if (!s.chunked) {
      this.#scan(s, buf, i, end, recvNs);
      return;
    }
    while (i < end) {
      switch (s.cstate) {
        case 0: {
          const c = buf[i++];
          if (c === LF) {
            s.cstate = s.csize === 0 ? 4 : 2;
          } else if (c !== CR) {
            const h = hexValue(c);
            if (h < 0) s.cstate = 1;
            else s.csize = s.csize * 16 + h;
          }
          break;
        }
        case 1: {
          const j = buf.indexOf(LF, i);
          if (j < 0 || j >= end) return;
          i = j + 1;
          s.cstate = s.csize === 0 ? 4 : 2;
          break;
        }
        case 2: {
          const take = Math.min(s.csize, end - i);
          this.#scan(s, buf, i, i + take, recvNs);
          i += take;
          s.csize -= take;
          if (s.csize === 0) s.cstate = 3;
          break;
        }
        case 3:
          if (buf[i++] === LF) {
            s.cstate = 0;
            s.csize = 0;
          }
          break;
        default:
          return;
      }
    }
  }

  /** SSE lines in buf[i, end). */
  #scan(s: StreamState, buf: Uint8Array, i: number, end: number, recvNs: number): void {
    let atLineStart = s.atLineStart;
    let hasData = s.hasData;
    while (i < end) {
      if (atLineStart) {
        const c = buf[i];
        if (c === LF) {
          if (hasData) {
            this.events++;
            hasData = false;
          }
          i++;
          continue;
        }
        if (c === CR) {
          i++;
          continue;
        }
        atLineStart = false;
        if (c === CH_D) {
          hasData = true;
          if (this.inWindow) this.#sample(buf, i, end, recvNs);
        }
      }
      const j = buf.indexOf(LF, i);
      if (j < 0 || j >= end) break;
      i = j + 1;
      atLineStart = true;
    }
    s.atLineStart = atLineStart;
    s.hasData = hasData;
  }

  /** `data: t=<digits>` at i: a latency sample when the digits end inside the slice. */
  #sample(buf: Uint8Array, i: number, end: number, recvNs: number): void {
    let k = i + 5;
    if (k >= end || buf[i + 4] !== 0x3a) return;
    if (buf[k] === 0x20) k++;
    if (k + 2 >= end || buf[k] !== 0x74 || buf[k + 1] !== 0x3d) return;
    k += 2;
    let v = 0;
    let digits = 0;
    while (k < end) {
      const d = buf[k] - 48;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
      digits++;
      k++;
    }
    if (k >= end || digits === 0) return; // split across reads: skip this sample
    const us = (recvNs - v) / 1000;
    if (us < 0) this.latencyNegative++;
    this.latency.add(us);
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Connection outcomes, named as the C sseload names them. */
export class ConnCounters {
  established = 0;
  refused = 0;
  failed = 0;
  timeouts = 0;
  badStatus = 0;
  nonSse = 0;
  closedByServer = 0;
  resetByServer = 0;
  active = 0;
  reads = 0;
  /** CLOCK_MONOTONIC ns of the last established connection */
  lastEstablishedNs = 0;
  readonly statusCodes: Record<string, number> = {};

  /**
   * Count a stream that got its head (both engines), mirrored to the live stats page.
   *
   * @param stats the `--stats-shm` page, if any
   */
  streamStarted(stats: StatsPage | null): void {
    this.established++;
    this.active++;
    this.lastEstablishedNs = monoNs();
    if (stats !== null) {
      stats.established = this.established;
      stats.active = this.active;
    }
  }

  /**
   * Count a response head.
   *
   * @param head the parsed head
   * @returns true when the stream is usable (2xx)
   */
  head(head: ResponseHead): boolean {
    const code = String(head.status);
    this.statusCodes[code] = (this.statusCodes[code] ?? 0) + 1;
    if (head.status < 200 || head.status > 299) {
      this.badStatus++;
      return false;
    }
    if (!head.eventStream) this.nonSse++;
    return true;
  }
}
