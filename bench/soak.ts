/**
 * Soak test (not part of CI): runs the hub (`main.ts`) in one process and
 * N subscribers in another (or several), publishes numbered events at a
 * fixed rate for a long time while subscribers churn (disconnect, reconnect
 * with `Last-Event-ID`), and reports, per period: server RSS and CPU, events
 * received, p50/p99/max publish-to-receive latency, reconnects; and at the
 * end: events lost, duplicates, `sluice.gap` notices, the RSS slope.
 *
 * Every event's data is `<seq> <CLOCK_MONOTONIC ns at publish>`. A
 * subscriber must receive every seq from its first one to the last, exactly
 * once, across all its reconnects: a hole is a lost event (`lostAtSeam` when
 * it is at a reconnect, `lostInStream` inside one connection), a repeat is a
 * duplicate. Events replayed after a reconnect are counted but are not
 * latency samples.
 *
 * ```sh
 * deno task soak                                   # 5000 clients, 600 s, 50 events/s
 * deno task soak --clients 1000 --duration 60      # a short run
 * deno task soak --procs 2 --json soak.json        # clients over 2 processes, JSON report
 * ```
 *
 * Flags: --clients N (5000), --duration S (600), --rate EV/S (50), --churn-every S (mean
 * seconds between a client's reconnects, 120; 0: no churn), --reconnect-delay MS (max
 * random pause before reconnecting, 1000), --ramp CONNS/S (1000), --procs K (1),
 * --report-every S (60), --warmup S (ignored by the RSS slope, 60), --drain S (30),
 * --server-flag F (repeatable, passed to main.ts), --port P (use a running server on
 * 127.0.0.1:P instead of starting one; no RSS), --json FILE.
 *
 * @module
 */

import { Histogram } from "./_histogram.ts";
import { monoNs } from "./_libc.ts";
import { cliFlags } from "../server/hub/mod.ts";

const { values: opts } = cliFlags({
  name: "soak",
  usage: "deno task soak [flags]",
  description: "Soak test: runs the hub (main.ts) and N churning subscribers, publishes numbered " +
    "events at a fixed rate for a long time, and reports per period server RSS and CPU, " +
    "latency and reconnects, and at the end events lost, duplicates and the RSS slope; exits 1 " +
    "when an event was lost or duplicated.",
  flags: {
    role: {
      type: "string",
      choices: ["main", "clients"],
      default: "main",
      help: "main runs the test; clients is how main starts its subscriber processes",
    },
    clients: { type: "integer", default: 5000, min: 1, value: "N", help: "subscribers" },
    duration: { type: "number", default: 600, min: 1, value: "S", help: "seconds of publishing" },
    rate: { type: "number", default: 50, min: 0.01, value: "EV/S", help: "events per second" },
    "churn-every": {
      type: "number",
      default: 120,
      value: "S",
      help: "mean seconds between a client's reconnects (0: no churn)",
    },
    "reconnect-delay": {
      type: "number",
      default: 1000,
      value: "MS",
      help: "longest random pause before reconnecting",
    },
    ramp: { type: "number", default: 1000, min: 1, value: "CONNS/S", help: "connects per second" },
    procs: { type: "integer", default: 1, min: 1, value: "K", help: "subscriber processes" },
    "report-every": { type: "number", default: 60, min: 1, value: "S", help: "seconds per period" },
    warmup: { type: "number", default: 60, value: "S", help: "seconds the RSS slope ignores" },
    drain: {
      type: "number",
      default: 30,
      min: 1,
      value: "S",
      help: "seconds to wait for the last events",
    },
    "server-flag": { type: "string", multiple: true, value: "F", help: "passed to main.ts" },
    port: {
      type: "integer",
      min: 1,
      max: 65535,
      value: "P",
      help: "use a running server on 127.0.0.1:P instead of starting one (no RSS)",
    },
    channel: { type: "string", default: "soak", value: "NAME", help: "channel of the events" },
    json: { type: "string", value: "FILE", help: "also write the report as JSON" },
  },
});

function num(name: string, value: number | undefined, min = 0): number {
  if (value === undefined || !Number.isFinite(value) || value < min) {
    throw new RangeError(`--${name} must be a number >= ${min}: received ${value}`);
  }
  return value;
}

const CLIENTS = Math.floor(num("clients", opts.clients, 1));
const DURATION = num("duration", opts.duration, 1);
const RATE = num("rate", opts.rate, 0.01);
const CHURN_EVERY = num("churn-every", opts["churn-every"]);
const RECONNECT_DELAY = num("reconnect-delay", opts["reconnect-delay"]);
const RAMP = num("ramp", opts.ramp, 1);
const PROCS = Math.floor(num("procs", opts.procs, 1));
const REPORT_EVERY = num("report-every", opts["report-every"], 1);
const WARMUP = num("warmup", opts.warmup);
const DRAIN = num("drain", opts.drain, 1);
const CHANNEL = opts.channel;
const HOST = "127.0.0.1";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ messages

/** Per-period counters a client process reports (and the final one). */
interface PeriodReport {
  type: "period" | "final";
  period: number;
  received: number;
  replayed: number;
  latency: Array<[number, number]>;
  reconnects: number;
  serverCloses: number;
  refused: number;
  lostAtSeam: number;
  lostInStream: number;
  duplicates: number;
  gapNotices: number;
  connected: number;
  /** Final only. */
  lostAtEnd?: number;
  neverReceived?: number;
  caughtUp?: number;
  clients?: number;
}

// ================================================================ client role

class Subscriber {
  first = 0;
  last = 0;
  lastId = "";
  conn: Deno.TcpConn | undefined;
  connected = false;
  stopping = false;
  reconnects = 0;
  /** Events up to this seq on the current connection are replays. */
  replayUpTo = 0;
  seam = false;
  /** Holes seen: [first missing seq, last missing seq, at a reconnect?]. */
  gaps: Array<[number, number, boolean]> = [];
  churnTimer: ReturnType<typeof setTimeout> | undefined;
  constructor(readonly idx: number) {}
}

async function clientRole(): Promise<void> {
  const port = num("port", opts.port, 1);
  const subs = Array.from({ length: CLIENTS }, (_, i) => new Subscriber(i));
  let period = newPeriod(0);
  let maxSeqSeen = 0;
  let churning = false;
  let finishing = false;

  function newPeriod(n: number) {
    return {
      n,
      received: 0,
      replayed: 0,
      latency: new Histogram(),
      reconnects: 0,
      serverCloses: 0,
      refused: 0,
      lostAtSeam: 0,
      lostInStream: 0,
      duplicates: 0,
      gapNotices: 0,
    };
  }
  const totals = newPeriod(-1);
  const bump = (key: keyof Omit<ReturnType<typeof newPeriod>, "n" | "latency">, by = 1) => {
    period[key] += by;
    totals[key] += by;
  };

  function onEvent(s: Subscriber, type: string, data: string, now: number): void {
    if (type === "sluice.gap") {
      bump("gapNotices");
      return;
    }
    const sp = data.indexOf(" ");
    const seq = Number(data.slice(0, sp));
    const t = Number(data.slice(sp + 1));
    if (!Number.isSafeInteger(seq) || seq < 1) return; // not a soak event
    if (seq > maxSeqSeen) maxSeqSeen = seq;
    bump("received");
    if (seq <= s.replayUpTo) bump("replayed");
    else {
      period.latency.add((now - t) / 1000);
      totals.latency.add((now - t) / 1000);
    }
    if (s.first === 0) {
      s.first = s.last = seq;
    } else if (seq === s.last + 1) {
      s.last = seq;
    } else if (seq <= s.last) {
      bump("duplicates");
    } else {
      bump(s.seam ? "lostAtSeam" : "lostInStream", seq - s.last - 1);
      s.gaps.push([s.last + 1, seq - 1, s.seam]);
      s.last = seq;
    }
    s.seam = false;
  }

  async function run(s: Subscriber): Promise<void> {
    while (!s.stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ hostname: HOST, port });
      } catch {
        bump("refused");
        await sleep(500 + Math.random() * 1000);
        continue;
      }
      s.conn = conn;
      let req = `GET /events/${CHANNEL} HTTP/1.1\r\nHost: ${HOST}\r\nAccept: text/event-stream\r\n`;
      if (s.lastId !== "") req += `Last-Event-ID: ${s.lastId}\r\n`;
      s.replayUpTo = maxSeqSeen;
      s.seam = s.first !== 0;
      try {
        await conn.write(encoder.encode(req + "\r\n"));
        const buf = new Uint8Array(16 * 1024);
        let text = "";
        let head = true;
        let type = "";
        let data: string | undefined;
        // As in the WHATWG parser, an id takes effect when its event is dispatched (at the
        // blank line), not when its line is read: a connection cut between the two must not
        // resume after an event it never received.
        let idBuffer = s.lastId;
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          const now = monoNs();
          text += decoder.decode(buf.subarray(0, n));
          if (head) {
            const end = text.indexOf("\r\n\r\n");
            if (end < 0) continue;
            if (!text.startsWith("HTTP/1.1 200")) {
              bump("refused");
              break;
            }
            head = false;
            s.connected = true;
            text = text.slice(end + 4);
            scheduleChurn(s);
          }
          let start = 0;
          for (;;) {
            const nl = text.indexOf("\n", start);
            if (nl < 0) break;
            const line = text.slice(start, nl);
            start = nl + 1;
            if (line === "") {
              s.lastId = idBuffer;
              if (data !== undefined) onEvent(s, type, data, now);
              type = "";
              data = undefined;
            } else if (line.startsWith("data: ")) data = line.slice(6);
            else if (line.startsWith("id: ")) idBuffer = line.slice(4);
            else if (line.startsWith("event: ")) type = line.slice(7);
          }
          text = text.slice(start);
        }
      } catch {
        // Reset, or closed by churn: reconnect below.
      } finally {
        clearTimeout(s.churnTimer);
        s.churnTimer = undefined;
        // Closed while streaming, and not by our churn: the server ended it (e.g. slow consumer).
        if (s.connected && !s.stopping && !churnClosed.has(s)) bump("serverCloses");
        churnClosed.delete(s);
        s.connected = false;
        try {
          conn.close();
        } catch { /* closed */ }
      }
      if (s.stopping) return;
      s.reconnects++;
      bump("reconnects");
      await sleep(Math.random() * RECONNECT_DELAY);
    }
  }

  const churnClosed = new Set<Subscriber>();
  function scheduleChurn(s: Subscriber): void {
    if (!churning || CHURN_EVERY <= 0) return;
    const ms = -Math.log(1 - Math.random()) * CHURN_EVERY * 1000;
    s.churnTimer = setTimeout(() => {
      s.churnTimer = undefined;
      if (!churning) return;
      churnClosed.add(s);
      try {
        s.conn?.close();
      } catch { /* closed */ }
    }, ms);
  }

  const emit = (o: unknown) => console.log(JSON.stringify(o));

  // Ramp up.
  const runs: Promise<void>[] = [];
  const rampStart = Date.now();
  for (let i = 0; i < subs.length; i++) {
    const due = rampStart + (i / RAMP) * 1000;
    if (due > Date.now()) await sleep(due - Date.now());
    runs.push(run(subs[i]));
  }
  const readyDeadline = Date.now() + 60_000;
  while (subs.some((s) => !s.connected) && Date.now() < readyDeadline) await sleep(50);
  emit({ type: "ready", connected: subs.filter((s) => s.connected).length });

  const report = (type: "period" | "final", p: ReturnType<typeof newPeriod>): PeriodReport => ({
    type,
    period: p.n,
    received: p.received,
    replayed: p.replayed,
    latency: p.latency.toJSON(),
    reconnects: p.reconnects,
    serverCloses: p.serverCloses,
    refused: p.refused,
    lostAtSeam: p.lostAtSeam,
    lostInStream: p.lostInStream,
    duplicates: p.duplicates,
    gapNotices: p.gapNotices,
    connected: subs.filter((s) => s.connected).length,
  });

  // Commands from the orchestrator, one JSON per line on stdin.
  let pending = "";
  for await (const chunk of Deno.stdin.readable) {
    pending += decoder.decode(chunk);
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const cmd = JSON.parse(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      if (cmd.cmd === "start") {
        churning = true;
        for (const s of subs) if (s.connected) scheduleChurn(s);
      } else if (cmd.cmd === "period") {
        emit(report("period", period));
        period = newPeriod(period.n + 1);
      } else if (cmd.cmd === "finish" && !finishing) {
        finishing = true;
        churning = false;
        for (const s of subs) {
          clearTimeout(s.churnTimer);
          s.churnTimer = undefined;
        }
        const lastSeq: number = cmd.lastSeq;
        // Seqs the server refused were never sent: holes there are not losses.
        const failed: number[] = cmd.failed;
        const refusedIn = (a: number, b: number) => failed.filter((f) => f >= a && f <= b).length;
        let lastAccepted = lastSeq;
        while (failed.includes(lastAccepted) && lastAccepted > 0) lastAccepted--;
        const deadline = Date.now() + DRAIN * 1000;
        while (subs.some((s) => s.last < lastAccepted) && Date.now() < deadline) await sleep(100);
        const final = report("final", totals);
        final.lostAtEnd = 0;
        final.neverReceived = 0;
        final.caughtUp = 0;
        final.clients = subs.length;
        for (const s of subs) {
          for (const [a, b, seam] of s.gaps) {
            const n = refusedIn(a, b);
            if (seam) final.lostAtSeam -= n;
            else final.lostInStream -= n;
          }
          if (s.first === 0) final.neverReceived++;
          else if (s.last < lastAccepted) {
            final.lostAtEnd += lastSeq - s.last - refusedIn(s.last + 1, lastSeq);
          } else final.caughtUp++;
        }
        emit(report("period", period));
        emit(final);
        for (const s of subs) {
          s.stopping = true;
          try {
            s.conn?.close();
          } catch { /* closed */ }
        }
        await Promise.all(runs);
        Deno.exit(0);
      }
    }
  }
}

// =========================================================== orchestrator role

/**
 * One keep-alive publishing connection with pipelining: requests are written
 * without waiting, answers are matched in order, so the publish rate holds
 * even when the server answers slowly, and events keep their order.
 */
class Publisher {
  #conn: Deno.TcpConn | undefined;
  #inflight: Array<(status: number) => void> = [];
  constructor(readonly port: number) {}

  /** Sends one event; resolves with the HTTP status (0 when the connection failed). */
  async publish(body: string): Promise<number> {
    const bytes = encoder.encode(body);
    const request = encoder.encode(
      `POST /events/${CHANNEL} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${bytes.length}\r\n\r\n${body}`,
    );
    try {
      if (this.#conn === undefined) {
        this.#conn = await Deno.connect({ hostname: HOST, port: this.port });
        this.#read(this.#conn);
      }
      const answer = new Promise<number>((r) => this.#inflight.push(r));
      let off = 0;
      while (off < request.length) off += await this.#conn.write(request.subarray(off));
      return await answer;
    } catch {
      this.#fail();
      return 0;
    }
  }

  async #read(conn: Deno.TcpConn): Promise<void> {
    const buf = new Uint8Array(16 * 1024);
    let text = "";
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += decoder.decode(buf.subarray(0, n));
        for (;;) {
          const end = text.indexOf("\r\n\r\n");
          if (end < 0) break;
          const headText = text.slice(0, end);
          const len = Number(/\r\ncontent-length: *(\d+)/i.exec(headText)?.[1] ?? "0");
          if (text.length < end + 4 + len) break;
          text = text.slice(end + 4 + len);
          this.#inflight.shift()?.(Number(headText.slice(9, 12)));
        }
      }
    } catch {
      // Reset: whatever is in flight failed.
    }
    if (this.#conn === conn) this.#fail();
  }

  #fail(): void {
    try {
      this.#conn?.close();
    } catch { /* closed */ }
    this.#conn = undefined;
    for (const r of this.#inflight.splice(0)) r(0);
  }

  close(): void {
    this.#fail();
  }
}

function readProc(pid: number): { rssMb: number; cpuTicks: number } | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0");
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { rssMb: rssKb / 1024, cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Reads JSON lines from a child's stdout. */
function lines(stream: ReadableStream<Uint8Array>, onLine: (o: Record<string, unknown>) => void) {
  return (async () => {
    let pending = "";
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          onLine(JSON.parse(line));
        } catch {
          console.error(`client: ${line}`);
        }
      }
    }
  })();
}

async function mainRole(): Promise<void> {
  const here = new URL(".", import.meta.url);
  const log = (s: string) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}`);
  let port: number;
  let server: Deno.ChildProcess | undefined;
  const serverErrors: string[] = [];
  let serverWarnings = 0;
  if (opts.port !== undefined) {
    port = num("port", opts.port, 1);
  } else {
    const probe = Deno.listen({ hostname: HOST, port: 0 });
    port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const flags = [
      "--port",
      String(port),
      "--hostname",
      HOST,
      "--max-clients",
      String(Math.ceil(CLIENTS * 1.1) + 64),
      "--quiet",
      ...opts["server-flag"],
    ];
    log(`server: deno run -A main.ts ${flags.join(" ")}`);
    server = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../main.ts", here).pathname, ...flags],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    (async () => {
      let pending = "";
      for await (const chunk of server!.stderr) {
        pending += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (/ ERROR /.test(line)) serverErrors.push(line);
          else if (/ WARN /.test(line)) serverWarnings++;
        }
      }
    })();
    const up = Date.now() + 15_000;
    for (;;) {
      try {
        (await Deno.connect({ hostname: HOST, port })).close();
        break;
      } catch {
        if (Date.now() > up) throw new Error("server did not start");
        await sleep(100);
      }
    }
  }

  // Client processes.
  log(`clients: ${CLIENTS} in ${PROCS} process(es), ramp ${RAMP}/s`);
  const children: Deno.ChildProcess[] = [];
  const writers: WritableStreamDefaultWriter<Uint8Array>[] = [];
  const readers: Promise<void>[] = [];
  let ready = 0;
  let connectedAtStart = 0;
  const periods = new Map<number, PeriodReport[]>();
  const finals: PeriodReport[] = [];
  for (let k = 0; k < PROCS; k++) {
    const n = Math.floor(CLIENTS / PROCS) + (k < CLIENTS % PROCS ? 1 : 0);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--role",
        "clients",
        "--port",
        String(port),
        "--clients",
        String(n),
        "--churn-every",
        String(CHURN_EVERY),
        "--reconnect-delay",
        String(RECONNECT_DELAY),
        "--ramp",
        String(RAMP / PROCS),
        "--drain",
        String(DRAIN),
        "--channel",
        CHANNEL,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    children.push(child);
    writers.push(child.stdin.getWriter());
    readers.push(lines(child.stdout, (o) => {
      if (o.type === "ready") {
        ready++;
        connectedAtStart += o.connected as number;
      } else if (o.type === "period") {
        const r = o as unknown as PeriodReport;
        periods.set(r.period, [...(periods.get(r.period) ?? []), r]);
      } else if (o.type === "final") finals.push(o as unknown as PeriodReport);
    }));
  }
  const tell = (o: unknown) =>
    Promise.all(writers.map((w) => w.write(encoder.encode(JSON.stringify(o) + "\n"))));
  while (ready < PROCS) await sleep(100);
  log(
    `${connectedAtStart}/${CLIENTS} subscribers connected; publishing ${RATE}/s for ${DURATION} s`,
  );

  // Publish, sample, report.
  const publisher = new Publisher(port);
  const rss: Array<[number, number]> = [];
  const t0 = Date.now();
  let lastSeq = 0;
  /** Seqs the server did not accept (never sent to subscribers): not counted as lost. */
  const failed: number[] = [];
  const answers: Promise<void>[] = [];
  let lastCpu = server ? readProc(server.pid)?.cpuTicks ?? 0 : 0;
  let lastCpuAt = Date.now();
  const rows: { t: number; rssMb: number; cpuPct: number }[] = [];
  let nextReport = t0 + REPORT_EVERY * 1000;
  let nextSample = t0;
  await tell({ cmd: "start" });
  const clk = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux
  while (Date.now() - t0 < DURATION * 1000) {
    const due = t0 + (lastSeq / RATE) * 1000;
    if (due > Date.now()) await sleep(due - Date.now());
    const seq = ++lastSeq;
    answers.push(
      publisher.publish(`${seq} ${monoNs()}`).then((status) => {
        if (status !== 202) failed.push(seq);
      }),
    );
    const now = Date.now();
    if (server && now >= nextSample) {
      const p = readProc(server.pid);
      if (p) rss.push([(now - t0) / 60_000, p.rssMb]);
      nextSample += 5_000;
    }
    if (now >= nextReport) {
      await tell({ cmd: "period" });
      const p = server ? readProc(server.pid) : undefined;
      const cpu = p ? ((p.cpuTicks - lastCpu) / clk) / ((now - lastCpuAt) / 1000) * 100 : NaN;
      if (p) [lastCpu, lastCpuAt] = [p.cpuTicks, now];
      rows.push({ t: Math.round((now - t0) / 1000), rssMb: p?.rssMb ?? NaN, cpuPct: cpu });
      log(
        `t=${Math.round((now - t0) / 1000)}s published=${lastSeq} rss=${
          p?.rssMb.toFixed(1) ?? "?"
        }MB cpu=${cpu.toFixed(0)}%`,
      );
      nextReport += REPORT_EVERY * 1000;
    }
  }
  await Promise.all(answers);
  const published = lastSeq;
  const elapsed = (Date.now() - t0) / 1000;
  log(
    `published ${published} events in ${elapsed.toFixed(1)} s (${failed.length} refused); draining`,
  );
  await tell({ cmd: "finish", lastSeq: published, failed });
  await Promise.all(children.map((c) => c.status));
  await Promise.all(readers);
  publisher.close();

  let status: Record<string, unknown> | undefined;
  try {
    const res = await fetch(`http://${HOST}:${port}/status`);
    status = await res.json();
  } catch { /* no status route */ }
  if (server) {
    server.kill("SIGTERM");
    await server.status;
  }

  // Merge the per-period reports of the client processes.
  const perPeriod = [...periods.keys()].sort((a, b) => a - b).map((n, i) => {
    const rs = periods.get(n)!;
    const h = new Histogram();
    for (const r of rs) h.merge(r.latency);
    const sum = (k: keyof PeriodReport) => rs.reduce((a, r) => a + (r[k] as number), 0);
    const row = rows[i];
    return {
      period: n,
      endS: row?.t ?? Math.round(elapsed),
      rssMb: row ? Number(row.rssMb.toFixed(1)) : undefined,
      cpuPct: row ? Math.round(row.cpuPct) : undefined,
      received: sum("received"),
      replayed: sum("replayed"),
      p50ms: h.percentile(50) / 1000,
      p99ms: h.percentile(99) / 1000,
      maxMs: h.max / 1000,
      reconnects: sum("reconnects"),
      serverCloses: sum("serverCloses"),
      lost: sum("lostAtSeam") + sum("lostInStream"),
      duplicates: sum("duplicates"),
      gapNotices: sum("gapNotices"),
      connected: sum("connected"),
    };
  });
  const fsum = (k: keyof PeriodReport) => finals.reduce((a, r) => a + ((r[k] as number) ?? 0), 0);
  const all = new Histogram();
  for (const f of finals) all.merge(f.latency);
  const after = rss.filter(([m]) => m * 60 >= Math.min(WARMUP, DURATION / 2));
  const summary = {
    clients: CLIENTS,
    procs: PROCS,
    durationS: Number(elapsed.toFixed(1)),
    rate: RATE,
    churnEveryS: CHURN_EVERY,
    published,
    publishFailures: failed.length,
    received: fsum("received"),
    replayed: fsum("replayed"),
    lost: fsum("lostAtSeam") + fsum("lostInStream") + fsum("lostAtEnd"),
    lostAtSeam: fsum("lostAtSeam"),
    lostInStream: fsum("lostInStream"),
    lostAtEnd: fsum("lostAtEnd"),
    duplicates: fsum("duplicates"),
    gapNotices: fsum("gapNotices"),
    neverReceived: fsum("neverReceived"),
    caughtUp: fsum("caughtUp"),
    reconnects: fsum("reconnects"),
    serverCloses: fsum("serverCloses"),
    refused: fsum("refused"),
    latencyMs: {
      p50: all.percentile(50) / 1000,
      p99: all.percentile(99) / 1000,
      p999: all.percentile(99.9) / 1000,
      max: all.max / 1000,
    },
    rss: server
      ? {
        firstMb: rss[0]?.[1],
        lastMb: rss.at(-1)?.[1],
        maxMb: Math.max(...rss.map((r) => r[1])),
        slopeMbPerMin: Number(slope(after).toFixed(3)),
        samples: rss.length,
      }
      : undefined,
    serverErrors: serverErrors.length,
    serverWarnings,
    serverStatus: status,
    perPeriod,
  };
  console.table(perPeriod.map((p) => ({
    "end s": p.endS,
    "rss MB": p.rssMb,
    "cpu %": p.cpuPct,
    received: p.received,
    replayed: p.replayed,
    "p50 ms": p.p50ms.toFixed(1),
    "p99 ms": p.p99ms.toFixed(1),
    "max ms": p.maxMs.toFixed(1),
    reconnects: p.reconnects,
    lost: p.lost,
    dups: p.duplicates,
  })));
  const { perPeriod: _p, serverStatus: _s, ...head } = summary;
  console.log(JSON.stringify(head, null, 2));
  if (serverErrors.length) console.error(serverErrors.slice(0, 20).join("\n"));
  if (opts.json) Deno.writeTextFileSync(opts.json, JSON.stringify(summary, null, 2) + "\n");
  const ok = summary.lost === 0 && summary.duplicates === 0 && summary.neverReceived === 0;
  log(ok ? "PASS: no event lost, no duplicate" : "FAIL: events lost or duplicated");
  Deno.exit(ok ? 0 : 1);
}

if (import.meta.main) {
  if (opts.role === "clients") await clientRole();
  else await mainRole();
}
