/**
 * `deno task bench`: runs Sluice and the Deno.serve + ReadableStream baseline
 * side by side, same machine, same run, and prints a markdown table with the
 * ratio Sluice/baseline. Server pinned to CPU 0, load tools (separate Deno
 * processes: bench/load_subscriber.ts, bench/load_publisher.ts) pinned to CPU 1.
 * With `--peer c-ref-batch` (or `c-ref`) the C reference server of
 * ../shared/bench/peers/c_ref.c, built with gcc into a temp dir at run time, runs
 * in the same matrix, and the table adds the ratio Sluice/<peer>. With
 * `--peer deno-floor` the platform's floor runs too: bench/floor_deno_listen.ts,
 * the least a Deno.listen server does for the same job (Sluice/deno-floor is
 * Sluice's own overhead; deno-floor/C is the runtime's).
 *
 * Measures (issue 6):
 * - fan-out: events delivered per second, summed over clients, at 100 / 1000 /
 *   5000 clients; 100-byte events; publisher with 4 keep-alive connections,
 *   closed loop with at most 64 events published but not yet delivered;
 * - latency: publish-to-receive p50/p99, 1000 clients × 50 events/s, open loop;
 * - memory per idle connection: server VmRSS growth / connections, 10 000 idle;
 * - connects/s: time to get 10 000 streams established (512 handshakes in flight);
 * - publish path: publisher response time while the fan-out runs, and an
 *   overload run (subscribers that stop reading, publisher flat out): status
 *   codes (202 vs 503) and server RSS growth.
 *
 * Every server and load process is started fresh per measure, killed by PID at
 * the end (also on error or Ctrl-C); every wait has a deadline.
 *
 * ```sh
 * deno task bench                      # full matrix, both servers (~2-3 min)
 * deno task bench --quick              # smoke run (< 60 s)
 * deno task bench --only baseline --quick
 * deno task bench --runs 3 --json /tmp/bench.json
 * deno task bench --peer c-ref-batch   # + the C reference peer (needs gcc, ../shared/bench)
 * deno task bench --peer c-ref-batch,deno-floor   # + the Deno floor
 * deno task bench --redis --quick      # memory engine vs Redis engine (private redis-server)
 * ```
 *
 * With `--redis` a private `redis-server` (free port, temp dir, no persistence,
 * `noeviction`, pinned with the server) runs for the whole bench, and the
 * matrix is Sluice with the memory engine, `sluice-redis` (one instance,
 * `--redis`) and `sluice-redis-x2` (two instances, `--reuse-port`, both on
 * the server CPU: correctness of the shared port, not a speed-up); the report
 * adds a Redis table: ratios to memory, Redis CPU and memory per 1 000 events.
 *
 * @module
 */
import { monoNs } from "./_libc.ts";
import { Histogram } from "./_histogram.ts";
import { cliFlags } from "../server/hub/mod.ts";

const { values: opts } = cliFlags({
  name: "bench",
  usage: "deno task bench [flags]",
  description: "Runs Sluice and the Deno.serve + ReadableStream baseline (and with --peer the C " +
    "reference or the Deno floor) side by side on this machine, servers pinned to one CPU and " +
    "load tools to another, and prints a markdown table of fan-out, latency, memory per idle " +
    "connection, connects/s and the publish path under overload.",
  flags: {
    quick: { type: "boolean", help: "short windows, fewer clients (smoke run, < 60 s)" },
    only: {
      type: "string",
      value: "NAME",
      help: "sluice | baseline | sluice-redis (default: both, or with --redis sluice and the " +
        "Redis ones; peers from --peer are added)",
    },
    redis: {
      type: "boolean",
      help: "also run Sluice on a private redis-server: one instance (sluice-redis) and two " +
        "sharing a port (sluice-redis-x2), against the memory engine, plus Redis CPU and " +
        "memory per 1 000 events",
    },
    peer: {
      type: "string",
      multiple: true,
      value: "NAME",
      help:
        "also run a reference peer: c-ref-batch | c-ref | deno-floor (or a comma list); the C " +
        "ones are built from ../shared/bench/peers/c_ref.c with gcc -O2 into a temp dir at run " +
        "time, deno-floor is bench/floor_deno_listen.ts",
    },
    duration: { type: "string", value: "S", help: "fan-out window per client count (5; quick 2)" },
    warmup: {
      type: "string",
      value: "S",
      help: "pause between connect phase and window (1; quick 0.5)",
    },
    "latency-duration": { type: "string", value: "S", help: "latency window (5; quick 2)" },
    "overload-duration": { type: "string", value: "S", help: "overload run length (5; quick 2)" },
    clients: {
      type: "string",
      value: "LIST",
      help: "fan-out client counts (100,1000,5000; quick 100,1000)",
    },
    "latency-clients": {
      type: "string",
      default: "1000",
      value: "N",
      help: "clients of the latency run",
    },
    "latency-rate": {
      type: "string",
      default: "50",
      value: "R",
      help: "events/s of the latency run",
    },
    idle: {
      type: "string",
      value: "N",
      help: "idle connections for memory and connects/s (10000; quick 2000)",
    },
    stall: {
      type: "string",
      default: "100",
      value: "N",
      help: "subscribers that stop reading, in the overload run",
    },
    "overload-clients": {
      type: "string",
      default: "0",
      value: "N",
      help: "subscribers that keep reading, in the overload run",
    },
    "overload-size": {
      type: "string",
      default: "1000",
      value: "BYTES",
      help: "event size in the overload run: large, so the kernel's socket buffers fill within a " +
        "second or two",
    },
    "rss-cap": {
      type: "string",
      default: "1024",
      value: "MB",
      help: "stop the overload run when the server RSS grew this much",
    },
    window: { type: "string", default: "64", value: "W", help: "closed-loop window" },
    "pub-conns": { type: "string", default: "4", value: "K", help: "publisher connections" },
    size: { type: "string", default: "100", value: "BYTES", help: "event body size" },
    "sub-procs": {
      type: "string",
      value: "N",
      help: "subscriber processes per measure (default: 1 per 5000 clients)",
    },
    "read-delay-ms": {
      type: "string",
      default: "auto",
      value: "MS",
      help: "lazy subscriber reads in fan-out runs only; auto: epoll 1, deno 0 below 2000 " +
        "clients else clients/100 (at most 50); 0 = off",
    },
    engine: {
      type: "string",
      choices: ["epoll", "deno"],
      default: "epoll",
      help: "subscriber engine: epoll (FFI, about as cheap per read as the C sseload) or deno " +
        "(Deno.connect; costs more client CPU)",
    },
    sseload: {
      type: "string",
      value: "BIN",
      help: "use the C sseload (../shared/bench/sseload) for the idle/connects measure",
    },
    runs: {
      type: "string",
      default: "1",
      value: "N",
      help: "repeat each measure N times, report medians",
    },
    "wait-quiet": {
      type: "string",
      value: "S",
      help: "before each measure wait up to S s until both CPUs are < 15 % busy (5; quick 0)",
    },
    "server-cpu": {
      type: "string",
      default: "0",
      value: "LIST",
      help: "taskset CPU list for the server",
    },
    "load-cpu": {
      type: "string",
      default: "1",
      value: "LIST",
      help: "taskset CPU list for load tools",
    },
    "no-pin": { type: "boolean", help: "do not use taskset" },
    skip: {
      type: "string",
      default: "",
      value: "LIST",
      help: "measures to skip: fanout,latency,idle,overload",
    },
    "sluice-arg": {
      type: "string",
      multiple: true,
      value: "ARG",
      help: "extra argument for Sluice's main.ts",
    },
    json: { type: "string", value: "FILE", help: "also write every raw result as JSON" },
    verbose: { type: "boolean", short: "v", help: "show load tools' progress lines" },
  },
});

/** A bad flag value: one line and exit 2, as for a flag the table refuses. */
function badFlag(message: string): never {
  console.error(`bench: ${message}; run with --help for usage`);
  Deno.exit(2);
}

const QUICK = opts.quick;
const num = (name: string, v: string | undefined, dflt: number, quick = dflt): number => {
  const n = v === undefined ? (QUICK ? quick : dflt) : Number(v);
  if (!Number.isFinite(n) || n < 0) {
    badFlag(`--${name} must be a number >= 0: received ${JSON.stringify(v)}`);
  }
  return n;
};
const CFG = {
  duration: num("duration", opts.duration, 5, 2),
  warmup: num("warmup", opts.warmup, 1, 0.5),
  latencyDuration: num("latency-duration", opts["latency-duration"], 5, 2),
  overloadDuration: num("overload-duration", opts["overload-duration"], 5, 2),
  clients: (opts.clients ?? (QUICK ? "100,1000" : "100,1000,5000")).split(",").map(Number),
  latencyClients: num("latency-clients", opts["latency-clients"], 1000),
  latencyRate: num("latency-rate", opts["latency-rate"], 50),
  idle: num("idle", opts.idle, 10000, 2000),
  stall: num("stall", opts.stall, 100),
  overloadClients: num("overload-clients", opts["overload-clients"], 0),
  overloadSize: num("overload-size", opts["overload-size"], 1000),
  rssCapMb: num("rss-cap", opts["rss-cap"], 1024),
  window: num("window", opts.window, 64),
  pubConns: num("pub-conns", opts["pub-conns"], 4),
  size: num("size", opts.size, 100),
  subProcs: opts["sub-procs"] === undefined ? 0 : num("sub-procs", opts["sub-procs"], 1),
  readDelayMs: opts["read-delay-ms"] === "auto"
    ? -1
    : num("read-delay-ms", opts["read-delay-ms"], 0),
  sseload: opts.sseload ?? null,
  engine: opts.engine,
  runs: Math.max(1, Math.floor(num("runs", opts.runs, 1))),
  waitQuiet: num("wait-quiet", opts["wait-quiet"], 5, 0),
  serverCpu: opts["no-pin"] ? null : opts["server-cpu"],
  loadCpu: opts["no-pin"] ? null : opts["load-cpu"],
  skip: new Set(opts.skip.split(",").filter((s) => s !== "")),
};
for (const c of CFG.clients) {
  if (!Number.isInteger(c) || c <= 0) {
    badFlag(`--clients must be positive integers: received ${JSON.stringify(opts.clients)}`);
  }
}

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
/**
 * V8 flags of Sluice's process: those of `deno task start` (as users run it),
 * unless SLUICE_BENCH_V8 is set ("" for none).
 */
const SLUICE_V8_FLAGS = Deno.env.get("SLUICE_BENCH_V8") ?? startTaskV8Flags();

function startTaskV8Flags(): string {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const task = String(config.tasks?.start ?? "");
  return /--v8-flags=(\S+)/.exec(task)?.[1] ?? "";
}
const DENO = Deno.execPath();
const CHANNEL_PATH = "/events/bench";
/** The C reference peers' source (read-only; built into TMP at run time, never copied here). */
const PEER_SRC = new URL("../../shared/bench/peers/c_ref.c", import.meta.url).pathname;

type DenoServerName = "sluice" | "baseline" | "sluice-redis" | "sluice-redis-x2";
type CPeerName = "c-ref-batch" | "c-ref";
type PeerName = CPeerName | "deno-floor";
type ServerName = DenoServerName | PeerName;
const PEER_NAMES: readonly PeerName[] = ["c-ref-batch", "c-ref", "deno-floor"];

interface ServerSpec {
  name: ServerName;
  /** full argv (program first), given the port */
  argv(port: number): string[];
  /** extra environment variables */
  env?: Record<string, string>;
  /** path subscribers GET (default CHANNEL_PATH) */
  subPath?: string;
  /** path the publisher POSTs to (default CHANNEL_PATH) */
  pubPath?: string;
  /** processes started on the same port (`--reuse-port`), default 1 */
  instances?: number;
  /** runs against the bench's private redis-server */
  redis?: boolean;
}

const subPath = (spec: ServerSpec) => spec.subPath ?? CHANNEL_PATH;
const pubPath = (spec: ServerSpec) => spec.pubPath ?? CHANNEL_PATH;

/** the peers' binary, built by buildPeer() in preflight */
let cRefBin = "";

function peerSpec(name: CPeerName): ServerSpec {
  return {
    name,
    argv: (port) => [cRefBin, String(port)],
    env: { BATCH: name === "c-ref-batch" ? "1" : "0" },
    subPath: "/sub",
    pubPath: "/publish",
  };
}

/** `deno run -A` of a script with Sluice's V8 flags (as `deno task start` runs). */
function denoWithSluiceFlags(script: string, args: string[], denoFlags: string[] = []): string[] {
  return [
    DENO,
    "run",
    "-A",
    ...denoFlags,
    ...(SLUICE_V8_FLAGS ? [`--v8-flags=${SLUICE_V8_FLAGS}`] : []),
    script,
    ...args,
  ];
}

/** Port of the private redis-server of `--redis` (set in preflight). */
let redisPort = 0;

/** Sluice's CLI arguments in every Sluice run. */
function sluiceArgs(port: number): string[] {
  return [
    "--port",
    String(port),
    "--hostname",
    "127.0.0.1",
    "--max-clients",
    "20000",
    "--queue-size",
    "65536",
    ...opts["sluice-arg"],
  ];
}

const SERVERS: Record<ServerName, ServerSpec> = {
  sluice: {
    name: "sluice",
    argv: (port) => denoWithSluiceFlags(`${ROOT}main.ts`, sluiceArgs(port)),
  },
  "sluice-redis": {
    name: "sluice-redis",
    redis: true,
    argv: (port) =>
      denoWithSluiceFlags(`${ROOT}main.ts`, [
        ...sluiceArgs(port),
        "--redis",
        `redis://127.0.0.1:${redisPort}`,
      ]),
  },
  "sluice-redis-x2": {
    name: "sluice-redis-x2",
    redis: true,
    instances: 2,
    argv: (port) =>
      denoWithSluiceFlags(`${ROOT}main.ts`, [
        ...sluiceArgs(port),
        "--redis",
        `redis://127.0.0.1:${redisPort}`,
        "--reuse-port",
      ], ["--unstable-net"]),
  },
  baseline: {
    name: "baseline",
    argv: (port) => [DENO, "run", "-A", `${HERE}baseline_deno_serve.ts`, "--port", String(port)],
  },
  "c-ref-batch": peerSpec("c-ref-batch"),
  "c-ref": peerSpec("c-ref"),
  // The platform's floor: a minimal Deno.listen server, with Sluice's V8 flags.
  "deno-floor": {
    name: "deno-floor",
    argv: (port) => denoWithSluiceFlags(`${HERE}floor_deno_listen.ts`, ["--port", String(port)]),
  },
};

let selected: ServerName[] = opts.redis
  ? ["sluice", "sluice-redis", "sluice-redis-x2"]
  : ["sluice", "baseline"];
if (opts.only !== undefined) {
  const only = ["sluice", "baseline", ...(opts.redis ? ["sluice-redis"] : [])];
  if (!only.includes(opts.only)) {
    badFlag(`--only must be ${only.join(" or ")}: received ${JSON.stringify(opts.only)}`);
  }
  selected = [opts.only as ServerName];
}
const peers: PeerName[] = [];
for (const p of opts.peer.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v)) {
  if (!(PEER_NAMES as readonly string[]).includes(p)) {
    badFlag(`--peer must be ${PEER_NAMES.join(" or ")}: received ${JSON.stringify(p)}`);
  }
  if (!peers.includes(p as PeerName)) peers.push(p as PeerName);
}
selected = [...selected, ...peers];
/** The peers built from C source (need gcc and ../shared/bench). */
const cPeers = peers.filter((p) => p !== "deno-floor");

// ---- processes ------------------------------------------------------------

class BenchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BenchError";
  }
}

interface Proc {
  name: string;
  child: Deno.ChildProcess;
  pid: number;
  exited: boolean;
  status: Promise<Deno.CommandStatus>;
  stdout: Promise<string>;
  log: string;
}

const live = new Map<number, Proc>();
const TMP = Deno.makeTempDirSync({ prefix: "sluice-bench-" });
let procSeq = 0;

/**
 * Start `argv` pinned to `cpu` with the soft fd limit raised to the hard limit.
 * stdout is captured (the tools print one JSON line), stderr goes to a log file.
 */
function spawn(
  name: string,
  cpu: string | null,
  argv: string[],
  env: Record<string, string> = {},
): Proc {
  const log = `${TMP}/${++procSeq}-${name}.log`;
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@" 2>"$LOG"';
  const pin = cpu === null ? [] : ["taskset", "-c", cpu];
  const child = new Deno.Command("bash", {
    args: ["-c", script, "bash", ...pin, ...argv],
    env: { ...env, LOG: log, DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const chunks: Uint8Array[] = [];
  const stdout = (async () => {
    for await (const c of child.stdout) chunks.push(c);
    return new TextDecoder().decode(concat(chunks));
  })();
  const p: Proc = { name, child, pid: child.pid, exited: false, status: child.status, stdout, log };
  live.set(p.pid, p);
  p.status.then(() => {
    p.exited = true;
    live.delete(p.pid);
  });
  return p;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves with the status, or null after `ms`. */
async function waitExit(p: Proc, ms: number): Promise<Deno.CommandStatus | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<null>((r) => timer = setTimeout(() => r(null), ms));
  const s = await Promise.race([p.status, t]);
  clearTimeout(timer);
  return s;
}

/** SIGTERM, then SIGKILL after `graceMs`; by PID, only our own children. */
async function stop(p: Proc, graceMs = 3000): Promise<void> {
  if (p.exited) return;
  try {
    p.child.kill("SIGTERM");
  } catch { /* exited meanwhile */ }
  if ((await waitExit(p, graceMs)) === null) {
    try {
      p.child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
    await waitExit(p, 2000);
  }
}

async function stopAll(): Promise<void> {
  await Promise.all([...live.values()].map((p) => stop(p)));
}

function logTail(p: Proc): string {
  try {
    return Deno.readTextFileSync(p.log).split("\n").slice(-15).join("\n");
  } catch {
    return "";
  }
}

/** Wait for a tool's JSON line; on deadline SIGTERM it (the tools report on SIGTERM). */
async function toolResult(p: Proc, deadlineMs: number): Promise<Record<string, unknown>> {
  if ((await waitExit(p, deadlineMs)) === null) await stop(p);
  const out = (await p.stdout).trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(out);
  } catch {
    throw new BenchError(`${p.name} gave no result (exit ${p.exited}); log:\n${logTail(p)}`);
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A started server. */
interface Running {
  /** The (first) server process. */
  proc: Proc;
  /** Every server process (several share the port with `--reuse-port`). */
  procs: Proc[];
  port: number;
  spec: ServerSpec;
}

/** Listening sockets on `port` (one per process sharing it). */
async function listeners(port: number): Promise<number> {
  const o = await new Deno.Command("ss", { args: ["-H", "-tln", `( sport = :${port} )`] })
    .output().catch(() => undefined);
  if (o === undefined) return 0;
  return new TextDecoder().decode(o.stdout).split("\n").filter((l) => l.trim() !== "").length;
}

async function startServer(spec: ServerSpec): Promise<Running> {
  const port = freePort();
  const count = spec.instances ?? 1;
  const procs = Array.from(
    { length: count },
    (_, i) =>
      spawn(`${spec.name}${count > 1 ? `-${i}` : ""}`, CFG.serverCpu, spec.argv(port), spec.env),
  );
  const proc = procs[0];
  const deadline = monoNs() + 30e9;
  while (monoNs() < deadline) {
    if (procs.some((p) => p.exited)) break;
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      if (count === 1 || (await listeners(port)) >= count) return { proc, procs, port, spec };
    } catch { /* not yet */ }
    await sleep(50);
  }
  await Promise.all(procs.map((p) => stop(p)));
  throw new BenchError(`${spec.name} did not listen on ${port}; log:\n${logTail(proc)}`);
}

// ---- /proc ----------------------------------------------------------------

const TICK = 100; // USER_HZ

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function cpuTicks(pid: number): number {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return 0;
  }
}

/** Busy ticks (user+nice+system+irq+softirq) per CPU. */
function cpuBusy(): number[] {
  const out: number[] = [];
  for (const line of Deno.readTextFileSync("/proc/stat").split("\n")) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2].split(" ").map(Number);
    out[Number(m[1])] = f[0] + f[1] + f[2] + f[5] + f[6];
  }
  return out;
}

interface CpuMark {
  t: number;
  server: number;
  load: number;
  /** the private redis-server's ticks (0 without --redis) */
  redis: number;
  busy: number[];
}

/** The private redis-server of `--redis`, kept out of `live` (it outlives each measure). */
let redisProc: Proc | undefined;

function cpuMark(server: Proc | Proc[], load: Proc[]): CpuMark {
  const servers = Array.isArray(server) ? server : [server];
  return {
    t: monoNs(),
    server: servers.reduce((a, p) => a + cpuTicks(p.pid), 0),
    load: load.reduce((a, p) => a + cpuTicks(p.pid), 0),
    redis: redisProc === undefined ? 0 : cpuTicks(redisProc.pid),
    busy: cpuBusy(),
  };
}

interface CpuUse {
  server_pct: number;
  /** the private redis-server's CPU (0 without --redis) */
  redis_pct: number;
  load_pct: number;
  /** busy % of the server CPU not spent by the server (other processes, softirq) */
  other_on_server_cpu_pct: number;
  /** busy % of the load CPU not spent by the load tools */
  other_on_load_cpu_pct: number;
}

function cpuUse(a: CpuMark, b: CpuMark): CpuUse {
  const s = (b.t - a.t) / 1e9;
  const pct = (ticks: number) => Math.round((ticks / TICK / s) * 1000) / 10;
  const cpuIdx = (list: string | null, dflt: number) =>
    list === null ? dflt : Number(list.split(/[,-]/)[0]);
  const sc = cpuIdx(CFG.serverCpu, 0);
  const lc = cpuIdx(CFG.loadCpu, 1);
  const server = b.server - a.server;
  const load = b.load - a.load;
  const redis = b.redis - a.redis;
  return {
    server_pct: pct(server),
    redis_pct: pct(redis),
    load_pct: pct(load),
    // Redis shares the server CPU: its share is not "other" load.
    other_on_server_cpu_pct: pct(
      Math.max(0, (b.busy[sc] ?? 0) - (a.busy[sc] ?? 0) - server - redis),
    ),
    other_on_load_cpu_pct: pct(Math.max(0, (b.busy[lc] ?? 0) - (a.busy[lc] ?? 0) - load)),
  };
}

/**
 * Server-side TCP states of the sockets on `port` (from `ss`): a stream the server
 * closed while its send buffer was full sits in FIN-WAIT-1, invisible to the client.
 */
async function socketStates(port: number): Promise<Record<string, number>> {
  try {
    const o = await new Deno.Command("ss", { args: ["-H", "-tan", `( sport = :${port} )`] })
      .output();
    const counts: Record<string, number> = {};
    for (const line of new TextDecoder().decode(o.stdout).split("\n")) {
      const state = line.trim().split(/\s+/)[0];
      if (state) counts[state] = (counts[state] ?? 0) + 1;
    }
    return counts;
  } catch {
    return {};
  }
}

// ---- load tools -------------------------------------------------------------

function subscriber(label: string, url: string, args: string[]): Proc {
  return spawn(label, CFG.loadCpu, [
    DENO,
    "run",
    "-A",
    `${HERE}load_subscriber.ts`,
    "--engine",
    CFG.engine,
    ...(opts.verbose ? [] : ["-q"]),
    "--label",
    label,
    ...args,
    url,
  ]);
}

function publisher(label: string, url: string, args: string[]): Proc {
  return spawn(label, CFG.loadCpu, [
    DENO,
    "run",
    "-A",
    `${HERE}load_publisher.ts`,
    "--label",
    label,
    "-s",
    String(CFG.size),
    ...args,
    url,
  ]);
}

async function waitFiles(paths: string[], procs: Proc[], ms: number): Promise<void> {
  const deadline = monoNs() + ms * 1e6;
  for (;;) {
    if (paths.every((p) => exists(p))) return;
    const dead = procs.find((p) => p.exited);
    if (dead) throw new BenchError(`${dead.name} exited early; log:\n${logTail(dead)}`);
    if (monoNs() > deadline) throw new BenchError(`timeout waiting for ${paths.join(", ")}`);
    await sleep(20);
  }
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

function split(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < total % parts ? 1 : 0));
}

type Json = Record<string, unknown>;
const n = (j: Json, k: string): number => Number(j[k] ?? 0);

interface SubRun {
  subs: Json[];
  pub: Json;
  cpu: CpuUse;
  rssKb: number;
}

/**
 * Subscribers (several processes if asked), a shared window via a go file,
 * and a publisher; returns the raw results and CPU use in the window.
 */
async function subscribeAndPublish(
  tag: string,
  server: Running,
  clients: number,
  windowS: number,
  subArgs: string[],
  pubArgs: string[],
  follow: boolean,
): Promise<SubRun> {
  const url = `http://127.0.0.1:${server.port}${subPath(server.spec)}`;
  const pubUrl = `http://127.0.0.1:${server.port}${pubPath(server.spec)}`;
  const procsN = CFG.subProcs > 0 ? CFG.subProcs : Math.ceil(clients / 5000);
  const go = `${TMP}/${tag}.go`;
  const ready: string[] = [];
  const shm: string[] = [];
  const subs: Proc[] = [];
  const maxTime = 60 + CFG.warmup + windowS;
  split(clients, procsN).forEach((c, i) => {
    ready.push(`${TMP}/${tag}-${i}.ready`);
    shm.push(`${TMP}/${tag}-${i}.shm`);
    subs.push(subscriber(`${tag}-sub${i}`, url, [
      "-c",
      String(c),
      "--ready-file",
      ready[i],
      "--stats-shm",
      shm[i],
      "--go-file",
      go,
      "--max-time",
      String(maxTime),
      ...subArgs,
    ]));
  });
  await waitFiles(ready, subs, 60_000);
  const pub = publisher(`${tag}-pub`, pubUrl, [
    ...(follow ? ["--follow", shm.join(","), "--wait-ready", "--window", String(CFG.window)] : []),
    "-k",
    String(CFG.pubConns),
    "-d",
    String(CFG.warmup + windowS + 1.5),
    ...pubArgs,
  ]);
  const start = monoNs() + CFG.warmup * 1e9 + 300e6; // + publisher start-up
  const end = start + windowS * 1e9;
  Deno.writeTextFileSync(`${go}.tmp`, `${start} ${end}\n`);
  Deno.renameSync(`${go}.tmp`, go);
  await sleep((start - monoNs()) / 1e6);
  const load = [...subs, pub];
  const a = cpuMark(server.procs, load);
  await sleep((end - monoNs()) / 1e6);
  const b = cpuMark(server.procs, load);
  const rss = server.procs.reduce((sum, p) => sum + rssKb(p.pid), 0);
  const subResults = await Promise.all(subs.map((p) => toolResult(p, 30_000)));
  const pubResult = await toolResult(pub, 10_000);
  return { subs: subResults, pub: pubResult, cpu: cpuUse(a, b), rssKb: rss };
}

function sumOf(list: Json[], k: string): number {
  return list.reduce((a, j) => a + n(j, k), 0);
}

// ---- measures ---------------------------------------------------------------

interface Result {
  measure: string;
  server: ServerName;
  run: number;
  value: number;
  detail: Json;
}

const results: Result[] = [];

/** Wait (at most --wait-quiet s) until both CPUs are nearly idle; returns the last busy %. */
async function waitQuiet(): Promise<number> {
  const deadline = monoNs() + CFG.waitQuiet * 1e9;
  let busy = 0;
  do {
    const a = cpuBusy();
    const t = monoNs();
    await sleep(500);
    const b = cpuBusy();
    const s = (monoNs() - t) / 1e9;
    busy = Math.max(...b.map((v, i) => ((v - (a[i] ?? 0)) / TICK / s) * 100));
    if (busy < 15) return busy;
  } while (monoNs() < deadline);
  return busy;
}

async function withServer<T>(
  spec: ServerSpec,
  f: (s: Running) => Promise<T>,
): Promise<T> {
  if (CFG.waitQuiet > 0) {
    const busy = await waitQuiet();
    if (busy >= 15) {
      console.error(`  (machine still busy: a CPU at ${Math.round(busy)} % from other processes)`);
    }
  }
  // Each Redis run starts from an empty dataset, so its memory is this run's.
  if (spec.redis) await redisCli("FLUSHALL");
  const s = await startServer(spec);
  try {
    // one request so that the first measured one does not pay for JIT/lazy init
    await warmUp(s.port, pubPath(spec));
    return await f(s);
  } finally {
    if (spec.redis && results.length > 0) {
      const last = results[results.length - 1];
      if (last.server === spec.name) Object.assign(last.detail, await redisMemory());
    }
    await Promise.all(s.procs.map((p) => stop(p)));
  }
}

/** One command through redis-cli to the private server; its output. */
async function redisCli(...args: string[]): Promise<string> {
  const o = await new Deno.Command("redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(redisPort), ...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(o.stdout).trim();
}

/**
 * Redis memory after a run: `used_memory` of `INFO memory` over the events
 * retained in the log (each is also in its channel's stream, bounded by
 * --history; the dataset was empty before the run).
 */
async function redisMemory(): Promise<Json> {
  const info = await redisCli("INFO", "memory");
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
  const base = Number(/used_memory_startup:(\d+)/.exec(info)?.[1] ?? NaN);
  const logged = Number(await redisCli("XLEN", "{sluice}:log"));
  return {
    redis_used_memory_mb: Math.round(used / 1048576 * 10) / 10,
    redis_log_events: logged,
    redis_bytes_per_event: logged > 0 ? Math.round((used - base) / logged) : NaN,
  };
}

/** Starts the private redis-server of `--redis` on the server CPU and waits for PING. */
async function startRedis(): Promise<void> {
  redisPort = freePort();
  const dir = `${TMP}/redis`;
  Deno.mkdirSync(dir);
  redisProc = spawn("redis", CFG.serverCpu, [
    "redis-server",
    "--port",
    String(redisPort),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
    "--maxmemory-policy",
    "noeviction",
    "--daemonize",
    "no",
  ]);
  live.delete(redisProc.pid); // Not stopped with each measure's processes.
  for (let i = 0; i < 200; i++) {
    if ((await redisCli("PING")) === "PONG") return;
    await sleep(25);
  }
  throw new BenchError(`redis-server did not answer on ${redisPort}; log:\n${logTail(redisProc)}`);
}

async function stopRedis(): Promise<void> {
  const p = redisProc;
  redisProc = undefined;
  if (p === undefined) return;
  live.set(p.pid, p);
  await stop(p);
}

async function warmUp(port: number, path: string): Promise<void> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const body = "warm-up";
    await c.write(new TextEncoder().encode(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    ));
    const buf = new Uint8Array(1024);
    const deadline = setTimeout(() => c.close(), 2000);
    try {
      await c.read(buf);
    } catch { /* closed by deadline */ }
    clearTimeout(deadline);
  } finally {
    try {
      c.close();
    } catch { /* closed */ }
  }
}

/** Lazy-read period for a fan-out run (see --read-delay-ms). */
function readDelay(clients: number): number {
  if (CFG.readDelayMs >= 0) return CFG.readDelayMs;
  // Measured against c-ref-batch: epoll + 1 ms costs ~20 % less client CPU per event (within
  // ~10 % of the C sseload); deno gains nothing below ~2000 clients (timer granularity costs
  // more than it saves) and ~30 % at 5000 with clients/100 ms.
  if (CFG.engine === "epoll") return 1;
  return clients < 2000 ? 0 : Math.min(50, Math.round(clients / 100));
}

async function fanout(spec: ServerSpec, clients: number, run: number): Promise<void> {
  await withServer(spec, async (s) => {
    const r = await subscribeAndPublish(
      `fanout-${spec.name}-${clients}-${run}`,
      s,
      clients,
      CFG.duration,
      ["--read-delay-ms", String(readDelay(clients))],
      [],
      true,
    );
    const ev = sumOf(r.subs, "events_per_s");
    results.push({
      measure: `fanout-${clients}`,
      server: spec.name,
      run,
      value: ev,
      detail: {
        events_per_s: ev,
        ev_per_server_cpu_s: r.cpu.server_pct > 0 ? Math.round(ev / (r.cpu.server_pct / 100)) : NaN,
        read_delay_ms: readDelay(clients),
        established: sumOf(r.subs, "established"),
        closed_by_server: sumOf(r.subs, "closed_by_server") + sumOf(r.subs, "reset_by_server"),
        sub_cpu_pct: sumOf(r.subs, "window_cpu_pct"),
        pub_cpu_pct: n(r.pub, "cpu_pct"),
        pub_rate: n(r.pub, "achieved_rate"),
        pub_status: r.pub.status_codes,
        pub_resp_p50_us: n(r.pub, "resp_p50_us"),
        pub_resp_p99_us: n(r.pub, "resp_p99_us"),
        lat_p99_us: Math.max(...r.subs.map((j) => n(j, "lat_p99_us"))),
        server_rss_mb: Math.round(r.rssKb / 1024),
        // Redis CPU-ms per 1 000 events published (one append and one log read per instance).
        redis_cpu_ms_per_1000_events: spec.redis && n(r.pub, "achieved_rate") > 0
          ? Math.round(r.cpu.redis_pct * 10_000 / n(r.pub, "achieved_rate") * 100) / 100
          : NaN,
        ...r.cpu,
      },
    });
  });
}

async function latency(spec: ServerSpec, run: number): Promise<void> {
  await withServer(spec, async (s) => {
    const r = await subscribeAndPublish(
      `latency-${spec.name}-${run}`,
      s,
      CFG.latencyClients,
      CFG.latencyDuration,
      ["--hist"],
      ["-r", String(CFG.latencyRate)],
      false,
    );
    const h = new Histogram();
    for (const j of r.subs) h.merge(j.lat_hist as Array<[number, number]>);
    results.push({
      measure: "latency",
      server: spec.name,
      run,
      value: h.percentile(99),
      detail: {
        lat_p50_us: h.percentile(50),
        lat_p99_us: h.percentile(99),
        lat_p999_us: h.percentile(99.9),
        lat_max_us: h.max,
        samples: h.count,
        expected_samples: Math.round(CFG.latencyClients * CFG.latencyRate * CFG.latencyDuration),
        established: sumOf(r.subs, "established"),
        pub_rate: n(r.pub, "achieved_rate"),
        sub_cpu_pct: sumOf(r.subs, "window_cpu_pct"),
        ...r.cpu,
      },
    });
  });
}

async function idle(spec: ServerSpec, run: number): Promise<void> {
  await withServer(spec, async (s) => {
    const url = `http://127.0.0.1:${s.port}${subPath(spec)}`;
    const tag = `idle-${spec.name}-${run}`;
    await sleep(500);
    const rss0 = rssKb(s.proc.pid);
    const ready = `${TMP}/${tag}.ready`;
    const go = `${TMP}/${tag}.go`;
    const cpu0 = cpuTicks(s.proc.pid);
    const mark0 = cpuMark(s.proc, []);
    const sub = CFG.sseload === null
      ? subscriber(`${tag}-sub`, url, [
        "--mode",
        "idle",
        "-c",
        String(CFG.idle),
        "-P",
        "512",
        "--ready-file",
        ready,
        "--go-file",
        go,
        "--max-time",
        "90",
      ])
      : spawn(`${tag}-sseload`, CFG.loadCpu, [
        CFG.sseload,
        "-q",
        "-c",
        String(CFG.idle),
        "-P",
        "512",
        "-w",
        "2",
        "-d",
        "0.2",
        "--ready-file",
        ready,
        "--label",
        tag,
        url,
      ]);
    await waitFiles([ready], [sub], 90_000);
    // server CPU spent on the connect phase: accept capacity independent of the client's speed
    const cpuConnect = (cpuTicks(s.proc.pid) - cpu0) / TICK;
    const use = cpuUse(mark0, cpuMark(s.proc, []));
    // Min of samples 1..2.5 s after the connect phase: RSS still holding garbage a GC has not
    // reclaimed yet would otherwise show as per-connection memory.
    let rss1 = Infinity;
    for (let i = 0; i < 4; i++) {
      await sleep(i === 0 ? 1000 : 500);
      rss1 = Math.min(rss1, rssKb(s.proc.pid));
    }
    const now = monoNs();
    Deno.writeTextFileSync(go, `${now} ${now}\n`);
    const j = await toolResult(sub, 30_000);
    const est = n(j, "established");
    results.push({
      measure: "idle-memory",
      server: spec.name,
      run,
      value: est > 0 ? ((rss1 - rss0) * 1024) / est : NaN,
      detail: {
        rss0_kb: rss0,
        rss1_kb: rss1,
        established: est,
        failed: n(j, "failed") + n(j, "bad_status"),
        other_on_server_cpu_pct: use.other_on_server_cpu_pct,
      },
    });
    results.push({
      measure: "connects",
      server: spec.name,
      run,
      value: n(j, "connect_rate_per_s"),
      detail: {
        client: CFG.sseload === null ? "load_subscriber" : "sseload",
        connect_time_s: n(j, "connect_time_s"),
        established: est,
        refused: n(j, "refused"),
        failed: n(j, "failed"),
        timeouts: n(j, "timeouts"),
        status_codes: j.status_codes,
        server_cpu_s: cpuConnect,
        connects_per_server_cpu_s: cpuConnect > 0 ? Math.round(est / cpuConnect) : NaN,
        other_on_server_cpu_pct: use.other_on_server_cpu_pct,
        client_cpu_s: Math.round((n(j, "cpu_user_s") + n(j, "cpu_sys_s")) * 1000) / 1000,
      },
    });
  });
}

async function overload(spec: ServerSpec, run: number): Promise<void> {
  await withServer(spec, async (s) => {
    const url = `http://127.0.0.1:${s.port}${subPath(spec)}`;
    const tag = `overload-${spec.name}-${run}`;
    const go = `${TMP}/${tag}.go`;
    const maxTime = String(60 + CFG.overloadDuration);
    const subs: Proc[] = [];
    const ready: string[] = [];
    const group = (name: string, mode: string, count: number) => {
      if (count <= 0) return;
      ready.push(`${TMP}/${tag}-${name}.ready`);
      subs.push(subscriber(`${tag}-${name}`, url, [
        "--mode",
        mode,
        "-c",
        String(count),
        "--ready-file",
        ready[ready.length - 1],
        "--go-file",
        go,
        "--max-time",
        maxTime,
      ]));
    };
    group("readers", "stream", CFG.overloadClients);
    group("stalled", "stall", CFG.stall);
    await waitFiles(ready, subs, 60_000);
    const rss0 = rssKb(s.proc.pid);
    const pub = publisher(`${tag}-pub`, `http://127.0.0.1:${s.port}${pubPath(spec)}`, [
      "-k",
      String(CFG.pubConns),
      "-d",
      String(CFG.overloadDuration + 0.3),
      "-s",
      String(CFG.overloadSize),
    ]);
    const start = monoNs() + 300e6;
    // held open until the server's socket states are read, then ended by rewriting the go file
    Deno.writeTextFileSync(`${go}.tmp`, `${start} ${start + (CFG.overloadDuration + 50) * 1e9}\n`);
    Deno.renameSync(`${go}.tmp`, go);
    const deadline = monoNs() + (CFG.overloadDuration + 3) * 1e9;
    const mark0 = cpuMark(s.procs, []);
    const samples: Array<[number, number]> = [];
    let rssMax = rss0;
    let capped = false;
    while (!pub.exited && monoNs() < deadline) {
      const r = rssKb(s.proc.pid);
      samples.push([monoNs(), r]);
      rssMax = Math.max(rssMax, r);
      if ((rssMax - rss0) / 1024 > CFG.rssCapMb) {
        capped = true;
        break;
      }
      await sleep(100);
    }
    const p = await toolResult(pub, capped ? 1 : 5_000);
    const redisPct = cpuUse(mark0, cpuMark(s.procs, [])).redis_pct;
    const states = await socketStates(s.port);
    const closedByServer = Object.entries(states)
      .filter(([k]) => /^(FIN-WAIT|CLOSING|LAST-ACK|CLOSE-WAIT)/.test(k))
      .reduce((a, [, v]) => a + v, 0);
    // growth over the last second of publishing: ~0 when memory is bounded
    const last = samples[samples.length - 1];
    const before = samples.findLast(([t]) => t <= last[0] - 1e9) ?? samples[0];
    const slopeMbPerS = last && before && last[0] > before[0]
      ? ((last[1] - before[1]) / 1024) / ((last[0] - before[0]) / 1e9)
      : NaN;
    const now = monoNs();
    Deno.writeTextFileSync(`${go}.tmp`, `${start} ${now}\n`);
    Deno.renameSync(`${go}.tmp`, go);
    const [readers, stalled] = await Promise.all(subs.map((p) => toolResult(p, 10_000)));
    const stalledJ = CFG.overloadClients > 0 ? stalled : readers;
    const readersJ = CFG.overloadClients > 0 ? readers : undefined;
    const codes = (p.status_codes ?? {}) as Record<string, number>;
    results.push({
      measure: "overload",
      server: spec.name,
      run,
      value: Math.round((rssMax - rss0) / 1024),
      detail: {
        published_ok: n(p, "ok"),
        status_codes: codes,
        rejected_503: codes["503"] ?? 0,
        errors: n(p, "errors"),
        pub_rate: n(p, "achieved_rate"),
        pub_resp_p99_us: n(p, "resp_p99_us"),
        readers_events_per_s: readersJ ? n(readersJ, "events_per_s") : NaN,
        readers_closed: readersJ
          ? n(readersJ, "closed_by_server") + n(readersJ, "reset_by_server")
          : NaN,
        stalled_closed: Math.max(closedByServer, Number(stalledJ?.stalled_closed_by_server ?? 0)),
        server_socket_states: states,
        rss0_mb: Math.round(rss0 / 1024),
        rss_max_mb: Math.round(rssMax / 1024),
        rss_growth_last_s_mb: Math.round(slopeMbPerS * 10) / 10,
        stopped_at_rss_cap: capped,
        elapsed_s: n(p, "elapsed_s"),
        redis_pct: redisPct,
      },
    });
  });
}

// ---- report -----------------------------------------------------------------

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Other processes used more than this much of the server CPU during a run: a noisy run. */
const NOISY_PCT = 15;

function isNoisy(r: Result): boolean {
  return Number(r.detail.other_on_server_cpu_pct ?? 0) > NOISY_PCT;
}

/** Runs of a measure: the clean ones when there are any, else all. */
function runsOf(measure: string, server: ServerName): Result[] {
  const rs = results.filter((r) => r.measure === measure && r.server === server);
  const clean = rs.filter((r) => !isNoisy(r));
  return clean.length > 0 ? clean : rs;
}

/** The run whose value is the (lower) median, for details. */
function medianRun(measure: string, server: ServerName): Result | undefined {
  const rs = runsOf(measure, server).filter((r) => Number.isFinite(r.value))
    .sort((a, b) => a.value - b.value);
  return rs[Math.floor((rs.length - 1) / 2)] ?? runsOf(measure, server)[0];
}

function fmtEvents(v: number): string {
  return Number.isFinite(v)
    ? (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : `${Math.round(v / 1000)} k`)
    : "–";
}
const fmtMs = (us: number) => Number.isFinite(us) ? `${(us / 1000).toFixed(1)} ms` : "–";
const fmtBytes = (b: number) =>
  Number.isFinite(b) ? (b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${Math.round(b)} B`) : "–";
const fmtRate = (v: number) => Number.isFinite(v) ? `${(v / 1000).toFixed(1)} k/s` : "–";

function value(measure: string, server: ServerName): number {
  return median(runsOf(measure, server).map((r) => r.value));
}

function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : "–";
}

/** Ratio columns: Sluice against each other server that ran ([index a, index b, heading]). */
function ratioCols(): Array<[number, number, string]> {
  const i = selected.indexOf("sluice");
  if (i < 0) return [];
  return selected.flatMap((s, j): Array<[number, number, string]> =>
    s === "sluice" ? [] : [[i, j, `Sluice/${s}`]]
  );
}

/** `| a/b | a/c` cells for one row of values (one per selected server). */
function ratioCells(v: number[]): string {
  return ratioCols().map(([a, b]) => ` | ${ratio(v[a], v[b])}`).join("");
}

/** Table head and separator rows: measure, one column per server, the ratios, `extra`. */
function tableHead(first: string, extra: string[]): string[] {
  const heads = [first, ...selected, ...ratioCols().map(([, , h]) => h), ...extra];
  return [`| ${heads.join(" | ")} |`, `|${heads.map(() => "---").join("|")}|`];
}

function table(): string {
  const cols = selected;
  const rc = ratioCols();
  const rows = tableHead("measure", ["target (Sluice)"]);
  const row = (label: string, measure: string, fmt: (v: number) => string, target: string) => {
    const v = cols.map((c) => value(measure, c));
    if (v.every((x) => !Number.isFinite(x))) return;
    rows.push(`| ${label} | ${v.map(fmt).join(" | ")}${ratioCells(v)} | ${target} |`);
  };
  for (const c of CFG.clients) {
    row(
      `fan-out ev/s, ${c} clients`,
      `fanout-${c}`,
      fmtEvents,
      "≥ 1.5× baseline; ≥ 0.9× c-ref-batch (≈ 0.7 M)",
    );
  }
  row(
    `p99 latency, ${CFG.latencyClients} clients × ${CFG.latencyRate} ev/s`,
    "latency",
    fmtMs,
    "≤ 8 ms",
  );
  const p50 = cols.map((c) => Number(medianRun("latency", c)?.detail.lat_p50_us ?? NaN));
  if (p50.some(Number.isFinite)) {
    rows.push(`| p50 latency (same run) | ${p50.map(fmtMs).join(" | ")}${ratioCells(p50)} | |`);
  }
  row(`memory / idle conn (${CFG.idle} conns)`, "idle-memory", fmtBytes, "≤ 4 KiB");
  row(`connects/s (${CFG.idle} streams)`, "connects", fmtRate, "≥ 30 k/s");
  const big = Math.max(...CFG.clients);
  const pubP99 = cols.map((c) =>
    Number(medianRun(`fanout-${big}`, c)?.detail.pub_resp_p99_us ?? NaN)
  );
  if (pubP99.some(Number.isFinite)) {
    rows.push(
      `| publish answer p99 during fan-out (${big} clients) | ${pubP99.map(fmtMs).join(" | ")}${
        ratioCells(pubP99)
      } | answered without waiting for the fan-out |`,
    );
  }
  const ov = cols.map((c) => medianRun("overload", c));
  if (ov.some((r) => r !== undefined)) {
    const cell = (r: Result | undefined) => {
      if (r === undefined) return "–";
      const d = r.detail;
      const codes = Object.entries(d.status_codes as Record<string, number>).map(([k, v]) =>
        `${k}×${v}`
      ).join(" ");
      const parts = [
        codes || "no answers",
        `RSS +${r.value} MB${
          d.stopped_at_rss_cap ? " (cap hit)" : ""
        }, +${d.rss_growth_last_s_mb} MB in the last s`,
      ];
      if (Number.isFinite(d.readers_events_per_s)) {
        parts.push(`readers got ${fmtEvents(Number(d.readers_events_per_s))} ev/s`);
      }
      if (d.stalled_closed !== null) parts.push(`${d.stalled_closed}/${CFG.stall} stalled dropped`);
      return parts.join("; ");
    };
    rows.push(
      `| overload: publisher flat out ${CFG.overloadDuration} s, ${
        CFG.overloadClients > 0 ? `${CFG.overloadClients} reading + ` : ""
      }${CFG.stall} stalled subscribers, ${CFG.overloadSize}-byte events | ${
        ov.map(cell).join(" | ")
      }${rc.map(() => " | ").join("")} | 503 back-pressure, bounded RSS |`,
    );
  }
  return rows.join("\n");
}

/** The Redis engine against the memory engine, and what Redis itself spends (`--redis`). */
function redisTable(): string {
  if (!selected.includes("sluice-redis")) return "";
  const rows = [
    "| measure | memory engine | Redis engine | Redis/memory | target |",
    "|---|---|---|---|---|",
  ];
  const detail = (measure: string, server: ServerName, key: string) =>
    median(runsOf(measure, server).map((r) => Number(r.detail[key])));
  const pair = (
    label: string,
    a: number,
    b: number,
    fmt: (v: number) => string,
    target: string,
  ) => {
    if (!Number.isFinite(a) && !Number.isFinite(b)) return;
    rows.push(`| ${label} | ${fmt(a)} | ${fmt(b)} | ${ratio(b, a)} | ${target} |`);
  };
  for (const c of CFG.clients) {
    pair(
      `fan-out ev/s, ${c} clients`,
      value(`fanout-${c}`, "sluice"),
      value(`fanout-${c}`, "sluice-redis"),
      fmtEvents,
      c === 1000 ? "≥ 0.8×" : "",
    );
    pair(
      `publish answer p99 during fan-out, ${c} clients`,
      detail(`fanout-${c}`, "sluice", "pub_resp_p99_us"),
      detail(`fanout-${c}`, "sluice-redis", "pub_resp_p99_us"),
      fmtMs,
      "",
    );
  }
  pair(
    `delivery p99, ${CFG.latencyClients} clients × ${CFG.latencyRate} ev/s`,
    value("latency", "sluice"),
    value("latency", "sluice-redis"),
    fmtMs,
    "≤ 1.5×",
  );
  pair(
    "delivery p50 (same run)",
    detail("latency", "sluice", "lat_p50_us"),
    detail("latency", "sluice-redis", "lat_p50_us"),
    fmtMs,
    "",
  );
  const oneOrTwo = (c: number) => [
    value(`fanout-${c}`, "sluice-redis"),
    value(`fanout-${c}`, "sluice-redis-x2"),
  ];
  for (const c of CFG.clients) {
    const [one, two] = oneOrTwo(c);
    if (!Number.isFinite(two)) continue;
    rows.push(
      `| fan-out ev/s, ${c} clients, 2 instances --reuse-port (aggregate) | – | ${
        fmtEvents(two)
      } | ${
        ratio(two, one)
      } of 1 instance | every client gets every event; 2 cores: no speed-up expected |`,
    );
  }
  const cpu = CFG.clients.map((c) =>
    [c, detail(`fanout-${c}`, "sluice-redis", "redis_cpu_ms_per_1000_events")] as const
  ).filter(([, v]) => Number.isFinite(v));
  for (const [c, v] of cpu) {
    rows.push(`| Redis CPU per 1 000 events (fan-out, ${c} clients) | – | ${v} ms | | |`);
  }
  // The run that left the most events in Redis: fixed overheads (scripts, empty nodes) matter least.
  const mem = results.filter((r) => r.server === "sluice-redis" && r.detail.redis_log_events)
    .sort((a, b) => Number(b.detail.redis_log_events) - Number(a.detail.redis_log_events))[0];
  if (mem !== undefined) {
    const size = mem.measure === "overload" ? CFG.overloadSize : CFG.size;
    rows.push(
      `| Redis memory per 1 000 retained events (${size}-byte data, ${mem.measure} run, ${mem.detail.redis_log_events} events; log + channel stream) | – | ${
        fmtBytes(Number(mem.detail.redis_bytes_per_event) * 1000)
      } | | |`,
    );
  }
  const ov = medianRun("overload", "sluice-redis");
  if (ov !== undefined) {
    const rate = Number(ov.detail.pub_rate);
    const pct = Number(ov.detail.redis_pct);
    rows.push(
      `| publisher flat out (overload run): publishes/s, Redis CPU | ${
        fmtRate(Number(medianRun("overload", "sluice")?.detail.pub_rate ?? NaN))
      } | ${fmtRate(rate)}, Redis ${pct} % | ${
        ratio(rate, Number(medianRun("overload", "sluice")?.detail.pub_rate ?? NaN))
      } | one instance's publishes; Redis at 100 % ≈ ${
        pct > 0 ? fmtRate(rate / (pct / 100)) : "–"
      } |`,
    );
  }
  return rows.join("\n");
}

/** Server-side capacity: work per server CPU-second (robust to a saturated client or noise). */
function capacityTable(): string {
  const cols = selected;
  const rows = tableHead("per server CPU-second", []);
  const add = (label: string, measure: string, key: string, fmt: (v: number) => string) => {
    const v = cols.map((c) => median(runsOf(measure, c).map((r) => Number(r.detail[key]))));
    if (v.every((x) => !Number.isFinite(x))) return;
    rows.push(`| ${label} | ${v.map(fmt).join(" | ")}${ratioCells(v)} |`);
  };
  for (const c of CFG.clients) {
    add(`events delivered, ${c} clients`, `fanout-${c}`, "ev_per_server_cpu_s", fmtEvents);
  }
  add(`connections accepted (${CFG.idle})`, "connects", "connects_per_server_cpu_s", fmtRate);
  return rows.length > 2 ? rows.join("\n") : "";
}

function details(): string {
  const lines: string[] = [
    "| measure | server | value | server CPU | load CPU | other load on server CPU / load CPU | notes |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    const d = r.detail;
    const cpu = d.server_pct === undefined
      ? `| | | ${
        d.other_on_server_cpu_pct === undefined ? "" : `${d.other_on_server_cpu_pct}% / –`
      } `
      : `| ${d.server_pct}% | ${d.load_pct}% (subs ${d.sub_cpu_pct}%${
        d.pub_cpu_pct !== undefined ? `, pub ${d.pub_cpu_pct}%` : ""
      }) | ${d.other_on_server_cpu_pct}% / ${d.other_on_load_cpu_pct}% `;
    const notes = Object.entries(d)
      .filter(([k]) => !/_pct$/.test(k))
      .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
      .join(" ");
    lines.push(
      `| ${r.measure}#${r.run} | ${r.server} | ${Math.round(r.value * 10) / 10} ${cpu}| ${notes} |`,
    );
  }
  return lines.join("\n");
}

// ---- main -------------------------------------------------------------------

/** Build the C peer (`gcc -O2`, as ../shared/bench/peers/peer.sh does) into TMP; its path. */
async function buildPeer(): Promise<string> {
  const hint = "install gcc, or drop --peer to run without the C reference peer";
  if (!exists(PEER_SRC)) {
    throw new BenchError(
      `C peer source ${PEER_SRC} not found (../shared/bench is needed for --peer): drop --peer`,
    );
  }
  const bin = `${TMP}/c_ref`;
  let o: Deno.CommandOutput;
  try {
    o = await new Deno.Command("gcc", {
      args: ["-O2", "-o", bin, PEER_SRC],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch {
    throw new BenchError(`gcc not found, needed to build ${PEER_SRC} for --peer: ${hint}`);
  }
  if (!o.success) {
    throw new BenchError(
      `gcc could not build ${PEER_SRC} (${hint}):\n${new TextDecoder().decode(o.stderr)}`,
    );
  }
  return bin;
}

async function preflight(): Promise<void> {
  if (CFG.serverCpu !== null) {
    const ok = await new Deno.Command("taskset", { args: ["-c", CFG.serverCpu, "true"] }).output()
      .then((o) => o.success).catch(() => false);
    if (!ok) throw new BenchError("taskset (util-linux) missing or CPU list invalid: use --no-pin");
  }
  if (selected.includes("sluice") && !exists(`${ROOT}main.ts`)) {
    throw new BenchError(`Sluice CLI not found at ${ROOT}main.ts (use --only baseline)`);
  }
  if (cPeers.length > 0) cRefBin = await buildPeer();
  if (selected.some((s) => SERVERS[s].redis)) await startRedis();
  const limit = await new Deno.Command("bash", {
    args: ["-c", 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; ulimit -n'],
  })
    .output();
  const fds = Number(new TextDecoder().decode(limit.stdout).trim());
  const need = Math.max(CFG.idle, ...CFG.clients, CFG.latencyClients) + 100;
  if (fds < need) {
    throw new BenchError(
      `open-file limit ${fds} < ${need} needed per process: lower --idle/--clients`,
    );
  }
}

let interrupted = false;
const onSignal = () => {
  if (interrupted) return;
  interrupted = true;
  console.error("interrupted: stopping child processes");
  Promise.all([stopAll(), stopRedis()]).finally(() => {
    Deno.removeSync(TMP, { recursive: true });
    Deno.exit(130);
  });
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

const t0 = monoNs();
let failed = false;
try {
  await preflight();
  console.error(
    `bench: servers ${selected.join(", ")}; pin server ${CFG.serverCpu ?? "-"}, load ${
      CFG.loadCpu ?? "-"
    }; ` +
      `${CFG.runs} run(s)${QUICK ? " (quick)" : ""}`,
  );
  const step = async (label: string, f: () => Promise<void>) => {
    const t = monoNs();
    try {
      await f();
      const r = results[results.length - 1];
      console.error(
        `  ${label}: ${Math.round(r.value * 10) / 10} (${((monoNs() - t) / 1e9).toFixed(1)} s)`,
      );
    } catch (e) {
      failed = true;
      console.error(`  ${label}: FAILED: ${e instanceof Error ? e.message : e}`);
      await stopAll();
    }
  };
  for (let run = 1; run <= CFG.runs; run++) {
    // Servers interleaved per measure, so background noise hits both alike.
    if (!CFG.skip.has("fanout")) {
      for (const c of CFG.clients) {
        for (const s of selected) await step(`fan-out ${c} ${s}`, () => fanout(SERVERS[s], c, run));
      }
    }
    // Two instances on one port: the fan-out only (the box has 2 cores: correctness, not speed).
    const single = selected.filter((s) => (SERVERS[s].instances ?? 1) === 1);
    if (!CFG.skip.has("latency")) {
      for (const s of single) await step(`latency ${s}`, () => latency(SERVERS[s], run));
    }
    if (!CFG.skip.has("idle")) {
      for (const s of single) await step(`idle ${s}`, () => idle(SERVERS[s], run));
    }
    if (!CFG.skip.has("overload")) {
      for (const s of single) await step(`overload ${s}`, () => overload(SERVERS[s], run));
    }
  }
  console.log(
    `\n## Sluice bench (${new Date().toISOString()}, ${CFG.runs} run(s), medians${
      QUICK ? ", --quick" : ""
    })\n`,
  );
  console.log(table());
  const redis = redisTable();
  if (redis) console.log(`\n### Redis engine\n\n${redis}`);
  const cap = capacityTable();
  if (cap) {
    console.log(
      `\nServer-side capacity (what each server does per CPU-second it used, CPU from /proc):\n\n${cap}`,
    );
  }
  const noisy = results.filter((r) => runsOf(r.measure, r.server).includes(r) && isNoisy(r));
  const clientBound = results.filter((r) => Number(r.detail.load_pct ?? 0) > 90);
  if (noisy.length > 0) {
    console.log(
      `\nWarning: other processes used > ${NOISY_PCT} % of the server CPU during ${
        noisy.map((r) => `${r.measure}/${r.server}`).join(", ")
      }, with no clean run to use instead: those figures are low; rerun on a quiet machine or ` +
        `with --runs 3.`,
    );
  }
  if (clientBound.length > 0) {
    console.log(
      `\nWarning: the load CPU was > 90 % busy during ${
        clientBound.map((r) => `${r.measure}/${r.server}`).join(", ")
      }: the client may be the limit there (see the per-CPU-second table).`,
    );
  }
  console.log(`\n<details><summary>per-run details</summary>\n\n${details()}\n\n</details>\n`);
  console.log(
    `Method: server pinned to CPU ${CFG.serverCpu ?? "-"}, load tools to CPU ${
      CFG.loadCpu ?? "-"
    }; ` +
      `${CFG.size}-byte events; fan-out: publisher -k ${CFG.pubConns}, closed loop, window ${CFG.window}; ` +
      `window ${CFG.duration} s after ${CFG.warmup} s warm-up; fresh server per measure; ` +
      `subscriber engine ${CFG.engine}${CFG.sseload ? ", connects by the C sseload" : ""}; ` +
      `Sluice's V8 flags: ${SLUICE_V8_FLAGS || "none"}. ` +
      (cPeers.length > 0
        ? `C peer(s) ${cPeers.join(", ")}: ${PEER_SRC} built with gcc -O2 at run time ` +
          "(BATCH=1 for c-ref-batch), GET /sub, POST /publish; it answers 200 to every publish " +
          "(no 503) and drops a subscriber once 4 MiB are pending for it. "
        : "") +
      (peers.includes("deno-floor")
        ? "deno-floor: bench/floor_deno_listen.ts (minimal Deno.listen server, Sluice's V8 " +
          "flags): answers 202 to every publish (no 503), drops a subscriber once 4 MiB are " +
          "queued for it. "
        : "") +
      `Wall time ${((monoNs() - t0) / 1e9).toFixed(0)} s.`,
  );
  if (opts.json) {
    Deno.writeTextFileSync(
      opts.json,
      JSON.stringify({ config: { ...CFG, skip: [...CFG.skip], peers }, results }, null, 2),
    );
  }
} catch (e) {
  failed = true;
  console.error(`bench failed: ${e instanceof Error ? e.message : e}`);
} finally {
  await stopAll();
  await stopRedis();
  try {
    Deno.removeSync(TMP, { recursive: true });
  } catch { /* already gone */ }
}
Deno.exit(failed ? 1 : 0);
