/**
 * `deno task bench:mqtt`: the MQTT bridge under load. A private Mosquitto
 * and the hub (`main.ts --mqtt`) on this machine, 1 000 SSE subscribers
 * (`load_subscriber.ts`) on one channel, and an MQTT.js publisher whose
 * payload starts with `t=<CLOCK_MONOTONIC ns>` (the format of
 * `load_publisher.ts`, so the subscribers measure latency).
 *
 * Measures, at QoS 0 and QoS 1:
 * - throughput: the publisher flat out (at most `--window` QoS 1 messages
 *   unacknowledged by the broker); messages the hub ingested per second (its
 *   `/status` `mqtt.published`) and events delivered per second summed over
 *   the subscribers, in the same window;
 * - latency: open loop at `--rate` messages/s, publish to SSE receive, p50 and
 *   p99; beside it, in the same run against the same hub, a direct HTTP
 *   publish (`load_publisher.ts`) at the same rate.
 *
 * Hub pinned to CPU 0, broker and load tools to CPU 1 (`taskset`). Every
 * process is started here and killed by its PID at the end.
 *
 * ```sh
 * deno task bench:mqtt
 * deno task bench:mqtt --clients 1000 --duration 5 --rate 50 --runs 3
 * ```
 *
 * @module
 */

import { monoNs } from "./_libc.ts";
import { cliFlags } from "../server/hub/mod.ts";

const MQTT = "npm:mqtt@5.16.0";
const ROOT = new URL("..", import.meta.url).pathname;

const { values: opts } = cliFlags({
  name: "mqtt_bench",
  usage: "deno task bench:mqtt [flags]",
  description: "Measures the hub's MQTT bridge: messages/s ingested and delivered to N SSE " +
    "clients at QoS 0 and 1, and publish-to-receive latency beside a direct HTTP publish.",
  flags: {
    clients: { type: "integer", default: 1000, min: 1, value: "N", help: "SSE subscribers" },
    duration: { type: "number", default: 5, value: "S", help: "window of each measure" },
    rate: { type: "integer", default: 50, min: 1, value: "R", help: "messages/s, latency runs" },
    window: {
      type: "integer",
      default: 64,
      min: 1,
      value: "W",
      help: "QoS 1 messages unacknowledged by the broker, throughput runs",
    },
    runs: { type: "integer", default: 1, min: 1, value: "N", help: "repeat, report medians" },
    "server-cpu": { type: "string", default: "0", value: "LIST", help: "taskset CPUs of the hub" },
    "load-cpu": {
      type: "string",
      default: "1",
      value: "LIST",
      help: "taskset CPUs of broker and load tools",
    },
    // Internal: the publisher child.
    role: { type: "string", default: "runner", value: "R", help: "runner | publisher (internal)" },
    broker: { type: "string", default: "", value: "URL", help: "publisher: broker URL" },
    qos: { type: "integer", default: 0, min: 0, value: "Q", help: "publisher: 0 or 1" },
    "pub-rate": {
      type: "integer",
      default: 0,
      min: 0,
      value: "R",
      help: "publisher: 0 = flat out",
    },
    seconds: { type: "number", default: 5, value: "S", help: "publisher: how long" },
  },
});

/** 100-byte payload: `t=<ns> seq=<n> ` padded with `x`, as load_publisher.ts writes it. */
function payload(seq: number): string {
  const head = `t=${monoNs()} seq=${seq} `;
  return head + "x".repeat(Math.max(0, 100 - head.length));
}

/** The publisher child: one MQTT.js client on topic bench/x. Prints `{"sent":N}`. */
async function publisher(): Promise<void> {
  const mqtt = await import(MQTT) as typeof import("npm:mqtt@5.16.0");
  const client = await mqtt.connectAsync(opts.broker, { clientId: `bench-pub-${Deno.pid}` });
  const qos = opts.qos === 1 ? 1 : 0;
  const end = performance.now() + opts.seconds * 1000;
  let sent = 0;
  let inflight = 0;
  if (opts["pub-rate"] > 0) {
    const gap = 1000 / opts["pub-rate"];
    let next = performance.now();
    while (performance.now() < end) {
      client.publish("bench/x", payload(sent++), { qos });
      next += gap;
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
  } else {
    const free: (() => void)[] = [];
    while (performance.now() < end) {
      if (qos === 1 && inflight >= opts.window) {
        await new Promise<void>((r) => free.push(r));
        continue;
      }
      inflight++;
      client.publishAsync("bench/x", payload(sent++), { qos }).finally(() => {
        inflight--;
        free.shift()?.();
      });
      // QoS 0: yield now and then so the socket drains (publish resolves on write).
      if (qos === 0 && sent % 64 === 0) await new Promise((r) => setTimeout(r, 0));
    }
  }
  await client.endAsync();
  console.log(JSON.stringify({ sent }));
}

// ---------------------------------------------------------------- runner --

const children = new Set<Deno.ChildProcess>();

function spawn(cpu: string, cmd: string, args: string[], out: "piped" | "null" = "null") {
  const child = new Deno.Command("taskset", {
    args: ["-c", cpu, cmd, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: out,
    stderr: "null",
  }).spawn();
  children.add(child);
  child.status.finally(() => children.delete(child));
  return child;
}

async function killAll(): Promise<void> {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch { /* exited */ }
  }
  await Promise.allSettled([...children].map((c) => c.status));
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitPort(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

// deno-lint-ignore no-explicit-any
async function status(port: number): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}/status`);
  return await res.json();
}

/** CPU time (user + system jiffies) of all processes, from /proc/stat, per CPU. */
function cpuBusy(): number[] {
  const lines = Deno.readTextFileSync("/proc/stat").split("\n").filter((l) => /^cpu\d/.test(l));
  return lines.map((l) => {
    const f = l.split(/\s+/).slice(1).map(Number);
    return f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  });
}

interface Setup {
  brokerUrl: string;
  hubPort: number;
  dir: string;
}

/** A fresh broker (CPU 1) and hub (CPU 0). */
async function startPair(): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "sluice_mqtt_bench_" });
  const mqttPort = freePort();
  await Deno.writeTextFile(
    `${dir}/mosquitto.conf`,
    [
      `listener ${mqttPort} 127.0.0.1`,
      "user root",
      "allow_anonymous true",
      // The bridge is slower than a flat-out publisher: queue the backlog, drop nothing.
      "max_queued_messages 0",
    ].join("\n") + "\n",
  );
  spawn(opts["load-cpu"], "/usr/sbin/mosquitto", ["-c", `${dir}/mosquitto.conf`]);
  await waitPort(mqttPort, "mosquitto");
  const brokerUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const hubPort = freePort();
  spawn(opts["server-cpu"], Deno.execPath(), [
    ...[
      "run",
      "-A",
      "--v8-flags=--max-semi-space-size=16,--semi-space-growth-factor=8,--expose-gc",
      "main.ts",
    ],
    ...["--port", String(hubPort), "--hostname", "127.0.0.1", "--quiet", "--keepalive", "0"],
    ...["--max-clients", String(opts.clients + 100), "--max-clients-per-ip", "0"],
    ...["--mqtt", brokerUrl, "--mqtt-topic", "bench/#", "--mqtt-client-id", `bench-${Deno.pid}`],
  ]);
  await waitPort(hubPort, "hub");
  const deadline = Date.now() + 30_000;
  while (!(await status(hubPort)).mqtt?.subscribed) {
    if (Date.now() > deadline) throw new Error("bridge did not subscribe");
    await new Promise((r) => setTimeout(r, 50));
  }
  return { brokerUrl, hubPort, dir };
}

/** Starts N subscribers; resolves once connected, with a function that ends the window. */
async function subscribers(s: Setup, label: string) {
  const ready = `${s.dir}/ready-${label}`;
  const go = `${s.dir}/go-${label}`;
  const child = spawn(opts["load-cpu"], "sh", [
    "-c",
    'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"',
    "sh",
    Deno.execPath(),
    ...["run", "-A", "bench/load_subscriber.ts", "-q", "-c", String(opts.clients)],
    ...["--ready-file", ready, "--go-file", go, "-d", "3600", "--read-delay-ms", "1"],
    `http://127.0.0.1:${s.hubPort}/events/bench/x`,
  ], "piped");
  const deadline = Date.now() + 60_000;
  while (!(await Deno.stat(ready).then(() => true, () => false))) {
    if (Date.now() > deadline) throw new Error("subscribers did not connect");
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    /** Opens the window now for `seconds`, then reads the subscribers' result. */
    async window(seconds: number, during: () => Promise<void>) {
      const start = monoNs() + 200e6;
      await Deno.writeTextFile(go, `${start} ${start + seconds * 1e9}`);
      await during();
      const out = await child.output();
      // deno-lint-ignore no-explicit-any
      return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!) as any;
    },
  };
}

function runPublisher(s: Setup, qos: 0 | 1, rate: number, seconds: number) {
  return spawn(opts["load-cpu"], Deno.execPath(), [
    ...["run", "-A", "bench/mqtt_bench.ts", "--role", "publisher", "--broker", s.brokerUrl],
    ...["--qos", String(qos), "--pub-rate", String(rate), "--seconds", String(seconds)],
    ...["--window", String(opts.window)],
  ], "piped");
}

interface Row {
  ingest: number;
  delivered: number;
  p50: number;
  p99: number;
  busy: number[];
}

/** Waits until the hub has recorded a message since the last call (the publisher is up). */
async function flowing(s: Setup): Promise<void> {
  const before = (await status(s.hubPort)).eventsPublished;
  const deadline = Date.now() + 30_000;
  while ((await status(s.hubPort)).eventsPublished === before) {
    if (Date.now() > deadline) throw new Error("the publisher sent nothing");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function throughput(
  qos: 0 | 1,
): Promise<Pick<Row, "ingest" | "delivered" | "busy"> & { dropped: number }> {
  const s = await startPair();
  try {
    const subs = await subscribers(s, `tp${qos}`);
    const pub = runPublisher(s, qos, 0, opts.duration + 4);
    await flowing(s);
    let ingest = 0;
    let busy: number[] = [];
    const result = await subs.window(opts.duration, async () => {
      // Aligned with the subscribers' window (it opens 200 ms after the go-file).
      await new Promise((r) => setTimeout(r, 200));
      const a = (await status(s.hubPort)).mqtt.published;
      const c0 = cpuBusy();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, opts.duration * 1000));
      const b = (await status(s.hubPort)).mqtt.published;
      const secs = (performance.now() - t0) / 1000;
      busy = cpuBusy().map((v, i) => Math.round((v - c0[i]) / secs)); // jiffies/s = % at 100 Hz
      ingest = (b - a) / secs;
    });
    await pub.output();
    return { ingest, delivered: result.events_per_s, busy, dropped: result.closed_by_server };
  } finally {
    await killAll();
    await Deno.remove(s.dir, { recursive: true }).catch(() => {});
  }
}

/** Latency of MQTT QoS 0, QoS 1 and HTTP on one hub, in turn, fresh subscribers each. */
async function latency(): Promise<Record<string, { p50: number; p99: number; n: number }>> {
  const s = await startPair();
  const out: Record<string, { p50: number; p99: number; n: number }> = {};
  try {
    for (const kind of ["mqtt0", "http", "mqtt1"] as const) {
      const subs = await subscribers(s, `lat-${kind}`);
      const seconds = opts.duration;
      const pub = kind === "http"
        ? spawn(opts["load-cpu"], Deno.execPath(), [
          ...["run", "-A", "bench/load_publisher.ts", "-q", "-k", "1"],
          ...["-r", String(opts.rate), "-d", String(seconds + 3)],
          `http://127.0.0.1:${s.hubPort}/events/bench/x`,
        ], "piped")
        : runPublisher(s, kind === "mqtt0" ? 0 : 1, opts.rate, seconds + 3);
      await flowing(s);
      const r = await subs.window(seconds, () => new Promise((res) => setTimeout(res, 0)));
      await pub.output();
      out[kind] = { p50: r.lat_p50_us / 1000, p99: r.lat_p99_us / 1000, n: r.lat_samples };
    }
    return out;
  } finally {
    await killAll();
    await Deno.remove(s.dir, { recursive: true }).catch(() => {});
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0);

async function runner(): Promise<void> {
  const stop = () => {
    killAll().then(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", stop);
  // Others' load on this machine shows here (the runner's own processes are not started yet).
  const loadBefore = Deno.loadavg();
  const tp: Record<
    string,
    { ingest: number[]; delivered: number[]; busy: string[]; dropped: number[] }
  > = {
    "0": { ingest: [], delivered: [], busy: [], dropped: [] },
    "1": { ingest: [], delivered: [], busy: [], dropped: [] },
  };
  const lat: Record<string, { p50: number[]; p99: number[]; n: number[] }> = {};
  try {
    for (let run = 0; run < opts.runs; run++) {
      for (const qos of [0, 1] as const) {
        const r = await throughput(qos);
        tp[qos].ingest.push(r.ingest);
        tp[qos].delivered.push(r.delivered);
        tp[qos].busy.push(r.busy.map((b) => `${b} %`).join(" / "));
        tp[qos].dropped.push(r.dropped);
        console.error(
          `run ${run + 1} QoS ${qos}: ingest ${fmt(r.ingest)}/s, delivered ${
            fmt(r.delivered)
          }/s, CPU busy ${r.busy.join("/")} %, subscribers dropped by the hub ${r.dropped}`,
        );
      }
      const l = await latency();
      for (const [k, v] of Object.entries(l)) {
        lat[k] ??= { p50: [], p99: [], n: [] };
        lat[k].p50.push(v.p50);
        lat[k].p99.push(v.p99);
        lat[k].n.push(v.n);
        console.error(`run ${run + 1} latency ${k}: p50 ${v.p50} ms, p99 ${v.p99} ms (${v.n})`);
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    await killAll();
  }
  const m = (xs: number[]) => fmt(median(xs));
  console.log(
    `\n${opts.clients} SSE clients, 100-byte payloads, ${opts.duration} s windows, ` +
      `medians of ${opts.runs}\n`,
  );
  console.log("| measure | QoS 0 | QoS 1 | direct HTTP publish |");
  console.log("| --- | --- | --- | --- |");
  console.log(
    `| messages ingested/s (publisher flat out) | ${m(tp[0].ingest)} | ${m(tp[1].ingest)} | |`,
  );
  console.log(
    `| events delivered/s (summed over clients) | ${m(tp[0].delivered)} | ${
      m(tp[1].delivered)
    } | |`,
  );
  const ms = (k: string, q: "p50" | "p99") => `${median(lat[k][q]).toFixed(1)} ms`;
  console.log(
    `| latency p50, ${opts.rate} msg/s | ${ms("mqtt0", "p50")} | ${ms("mqtt1", "p50")} | ${
      ms("http", "p50")
    } |`,
  );
  console.log(
    `| latency p99, ${opts.rate} msg/s | ${ms("mqtt0", "p99")} | ${ms("mqtt1", "p99")} | ${
      ms("http", "p99")
    } |`,
  );
  console.log(
    `| subscribers the hub dropped as slow (of ${opts.clients}) | ${tp[0].dropped.join(", ")} | ${
      tp[1].dropped.join(", ")
    } | |`,
  );
  console.log(
    `\nLoad average (1/5/15 min) before the run: ${loadBefore.join(" / ")}; after: ` +
      `${Deno.loadavg().join(" / ")}`,
  );
  console.log(
    `CPU busy (all processes, CPU0 / CPU1) during throughput windows: ` +
      `QoS 0 ${tp[0].busy.join(", ")}; QoS 1 ${tp[1].busy.join(", ")}`,
  );
}

if (import.meta.main) {
  if (opts.role === "publisher") await publisher();
  else await runner();
}
