/**
 * ESP-IDF's `esp_http_server` log-streaming pattern on Sluice, written
 * against the session API directly: the program's log lines go into a bounded
 * queue, and its consumer sends each one as `data: <line>\n\n` to every socket
 * of a small table of event streams.
 *
 * ```sh
 * deno run --allow-net examples/esp_idf_sse.ts --port 8080
 * curl -N http://127.0.0.1:8080/sse
 * journalctl -f | deno run --allow-net examples/esp_idf_sse.ts --stdin   # forward other logs
 * ```
 *
 * | original (`esp_http_server` + FreeRTOS)                         | here                                                   |
 * | --------------------------------------------------------------- | ------------------------------------------------------ |
 * | `volatile int sse_sockets[MAX_SSE_CLIENTS]`                     | `sseSockets`: session ids, `0` for a free slot         |
 * | `req->sess_ctx = malloc(…)`, `req->free_ctx = free_sse_ctx_func` | `session.setContext({ fd, slot }, freeSseCtx)`        |
 * | `free_sse_ctx_func` clears the socket's slot                     | `freeSseCtx` clears the slot (runs once, on any close) |
 * | `HTTP/1.1 503 Server Busy\r\nContent-Length: 0` when full        | the session table holds `MAX_SSE_CLIENTS` (`maxClients`) and answers `503 Server Busy` (`busyStatusText`), `Content-Length: 0` |
 * | `HTTP/1.1 400 Session Already Active` when `sess_ctx` is set     | the server answers a request on a socket that carries a stream with `400 Session Already Active` |
 * | `esp_log_set_vprintf(sse_logging_vprintf)` → `xQueueSendToBack(q, line, 0)` | `log()` prints and `queue.push(line)` (dropped and counted when full) |
 * | `sse_logging_task`: `xQueueReceive` → `send_sse_message`        | the queue's consumer, run when lines arrive            |
 * | `send()` to every socket; `httpd_sess_trigger_close` on failure | `session.write(bytes)`; `sessions.triggerClose(fd, "write-error")` when refused |
 * | `LOG_BUF_MAX_LINE_SIZE`                                         | lines are cut to {@linkcode LOG_BUF_MAX_LINE_SIZE} characters |
 *
 * What is forwarded: this program's own log lines (in ESP-IDF's
 * `I (<ms>) <tag>: <message>` shape, the server's log records included), a
 * periodic status line every `--tick` seconds, and with `--stdin` every line
 * read from standard input (stdin waits for room in the queue instead of
 * dropping).
 *
 * The encoded event is built once per line and shared by every socket; a
 * socket that cannot take it (closed, or over its pending-bytes budget) is
 * closed, and its free callback frees its slot.
 *
 * @module
 */

import { type CloseReason, encodeEvent, MessageQueue, serve } from "../mod.ts";
import { cliFlags } from "../server/hub/mod.ts";

/** Longest forwarded line, in UTF-16 code units (ESP-IDF's `LOG_BUF_MAX_LINE_SIZE`). */
const LOG_BUF_MAX_LINE_SIZE = 120;
const TAG = "esp_idf_sse";

const { values: flags } = cliFlags({
  name: TAG,
  usage: "deno run --allow-net examples/esp_idf_sse.ts [flags]",
  description: "ESP-IDF's esp_http_server log streaming on Sluice: this program's log lines " +
    "(and with --stdin the lines of standard input) go to every event stream at /sse.",
  flags: {
    port: { type: "integer", default: 8080, max: 65535, help: "TCP port (0: any free port)" },
    hostname: { type: "string", default: "0.0.0.0", help: "address to listen on" },
    "max-clients": { type: "integer", default: 3, min: 1, help: "most event streams at once" },
    "queue-size": { type: "integer", default: 16, min: 1, help: "capacity of the log-line queue" },
    tick: { type: "number", default: 5, help: "seconds between status lines (0: off)" },
    stdin: { type: "boolean", help: "also forward the lines read from standard input" },
  },
});
const port = flags.port;
/** Most event streams at once. */
const MAX_SSE_CLIENTS = flags["max-clients"];
/** Capacity of the log-line queue. */
const LOG_QUEUE_SIZE = flags["queue-size"];
const tickSeconds = flags.tick;

/** Milliseconds since the program started (ESP-IDF's log timestamp). */
function millis(): number {
  return Math.floor(performance.now());
}

// ------------------------------------------------------------------ the queue

/** Session id of each stream, by slot; `0` is a free slot. */
const sseSockets: number[] = new Array(MAX_SSE_CLIENTS).fill(0);
let linesDropped = 0;
let consumerScheduled = false;

/** The log-line queue; each accepted push schedules the consumer. */
const queue = new MessageQueue<string>(LOG_QUEUE_SIZE, () => {
  if (consumerScheduled) return;
  consumerScheduled = true;
  queueMicrotask(sseLoggingTask);
});

function clip(line: string): string {
  return line.length > LOG_BUF_MAX_LINE_SIZE ? line.slice(0, LOG_BUF_MAX_LINE_SIZE) : line;
}

/** Prints a log line and queues it for the streams, like `sse_logging_vprintf`. */
function log(level: "E" | "W" | "I" | "D", tag: string, message: string): void {
  const line = `${level} (${millis()}) ${tag}: ${message}`;
  (level === "E" || level === "W" ? console.error : console.log)(line);
  if (!queue.push(clip(line))) linesDropped++;
}

/** Sends one line to every stream; a socket that refuses it is closed. */
function sendSseMessage(message: string): void {
  const bytes = encodeEvent(message); // "data: <message>\n\n", encoded once
  for (const fd of sseSockets) {
    if (fd === 0) continue;
    const session = server.sessions.get(fd);
    if (session === undefined || !session.write(bytes)) {
      server.sessions.triggerClose(fd, "write-error");
    }
  }
}

/** The consumer: empties the queue into the streams. */
function sseLoggingTask(): void {
  consumerScheduled = false;
  for (let line = queue.shift(); line !== undefined; line = queue.shift()) {
    sendSseMessage(line);
  }
}

// ----------------------------------------------------------------- the server

/** The per-session context: the socket and its slot in {@linkcode sseSockets}. */
interface SseContext {
  fd: number;
  slot: number;
}

/** Frees a stream's context: removes its socket from the table. */
function freeSseCtx(context: unknown, reason: CloseReason): void {
  const { fd, slot } = context as SseContext;
  if (sseSockets[slot] === fd) sseSockets[slot] = 0;
  log("D", TAG, `free_sse_ctx sse_socket: ${fd} slot ${slot} (${reason})`);
}

const LEVEL = { debug: "D", info: "I", warn: "W", error: "E" } as const;

const server = serve({
  port,
  hostname: flags.hostname,
  maxClients: MAX_SSE_CLIENTS,
  busyStatusText: "Server Busy",
  logger: (level, message, fields) => {
    let text = message;
    for (const [k, v] of Object.entries(fields ?? {})) {
      if (v !== undefined) text += ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`;
    }
    log(LEVEL[level], "sluice", text);
  },
});

const sse = server.eventSource("/sse");
sse.onConnect((client) => {
  const session = client.session;
  const slot = sseSockets.indexOf(0);
  if (slot < 0) {
    // Cannot happen: the session table has as many slots as sseSockets.
    client.close("closed");
    return;
  }
  sseSockets[slot] = session.id;
  session.setContext({ fd: session.id, slot } satisfies SseContext, freeSseCtx);
  log("D", TAG, `sse_socket: ${session.id} slot ${slot}`);
});

// ------------------------------------------------------------ the log sources

let ticks = 0;
const tickTimer = tickSeconds > 0
  ? setInterval(() => {
    ticks++;
    const open = sseSockets.filter((fd) => fd !== 0).length;
    log(
      "I",
      TAG,
      `tick ${ticks}: ${open}/${MAX_SSE_CLIENTS} clients, queue ${queue.length}/${queue.capacity}, ` +
        `${linesDropped} lines dropped, heap ${Deno.memoryUsage().heapUsed} bytes`,
    );
  }, tickSeconds * 1000)
  : undefined;

async function forwardStdin(): Promise<void> {
  let rest = "";
  const forward = async (line: string) => {
    if (!(await queue.pushWait(clip(line.endsWith("\r") ? line.slice(0, -1) : line), 1000))) {
      linesDropped++;
    }
  };
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    for (const line of lines) await forward(line);
  }
  if (rest !== "") await forward(rest);
  log("I", TAG, "stdin closed");
}
if (flags.stdin) forwardStdin();

const addr = server.addr;
log(
  "I",
  TAG,
  `listening on http://${
    addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname
  }:${addr.port}/ (stream at /sse, at most ${MAX_SSE_CLIENTS} clients)`,
);

const stop = (signal: string) => {
  log("I", TAG, `${signal}: shutting down`);
  clearInterval(tickTimer);
  server.shutdown();
};
Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
await server.finished;
console.log(`I (${millis()}) ${TAG}: stopped`);
Deno.exit(0);
