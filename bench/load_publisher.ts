/**
 * Publisher load generator: keep-alive HTTP/1.1 POSTs over k raw connections,
 * one request in flight on each. Body: `t=<CLOCK_MONOTONIC ns> seq=<n> ` padded
 * with `x` to `--size` bytes (the C `ssepub` format, so subscribers of either
 * kind measure latency). Open loop (`--rate R` events/s) or as fast as the
 * server answers; with `--follow` + `--window W` it is closed loop: it publishes
 * only while fewer than W events are published but not yet delivered to all
 * subscribers, read from the subscribers' live stats pages (load_subscriber.ts
 * `--stats-shm` or C `sseload --stats-shm`). One JSON line on stdout.
 *
 * ```sh
 * deno run -A bench/load_publisher.ts -k 4 -r 50 -d 5 http://127.0.0.1:8080/events/bench
 * ```
 *
 * @module
 */
import process from "node:process";
import { monoNs, StatsPage } from "./_libc.ts";
import { Histogram } from "./_histogram.ts";
import { cliFlags } from "../server/hub/mod.ts";

const { values: opts, positionals } = cliFlags({
  name: "load_publisher",
  usage: "deno run -A bench/load_publisher.ts [flags] http://127.0.0.1:PORT/PATH",
  description: "Publisher load generator: keep-alive HTTP/1.1 POSTs over k raw connections, one " +
    "request in flight on each, open loop (--rate) or closed loop (--follow with --window); " +
    "one JSON line on stdout.",
  positionals: [{ name: "URL", help: "where to POST, http:// only" }],
  flags: {
    conns: {
      type: "integer",
      short: "k",
      default: 1,
      min: 1,
      value: "N",
      help: "keep-alive connections, one request in flight each",
    },
    rate: {
      type: "number",
      short: "r",
      default: 0,
      value: "R",
      help: "events/s, open loop; 0 = as fast as answers (and --window) allow",
    },
    duration: { type: "number", short: "d", default: 10, value: "S", help: "duration" },
    count: {
      type: "integer",
      short: "n",
      default: 0,
      value: "N",
      help: "stop after N events (0 = no limit)",
    },
    size: { type: "integer", short: "s", default: 100, min: 48, value: "BYTES", help: "body size" },
    follow: {
      type: "string",
      multiple: true,
      value: "F[,F...]",
      help: "subscriber stats pages to follow",
    },
    window: {
      type: "integer",
      default: 0,
      value: "W",
      help: "closed loop: at most W events published but not delivered to all (0 = off)",
    },
    clients: {
      type: "integer",
      default: 0,
      value: "N",
      help: "subscribers to divide delivered events by (0: sum of established)",
    },
    "wait-ready": {
      type: "boolean",
      help: "wait (<= --max-wait s) for every followed subscriber's connect phase",
    },
    "max-wait": { type: "number", default: 60, value: "S", help: "longest wait for --wait-ready" },
    "content-type": { type: "string", default: "text/plain", value: "T", help: "request type" },
    label: { type: "string", default: "", value: "S", help: "copied into the JSON" },
    quiet: { type: "boolean", short: "q", help: "no progress lines on stderr" },
  },
});

const parsedUrl = URL.parse(positionals[0]);
if (parsedUrl?.protocol !== "http:") {
  console.error(
    `load_publisher: URL must be an http:// URL: received ${JSON.stringify(positionals[0])}; ` +
      "run with --help for usage",
  );
  Deno.exit(2);
}
const url: URL = parsedUrl;
const HOST = url.hostname;
const PORT = Number(url.port || 80);
const K = Number(opts.conns);
const RATE = Number(opts.rate);
const DURATION = Number(opts.duration);
const COUNT = Number(opts.count);
const SIZE = Number(opts.size);
const WINDOW = Number(opts.window);
if (!Number.isInteger(K) || K <= 0) {
  throw new RangeError(`conns must be a positive integer: received ${opts.conns}`);
}
if (!Number.isInteger(SIZE) || SIZE < 48) {
  throw new RangeError(`size must be an integer >= 48: received ${opts.size}`);
}
if (!(RATE >= 0)) throw new RangeError(`rate must be >= 0: received ${opts.rate}`);
const FOLLOW = opts.follow.flatMap((f) => f.split(",")).filter((f) => f !== "");

const enc = new TextEncoder();
const HEAD = enc.encode(
  `POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\n` +
    `Content-Type: ${opts["content-type"]}\r\nContent-Length: ${SIZE}\r\n\r\n`,
);
const LF = 10;
const CR = 13;

let seq = 0;
let sent = 0;
let ok = 0;
let non2xx = 0;
let errors = 0;
let refused = 0;
let reconnects = 0;
let stopping = false;
const statusCodes: Record<string, number> = {};
const resp = new Histogram();
const pages: StatsPage[] = [];
let bases: number[] = [];
let clients = 0;
let cachedDelivered = 0;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function delivered(): number {
  let sum = 0;
  for (let i = 0; i < pages.length; i++) sum += pages[i].events - bases[i];
  return clients > 0 ? Math.floor(sum / clients) : 0;
}

function followDone(): boolean {
  return pages.length > 0 && pages.every((p) => p.done);
}

let t0 = 0;
let tEnd = 0;

/** Next sequence number to publish, or null when the run is over. */
async function ticket(): Promise<number | null> {
  for (;;) {
    if (stopping) return null;
    const now = monoNs();
    if (now >= tEnd || (COUNT > 0 && seq >= COUNT) || followDone()) return null;
    if (RATE > 0) {
      const due = t0 + (seq / RATE) * 1e9;
      if (due > now + 500_000) {
        await sleep(Math.max(0, (due - now) / 1e6 - 1));
        continue;
      }
    }
    if (WINDOW > 0 && pages.length > 0 && seq >= cachedDelivered + WINDOW) {
      cachedDelivered = delivered();
      if (seq >= cachedDelivered + WINDOW) {
        await sleep(1);
        continue;
      }
    }
    return seq++;
  }
}

function headEnd(buf: Uint8Array, n: number): number {
  for (let i = 3; i < n; i++) {
    if (buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
  }
  return -1;
}

/** Reads one response; returns [status, keepAlive] or throws. */
async function readResponse(conn: Deno.TcpConn, buf: Uint8Array): Promise<[number, boolean]> {
  let n = 0;
  let he = -1;
  while (he < 0) {
    if (n === buf.length) throw new Error("response head too large");
    const r = await conn.read(buf.subarray(n));
    if (r === null) throw new Deno.errors.UnexpectedEof("closed before response head");
    n += r;
    he = headEnd(buf, n);
  }
  const head = new TextDecoder().decode(buf.subarray(0, he)).toLowerCase();
  const status = Number(head.slice(9, 12));
  const keepAlive = !/\nconnection:\s*close/.test(head);
  const cl = /\ncontent-length:\s*(\d+)/.exec(head);
  if (cl) {
    let remaining = Number(cl[1]) - (n - he);
    while (remaining > 0) {
      const r = await conn.read(buf);
      if (r === null) throw new Deno.errors.UnexpectedEof("closed in response body");
      remaining -= r;
    }
  } else if (/\ntransfer-encoding:[^\n]*chunked/.test(head)) {
    // Small bodies only: read until the last-chunk marker.
    let tail = new TextDecoder().decode(buf.subarray(he, n));
    while (!tail.endsWith("0\r\n\r\n")) {
      const r = await conn.read(buf);
      if (r === null) throw new Deno.errors.UnexpectedEof("closed in chunked body");
      tail = (tail + new TextDecoder().decode(buf.subarray(0, r))).slice(-16);
    }
  } else if (status !== 204 && status !== 304 && !(status >= 100 && status < 200)) {
    // close-delimited body
    while ((await conn.read(buf)) !== null) { /* drain */ }
    return [status, false];
  }
  return [status, keepAlive];
}

async function worker(): Promise<void> {
  const req = new Uint8Array(HEAD.length + SIZE);
  req.set(HEAD);
  req.fill(0x78, HEAD.length); // 'x'
  const body = req.subarray(HEAD.length);
  const rbuf = new Uint8Array(8192);
  let conn: Deno.TcpConn | null = null;
  let prevLen = 0;
  while (!stopping) {
    if (conn === null) {
      try {
        conn = await Deno.connect({ hostname: HOST, port: PORT });
        conn.setNoDelay(true);
      } catch (e) {
        if (e instanceof Deno.errors.ConnectionRefused) refused++;
        else errors++;
        if (monoNs() >= tEnd) return;
        await sleep(10);
        continue;
      }
    }
    const n = await ticket();
    if (n === null) break;
    body.fill(0x78, 0, prevLen);
    const sendNs = monoNs();
    prevLen = enc.encodeInto(`t=${sendNs} seq=${n} `, body).written;
    try {
      let off = 0;
      while (off < req.length) off += await conn.write(req.subarray(off));
      sent++;
      const [status, keepAlive] = await readResponse(conn, rbuf);
      resp.add((monoNs() - sendNs) / 1000);
      statusCodes[status] = (statusCodes[status] ?? 0) + 1;
      if (status >= 200 && status < 300) ok++;
      else non2xx++;
      if (!keepAlive) {
        conn.close();
        conn = null;
        reconnects++;
      }
    } catch {
      errors++;
      try {
        conn?.close();
      } catch { /* closed */ }
      conn = null;
      reconnects++;
    }
  }
  try {
    conn?.close();
  } catch { /* closed */ }
}

async function openPages(deadlineNs: number): Promise<boolean> {
  for (const f of FOLLOW) {
    let p: StatsPage | null = null;
    while ((p = StatsPage.open(f)) === null) {
      if (monoNs() > deadlineNs) {
        console.error(`load_publisher: no stats page at ${f}`);
        return false;
      }
      await sleep(10);
    }
    if (opts["wait-ready"]) {
      while (!p.ready) {
        if (monoNs() > deadlineNs) {
          console.error(`load_publisher: subscriber ${f} not ready in time`);
          return false;
        }
        await sleep(10);
      }
    }
    pages.push(p);
  }
  bases = pages.map((p) => p.events);
  clients = Number(opts.clients) || pages.reduce((a, p) => a + p.established, 0);
  return true;
}

function round(v: number, d: number): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

let cpu0: { user: number; system: number } = { user: 0, system: 0 };
let reported = false;

function report(why: string): void {
  if (reported) return;
  reported = true;
  stopping = true;
  const t1 = monoNs();
  const cpu = process.cpuUsage(cpu0);
  const el = t0 > 0 ? (t1 - t0) / 1e9 : 0;
  console.log(JSON.stringify({
    tool: "load_publisher",
    label: opts.label,
    url: url.href,
    end: why,
    conns: K,
    rate: RATE,
    window: WINDOW,
    clients,
    sent,
    ok,
    non2xx,
    status_codes: statusCodes,
    errors,
    refused,
    reconnects,
    elapsed_s: round(el, 3),
    achieved_rate: el > 0 ? round(ok / el, 1) : 0,
    resp_p50_us: resp.percentile(50),
    resp_p99_us: resp.percentile(99),
    resp_max_us: resp.max,
    cpu_user_s: round(cpu.user / 1e6, 3),
    cpu_sys_s: round(cpu.system / 1e6, 3),
    cpu_pct: el > 0 ? round(((cpu.user + cpu.system) / 1e6 / el) * 100, 1) : 0,
  }));
  Deno.exit(0);
}

async function main(): Promise<void> {
  if (FOLLOW.length > 0 && !(await openPages(monoNs() + Number(opts["max-wait"]) * 1e9))) {
    Deno.exit(1);
  }
  cpu0 = process.cpuUsage();
  t0 = monoNs();
  tEnd = t0 + DURATION * 1e9;
  // A request stuck on a server that stopped answering must not hold the run.
  const hard = setTimeout(() => report("max-time"), DURATION * 1000 + 5000);
  const workers: Promise<void>[] = [];
  for (let i = 0; i < K; i++) workers.push(worker());
  await Promise.all(workers);
  clearTimeout(hard);
  report("done");
}

Deno.addSignalListener("SIGTERM", () => report("SIGTERM"));
Deno.addSignalListener("SIGINT", () => report("SIGINT"));
await main();
