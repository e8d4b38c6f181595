/**
 * SSE subscriber load generator: N raw `Deno.connect` connections to one URL.
 * Counts events (a blank line ending a block that had a `data` line; chunked
 * transfer coding is decoded; splits across reads are handled), measures
 * publish-to-receive latency from `t=<CLOCK_MONOTONIC ns>` at the start of the
 * data (written by load_publisher.ts or the C `ssepub`), reports one JSON line
 * on stdout (keys named as the C `sseload` names them).
 *
 * Modes: `stream` (read and count), `idle` (hold connections with a small
 * pending read: memory per idle connection, connects/s), `stall` (read the
 * response head, then never read again: a slow consumer).
 *
 * ```sh
 * deno run -A bench/load_subscriber.ts -c 1000 -d 5 http://127.0.0.1:8080/events/bench
 * ```
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { monoNs, StatsPage } from "./_libc.ts";
import { Histogram } from "./_histogram.ts";

const USAGE = `usage: load_subscriber.ts [options] http://127.0.0.1:PORT/PATH
  -c, --conns N        connections (100)
  -P, --parallel N     handshakes in flight (512)
  -d, --duration S     measurement window after the connect phase (5)
  -w, --warmup S       pause between connect phase and window (0)
  --mode M             stream | idle | stall (stream)
  --rbuf BYTES         read buffer per connection (stream: 16384, idle/stall: 1024; >= 1024)
  --timeout S          connect + response head timeout per connection (10)
  --max-time S         hard stop for the whole run (connects/2000 + timeout + warmup + duration + 30)
  --ready-file F       written when the connect phase is over
  --go-file F          after the connect phase, wait for F holding "<startNs> <endNs>"
                       (CLOCK_MONOTONIC) and use that as the window (several processes, one window)
  --stats-shm F        live counters (sseload-compatible page) for load_publisher --follow
  --read-delay-ms MS   lazy reader (stream mode): after each read a connection waits for a shared
                       timer tick of MS ms, so each read drains several events (cuts client CPU;
                       adds up to ~MS+1 ms latency: throughput runs only) (0 = off)
  --hist               include the latency histogram buckets in the JSON (for merging)
  --label S            copied into the JSON
  -q, --quiet          no progress lines on stderr`;

const LF = 10;
const CR = 13;
const CH_D = 0x64;

const { values: opts, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    conns: { type: "string", short: "c", default: "100" },
    parallel: { type: "string", short: "P", default: "512" },
    duration: { type: "string", short: "d", default: "5" },
    warmup: { type: "string", short: "w", default: "0" },
    mode: { type: "string", default: "stream" },
    rbuf: { type: "string" },
    timeout: { type: "string", default: "10" },
    "max-time": { type: "string" },
    "ready-file": { type: "string" },
    "go-file": { type: "string" },
    "stats-shm": { type: "string" },
    "read-delay-ms": { type: "string", default: "0" },
    hist: { type: "boolean", default: false },
    label: { type: "string", default: "" },
    quiet: { type: "boolean", short: "q", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opts.help || positionals.length !== 1) {
  console.error(USAGE);
  Deno.exit(opts.help ? 0 : 2);
}

const url = new URL(positionals[0]);
if (url.protocol !== "http:") throw new RangeError(`only http:// URLs: received ${url}`);
const HOST = url.hostname;
const PORT = Number(url.port || 80);
const PATH = url.pathname + url.search;
const CONNS = posInt("conns", opts.conns);
const PARALLEL = posInt("parallel", opts.parallel);
const DURATION = Number(opts.duration);
const WARMUP = Number(opts.warmup);
const MODE = opts.mode;
if (MODE !== "stream" && MODE !== "idle" && MODE !== "stall") {
  throw new RangeError(`mode must be stream, idle or stall: received ${MODE}`);
}
const RBUF = Math.max(1024, posInt("rbuf", opts.rbuf ?? (MODE === "stream" ? "16384" : "1024")));
const TIMEOUT_NS = Number(opts.timeout) * 1e9;
const MAX_TIME = Number(
  opts["max-time"] ?? CONNS / 2000 + Number(opts.timeout) + WARMUP + DURATION + 30,
);
const QUIET = opts.quiet;
const READ_DELAY_MS = Number(opts["read-delay-ms"]);

function posInt(name: string, s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) {
    throw new RangeError(`${name} must be a positive integer: received ${s}`);
  }
  return n;
}

const REQUEST = new TextEncoder().encode(
  `GET ${PATH} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nAccept: text/event-stream\r\n` +
    `Cache-Control: no-cache\r\nUser-Agent: sluice-load-subscriber/1\r\n\r\n`,
);

// ---- counters -----------------------------------------------------------
let established = 0;
let refused = 0;
let failed = 0;
let timeouts = 0;
let badStatus = 0;
let nonSse = 0;
let closedByServer = 0;
let resetByServer = 0;
let active = 0;
let events = 0;
let reads = 0;
let inWindow = false;
let stopping = false;
let lastEstablishedNs = 0;
const statusCodes: Record<string, number> = {};
const lat = new Histogram();
let latNeg = 0;

const stats = opts["stats-shm"] ? StatsPage.create(opts["stats-shm"]) : null;

/** Per-connection parse state, flat (no closures). */
interface ConnState {
  conn: Deno.TcpConn | null;
  startNs: number;
  chunked: boolean;
  /** chunk decoder: 0 size line, 1 extension until LF, 2 data, 3 CRLF after data, 4 finished */
  cstate: number;
  csize: number;
  atLineStart: boolean;
  hasData: boolean;
}

const handshaking = new Set<ConnState>();
const streams = new Set<ConnState>();

/** Feed SSE bytes buf[i, end) to the event parser. */
function scanSse(s: ConnState, buf: Uint8Array, i: number, end: number, recvNs: number): void {
  let atLineStart = s.atLineStart;
  let hasData = s.hasData;
  while (i < end) {
    if (atLineStart) {
      const c = buf[i];
      if (c === LF) {
        if (hasData) {
          events++;
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
        if (inWindow) sampleLatency(buf, i, end, recvNs);
      }
    }
    const j = buf.indexOf(LF, i);
    if (j < 0 || j >= end) {
      i = end;
      break;
    }
    i = j + 1;
    atLineStart = true;
  }
  s.atLineStart = atLineStart;
  s.hasData = hasData;
}

/** `data: t=<digits>` at i: record latency when the digits end inside the slice. */
function sampleLatency(buf: Uint8Array, i: number, end: number, recvNs: number): void {
  // "data:" then optional space, then "t="
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
  if (us < 0) latNeg++;
  lat.add(us);
}

/** Feed body bytes (after the head) to the chunk decoder or straight to the SSE parser. */
function onBody(s: ConnState, buf: Uint8Array, i: number, end: number, recvNs: number): void {
  if (!s.chunked) {
    scanSse(s, buf, i, end, recvNs);
    return;
  }
  while (i < end) {
    switch (s.cstate) {
      case 0: {
        const c = buf[i++];
        if (c === LF) {
          if (s.csize === 0) s.cstate = 4;
          else s.cstate = 2;
        } else if (c === CR) {
          // end of size line follows
        } else {
          const h = hexVal(c);
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
        scanSse(s, buf, i, i + take, recvNs);
        i += take;
        s.csize -= take;
        if (s.csize === 0) s.cstate = 3;
        break;
      }
      case 3: {
        if (buf[i++] === LF) {
          s.cstate = 0;
          s.csize = 0;
        }
        break;
      }
      default:
        return;
    }
  }
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function headEnd(buf: Uint8Array, n: number): number {
  for (let i = 3; i < n; i++) {
    if (buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
  }
  return -1;
}

function isRefused(e: unknown): boolean {
  return e instanceof Deno.errors.ConnectionRefused;
}

/** Connect, send the GET, read the head. Returns the body offset or -1 (counted). */
async function handshake(s: ConnState, buf: Uint8Array): Promise<[number, number]> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: HOST, port: PORT });
  } catch (e) {
    if (isRefused(e)) refused++;
    else failed++;
    return [-1, 0];
  }
  s.conn = conn;
  if (stopping) return [-1, 0];
  try {
    let off = 0;
    while (off < REQUEST.length) off += await conn.write(REQUEST.subarray(off));
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        failed++;
        return [-1, 0];
      }
      const r = await conn.read(buf.subarray(n));
      if (r === null) {
        failed++;
        return [-1, 0];
      }
      n += r;
      const he = headEnd(buf, n);
      if (he < 0) continue;
      const head = new TextDecoder().decode(buf.subarray(0, he)).toLowerCase();
      const status = head.slice(9, 12);
      statusCodes[status] = (statusCodes[status] ?? 0) + 1;
      if (status[0] !== "2") {
        badStatus++;
        return [-1, 0];
      }
      if (!head.includes("\ncontent-type: text/event-stream")) nonSse++;
      s.chunked = /\ntransfer-encoding:[^\n]*chunked/.test(head);
      return [he, n];
    }
  } catch {
    if (s.startNs < 0) timeouts++;
    else failed++;
    return [-1, 0];
  }
}

let gate: Promise<void> | null = null;
/** One shared timer for every lazy reader. */
function nextTick(): Promise<void> {
  if (gate === null) {
    gate = new Promise((resolve) =>
      setTimeout(() => {
        gate = null;
        resolve();
      }, READ_DELAY_MS)
    );
  }
  return gate;
}

async function streamLoop(s: ConnState, buf: Uint8Array, bodyStart: number, n: number) {
  const conn = s.conn!;
  if (bodyStart < n) onBody(s, buf, bodyStart, n, monoNs());
  if (MODE === "stall") return; // never read again; closed at exit
  try {
    for (;;) {
      const r = await conn.read(buf);
      if (r === null) {
        if (!stopping) closedByServer++;
        break;
      }
      reads++;
      onBody(s, buf, 0, r, monoNs());
      if (stats !== null) stats.events = events;
      if (READ_DELAY_MS > 0 && !stopping) await nextTick();
    }
  } catch {
    if (!stopping) resetByServer++;
  }
  if (!stopping) {
    active--;
    streams.delete(s);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

let next = 0;
async function connectWorker(): Promise<void> {
  while (!stopping && next < CONNS) {
    next++;
    const s: ConnState = {
      conn: null,
      startNs: monoNs(),
      chunked: false,
      cstate: 0,
      csize: 0,
      atLineStart: true,
      hasData: false,
    };
    const buf = new Uint8Array(RBUF);
    handshaking.add(s);
    const [bodyStart, n] = await handshake(s, buf);
    handshaking.delete(s);
    if (bodyStart < 0) {
      try {
        s.conn?.close();
      } catch { /* closed by the timeout scan */ }
      continue;
    }
    established++;
    active++;
    lastEstablishedNs = monoNs();
    if (stats !== null) {
      stats.established = established;
      stats.active = active;
    }
    streams.add(s);
    streamLoop(s, buf, bodyStart, n);
  }
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitGoFile(path: string, deadlineNs: number): Promise<[number, number] | null> {
  while (monoNs() < deadlineNs) {
    try {
      const parts = Deno.readTextFileSync(path).trim().split(/\s+/).map(Number);
      if (parts.length === 2 && parts.every(Number.isFinite)) return [parts[0], parts[1]];
    } catch { /* not yet */ }
    await sleep(5);
  }
  return null;
}

async function main(): Promise<void> {
  const t0 = startNs;
  const deadline = t0 + MAX_TIME * 1e9;
  const hardStop = setTimeout(() => finish("max-time"), MAX_TIME * 1000);
  // handshake timeouts: scan every 200 ms
  const scan = setInterval(() => {
    const now = monoNs();
    for (const s of handshaking) {
      if (s.startNs >= 0 && now - s.startNs > TIMEOUT_NS) {
        s.startNs = -1;
        try {
          s.conn?.close();
        } catch { /* closed */ }
      }
    }
  }, 200);
  let lastEv = 0;
  let lastT = t0;
  const progress = QUIET ? 0 : setInterval(() => {
    const now = monoNs();
    console.error(
      `[${((now - t0) / 1e9).toFixed(1)}s] est=${established} active=${active} ` +
        `fail=${refused + failed + timeouts + badStatus} events=${events} ` +
        `ev/s=${((events - lastEv) / ((now - lastT) / 1e9)).toFixed(0)}${
          inWindow ? " [window]" : ""
        }`,
    );
    lastEv = events;
    lastT = now;
  }, 1000);

  const workers: Promise<void>[] = [];
  for (let i = 0; i < Math.min(PARALLEL, CONNS); i++) workers.push(connectWorker());
  await Promise.all(workers);
  clearInterval(scan);
  const readyNs = monoNs();
  if (stats !== null) stats.ready = true;
  if (opts["ready-file"]) Deno.writeTextFileSync(opts["ready-file"], `${established}\n`);
  if (!QUIET) {
    console.error(
      `connect phase ${((readyNs - t0) / 1e9).toFixed(3)}s: established=${established} ` +
        `refused=${refused} failed=${failed + timeouts} bad_status=${badStatus}`,
    );
  }

  let winStart = readyNs + WARMUP * 1e9;
  let winEnd = winStart + DURATION * 1e9;
  if (opts["go-file"]) {
    const go = await waitGoFile(opts["go-file"], deadline);
    if (go === null) {
      finish("no go-file");
      return;
    }
    [winStart, winEnd] = go;
  }
  await sleep(Math.max(0, (winStart - monoNs()) / 1e6));
  inWindow = true;
  const w0 = { t: monoNs(), ev: events, cpu: cpuSeconds() };
  await sleep(Math.max(0, (winEnd - monoNs()) / 1e6));
  inWindow = false;
  const w1 = { t: monoNs(), ev: events, cpu: cpuSeconds() };
  clearTimeout(hardStop);
  if (progress) clearInterval(progress);
  report(t0, readyNs, w0, w1, "done");
}

interface Mark {
  t: number;
  ev: number;
  cpu: number;
}

function report(t0: number, readyNs: number, w0: Mark | null, w1: Mark | null, why: string) {
  stopping = true;
  if (stats !== null) {
    stats.events = events;
    stats.done = true;
  }
  const u = process.cpuUsage();
  const winS = w0 && w1 ? (w1.t - w0.t) / 1e9 : 0;
  const evWin = w0 && w1 ? w1.ev - w0.ev : 0;
  const connTime = lastEstablishedNs ? (lastEstablishedNs - t0) / 1e9 : 0;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1] ?? 0);
  const out: Record<string, unknown> = {
    tool: "load_subscriber",
    label: opts.label,
    url: url.href,
    mode: MODE,
    end: why,
    conns_target: CONNS,
    established,
    refused,
    failed,
    timeouts,
    bad_status: badStatus,
    status_codes: statusCodes,
    non_sse_content_type: nonSse,
    closed_by_server: closedByServer,
    reset_by_server: resetByServer,
    active_end: active,
    connect_phase_s: round((readyNs - t0) / 1e9, 3),
    connect_time_s: round(connTime, 3),
    connect_rate_per_s: connTime > 0 ? round(established / connTime, 1) : 0,
    window_s: round(winS, 3),
    events_total: events,
    events_window: evWin,
    events_per_s: winS > 0 ? round(evWin / winS, 1) : 0,
    reads,
    lat_samples: lat.count,
    lat_neg: latNeg,
    lat_p50_us: lat.percentile(50),
    lat_p90_us: lat.percentile(90),
    lat_p99_us: lat.percentile(99),
    lat_p999_us: lat.percentile(99.9),
    lat_max_us: lat.max,
    lat_mean_us: lat.count ? round(lat.sum / lat.count, 1) : 0,
    cpu_user_s: round(u.user / 1e6, 3),
    cpu_sys_s: round(u.system / 1e6, 3),
    window_cpu_pct: w0 && w1 && winS > 0 ? round(((w1.cpu - w0.cpu) / winS) * 100, 1) : 0,
    rss_kb: rssKb,
    wall_s: round((monoNs() - t0) / 1e9, 3),
  };
  if (opts.hist) out.lat_hist = lat.toJSON();
  console.log(JSON.stringify(out));
  for (const s of handshaking) closeQuietly(s.conn);
  for (const s of streams) closeQuietly(s.conn);
  Deno.exit(0);
}

function closeQuietly(c: Deno.TcpConn | null): void {
  try {
    c?.close();
  } catch { /* already closed */ }
}

let startNs = 0;
function finish(why: string): void {
  report(startNs, monoNs(), null, null, why);
}

function round(v: number, d: number): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

startNs = monoNs();
Deno.addSignalListener("SIGTERM", () => finish("SIGTERM"));
Deno.addSignalListener("SIGINT", () => finish("SIGINT"));
await main();
