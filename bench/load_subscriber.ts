/**
 * SSE subscriber load generator: N connections to one URL. Counts events (a
 * blank line ending a block that had a `data` line; chunked transfer coding is
 * decoded; splits across reads are handled), measures publish-to-receive
 * latency from `t=<CLOCK_MONOTONIC ns>` at the start of the data (written by
 * load_publisher.ts or the C `ssepub`), reports one JSON line on stdout (keys
 * named as the C `sseload` names them).
 *
 * Engines: `deno` (raw `Deno.connect`, one pending read per connection) and
 * `epoll` (non-blocking sockets + epoll through FFI, one shared read buffer:
 * about as cheap per read as the C tool; the default).
 *
 * Modes: `stream` (read and count), `idle` (hold connections: memory per idle
 * connection, connects/s), `stall` (read the response head, then never read
 * again: a slow consumer).
 *
 * ```sh
 * deno run -A bench/load_subscriber.ts -c 1000 -d 5 http://127.0.0.1:8080/events/bench
 * ```
 *
 * @module
 */
import process from "node:process";
import { monoNs, StatsPage } from "./_libc.ts";
import { ConnCounters, SseCounter } from "./_sse_parser.ts";
import type { Engine, EngineOptions, SubscriberMode } from "./_engine.ts";
import { DenoEngine } from "./_engine_deno.ts";
import { EpollEngine } from "./_engine_epoll.ts";
import { cliFlags } from "../server/hub/mod.ts";

const { values: opts, positionals } = cliFlags({
  name: "load_subscriber",
  usage: "deno run -A bench/load_subscriber.ts [flags] http://127.0.0.1:PORT/PATH",
  description: "SSE subscriber load generator: N connections to one URL; counts events, " +
    "measures publish-to-receive latency from the t=<ns> at the start of each event's data, " +
    "and reports one JSON line on stdout.",
  positionals: [{ name: "URL", help: "the event stream, http:// only" }],
  flags: {
    conns: { type: "integer", short: "c", default: 100, min: 1, value: "N", help: "connections" },
    parallel: {
      type: "integer",
      short: "P",
      default: 512,
      min: 1,
      value: "N",
      help: "handshakes in flight",
    },
    duration: {
      type: "number",
      short: "d",
      default: 5,
      value: "S",
      help: "measurement window after the connect phase",
    },
    warmup: {
      type: "number",
      short: "w",
      default: 0,
      value: "S",
      help: "pause between connect phase and window",
    },
    engine: {
      type: "string",
      choices: ["epoll", "deno"],
      default: "epoll",
      help: "epoll (FFI, Linux) or deno (Deno.connect)",
    },
    mode: {
      type: "string",
      choices: ["stream", "idle", "stall"],
      default: "stream",
      help: "read and count, hold idle connections, or read the head and never again",
    },
    rbuf: {
      type: "integer",
      min: 1,
      value: "BYTES",
      help: "read buffer: per connection with deno (16384; idle/stall 1024), shared with epoll " +
        "(262144)",
    },
    "stall-rcvbuf": {
      type: "integer",
      default: 16384,
      value: "BYTES",
      help: "SO_RCVBUF of stall-mode connections, epoll engine (0 = autotuning)",
    },
    timeout: {
      type: "number",
      default: 10,
      value: "S",
      help: "connect + response head timeout per connection",
    },
    "max-time": {
      type: "number",
      value: "S",
      help: "hard stop for the whole run (connects/2000 + timeout + warmup + duration + 30)",
    },
    "ready-file": { type: "string", value: "F", help: "written when the connect phase is over" },
    "go-file": {
      type: "string",
      value: "F",
      help: 'after the connect phase, wait for F holding "<startNs> <endNs>" (CLOCK_MONOTONIC) ' +
        "and use that as the window; rewriting F with an earlier end ends the window early",
    },
    "stats-shm": {
      type: "string",
      value: "F",
      help: "live counters (sseload-compatible page) for load_publisher --follow",
    },
    "read-delay-ms": {
      type: "number",
      default: 0,
      value: "MS",
      help: "lazy reader, reads drain several events (throughput runs only) (0 = off)",
    },
    hist: { type: "boolean", help: "include the latency histogram buckets in the JSON" },
    label: { type: "string", default: "", value: "S", help: "copied into the JSON" },
    quiet: { type: "boolean", short: "q", help: "no progress lines on stderr" },
  },
});

const parsedUrl = URL.parse(positionals[0]);
if (parsedUrl?.protocol !== "http:") {
  console.error(
    `load_subscriber: URL must be an http:// URL: received ${JSON.stringify(positionals[0])}; ` +
      "run with --help for usage",
  );
  Deno.exit(2);
}
const url: URL = parsedUrl;
const HOST = url.hostname === "localhost" ? "127.0.0.1" : url.hostname;
const PORT = Number(url.port || 80);
const MODE: SubscriberMode = opts.mode;
const ENGINE = opts.engine;
const CONNS = opts.conns;
const DURATION = opts.duration;
const WARMUP = opts.warmup;
const TIMEOUT = opts.timeout;
const MAX_TIME = opts["max-time"] ?? CONNS / 2000 + TIMEOUT + WARMUP + DURATION + 30;
const QUIET = opts.quiet;

const sse = new SseCounter();
const counters = new ConnCounters();
const stats = opts["stats-shm"] ? StatsPage.create(opts["stats-shm"]) : null;
const engineOptions: EngineOptions = {
  host: HOST,
  port: PORT,
  request: new TextEncoder().encode(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n` +
      `Cache-Control: no-cache\r\nUser-Agent: sluice-load-subscriber/1\r\n\r\n`,
  ),
  conns: CONNS,
  parallel: opts.parallel,
  timeoutNs: TIMEOUT * 1e9,
  rbuf: Math.max(1024, opts.rbuf ?? (MODE === "stream" ? 16384 : 1024)),
  mode: MODE,
  stallRcvbuf: opts["stall-rcvbuf"],
  readDelayMs: opts["read-delay-ms"],
  sse,
  counters,
  stats,
};
const engine: Engine = ENGINE === "epoll"
  ? new EpollEngine(engineOptions)
  : new DenoEngine(engineOptions);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function readGoFile(path: string): [number, number] | null {
  try {
    const parts = Deno.readTextFileSync(path).trim().split(/\s+/).map(Number);
    if (parts.length === 2 && parts.every(Number.isFinite)) return [parts[0], parts[1]];
  } catch { /* not there yet */ }
  return null;
}

async function waitGoFile(path: string, deadlineNs: number): Promise<[number, number] | null> {
  while (monoNs() < deadlineNs) {
    const go = readGoFile(path);
    if (go !== null) return go;
    await sleep(5);
  }
  return null;
}

interface Mark {
  t: number;
  ev: number;
  cpu: number;
  reads: number;
}

const mark = (): Mark => ({
  t: monoNs(),
  ev: sse.events,
  cpu: cpuSeconds(),
  reads: counters.reads,
});

const startNs = monoNs();
let readyNs = 0;
let reported = false;

function round(v: number, d: number): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

function report(w0: Mark | null, w1: Mark | null, why: string): void {
  if (reported) return;
  reported = true;
  const peerClosed = MODE === "stall" ? engine.peerClosed() : null;
  engine.stop();
  if (stats !== null) {
    stats.events = sse.events;
    stats.done = true;
  }
  const k = counters;
  const u = process.cpuUsage();
  const winS = w0 && w1 ? (w1.t - w0.t) / 1e9 : 0;
  const evWin = w0 && w1 ? w1.ev - w0.ev : 0;
  const connTime = k.lastEstablishedNs ? (k.lastEstablishedNs - startNs) / 1e9 : 0;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1] ?? 0);
  const lat = sse.latency;
  const out: Record<string, unknown> = {
    tool: "load_subscriber",
    label: opts.label,
    url: url.href,
    engine: ENGINE,
    mode: MODE,
    end: why,
    conns_target: CONNS,
    established: k.established,
    refused: k.refused,
    failed: k.failed,
    timeouts: k.timeouts,
    bad_status: k.badStatus,
    status_codes: k.statusCodes,
    non_sse_content_type: k.nonSse,
    closed_by_server: k.closedByServer,
    reset_by_server: k.resetByServer,
    active_end: k.active,
    stalled_closed_by_server: peerClosed,
    connect_phase_s: round(((readyNs || monoNs()) - startNs) / 1e9, 3),
    connect_time_s: round(connTime, 3),
    connect_rate_per_s: connTime > 0 ? round(k.established / connTime, 1) : 0,
    window_s: round(winS, 3),
    events_total: sse.events,
    events_window: evWin,
    events_per_s: winS > 0 ? round(evWin / winS, 1) : 0,
    reads: k.reads,
    reads_window: w0 && w1 ? w1.reads - w0.reads : 0,
    lat_samples: lat.count,
    lat_neg: sse.latencyNegative,
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
    wall_s: round((monoNs() - startNs) / 1e9, 3),
  };
  if (opts.hist) out.lat_hist = lat.toJSON();
  console.log(JSON.stringify(out));
  Deno.exit(0);
}

async function main(): Promise<void> {
  const deadline = startNs + MAX_TIME * 1e9;
  setTimeout(() => report(null, null, "max-time"), MAX_TIME * 1000);
  let last = mark();
  if (!QUIET) {
    setInterval(() => {
      const now = mark();
      const k = counters;
      console.error(
        `[${((now.t - startNs) / 1e9).toFixed(1)}s] est=${k.established} active=${k.active} ` +
          `fail=${k.refused + k.failed + k.timeouts + k.badStatus} events=${now.ev} ` +
          `ev/s=${((now.ev - last.ev) / ((now.t - last.t) / 1e9)).toFixed(0)}${
            sse.inWindow ? " [window]" : ""
          }`,
      );
      last = now;
    }, 1000);
  }

  await engine.connectPhase();
  readyNs = monoNs();
  if (stats !== null) stats.ready = true;
  if (opts["ready-file"]) Deno.writeTextFileSync(opts["ready-file"], `${counters.established}\n`);
  if (!QUIET) {
    const k = counters;
    console.error(
      `connect phase ${((readyNs - startNs) / 1e9).toFixed(3)}s: established=${k.established} ` +
        `refused=${k.refused} failed=${k.failed + k.timeouts} bad_status=${k.badStatus}`,
    );
  }

  let winStart = readyNs + WARMUP * 1e9;
  let winEnd = winStart + DURATION * 1e9;
  if (opts["go-file"]) {
    const go = await waitGoFile(opts["go-file"], deadline);
    if (go === null) return report(null, null, "no go-file");
    [winStart, winEnd] = go;
  }
  await sleep((winStart - monoNs()) / 1e6);
  sse.inWindow = true;
  const w0 = mark();
  // The go file may be rewritten to end the window early.
  for (let now = monoNs(); now < winEnd; now = monoNs()) {
    await sleep(Math.min(50, (winEnd - now) / 1e6));
    if (opts["go-file"]) winEnd = Math.min(winEnd, readGoFile(opts["go-file"])?.[1] ?? winEnd);
  }
  sse.inWindow = false;
  report(w0, mark(), "done");
}

Deno.addSignalListener("SIGTERM", () => report(null, null, "SIGTERM"));
Deno.addSignalListener("SIGINT", () => report(null, null, "SIGINT"));
await main();
