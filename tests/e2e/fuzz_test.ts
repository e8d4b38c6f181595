/**
 * Fuzzing the request path: at least 100 000 random and grammar-mutated
 * request heads. Most go straight to `parseRequestHead` (fast), a few thousand
 * go over real sockets to a live server, pipelined several per connection.
 *
 * Reproduce or lengthen a run with environment variables:
 *   SLUICE_FUZZ_SEED=1234 SLUICE_FUZZ_ITERATIONS=2000000 SLUICE_FUZZ_SOCKET=20000 \
 *     deno test -A tests/e2e/fuzz_test.ts
 * A failure prints the seed and the offending inputs (as latin-1 JSON strings):
 * add them to `tests/server/request_parser_regressions.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { concatAll } from "../../server/http/conn_io.ts";
import { HttpError } from "../../server/http/http_error.ts";
import {
  DEFAULT_REQUEST_LIMITS,
  KNOWN_METHODS,
  parseRequestHead,
  type RequestLimits,
} from "../../server/http/request_parser.ts";
import { serve } from "../../server/server.ts";
import type { LogLevel } from "../../server/server_options.ts";
import { RawClient } from "../_util/raw_client.ts";
import { fuzzCase, latin1Bytes, latin1Json, Prng, validRequest } from "../_util/request_fuzzer.ts";

function envInt(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name}: received ${raw}`);
  return n;
}

const SEED = envInt("SLUICE_FUZZ_SEED", 0x51_1ce);
const ITERATIONS = envInt("SLUICE_FUZZ_ITERATIONS", 100_000);
const SOCKET_CASES = Math.min(ITERATIONS, envInt("SLUICE_FUZZ_SOCKET", 3_000));
const PARSER_CASES = ITERATIONS - SOCKET_CASES;

/** Statuses the parser may answer with. */
const PARSER_STATUSES = new Set([400, 405, 408, 411, 413, 414, 431, 501, 505]);
const SMALL_LIMITS: RequestLimits = {
  maxRequestLine: 256,
  maxHeadBytes: 1024,
  maxHeaders: 10,
  maxBodyBytes: 16,
};
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// deno-lint-ignore no-control-regex
const CTL_RE = /[\0-\x08\x0a-\x1f\x7f]/;

type Outcome =
  | { kind: "more" }
  | {
    kind: "head";
    headBytes: number;
    contentLength: number;
    method: string;
    path: string;
    keepAlive: boolean;
  }
  | { kind: "error"; status: number }
  | { kind: "crash"; error: string };

/** Parses and checks every property a returned head must have. */
function outcomeOf(bytes: Uint8Array, limits: RequestLimits): Outcome {
  let head;
  try {
    head = parseRequestHead(bytes, limits);
  } catch (err) {
    if (err instanceof HttpError && PARSER_STATUSES.has(err.status)) {
      return { kind: "error", status: err.status };
    }
    return {
      kind: "crash",
      error: String(err) + (err instanceof HttpError ? ` ${err.status}` : ""),
    };
  }
  if (head === undefined) return { kind: "more" };
  const problems: string[] = [];
  if (!(head.headBytes > 0 && head.headBytes <= bytes.length)) problems.push("headBytes");
  if (!KNOWN_METHODS.has(head.method)) problems.push("method");
  if (/[\0\r\n]/.test(head.path)) problems.push("path has CR/LF/NUL");
  if (head.version !== "1.0" && head.version !== "1.1") problems.push("version");
  if (head.version === "1.1" && !head.headers.has("host")) problems.push("no host");
  if (!(Number.isSafeInteger(head.contentLength) && head.contentLength >= 0)) {
    problems.push("contentLength");
  }
  if (head.contentLength > limits.maxBodyBytes) problems.push("contentLength over limit");
  if (head.headers.size > limits.maxHeaders) problems.push("too many headers");
  for (const [name, value] of head.headers) {
    if (!TOKEN_RE.test(name)) problems.push(`header name ${JSON.stringify(name)}`);
    if (CTL_RE.test(value)) problems.push(`control character in ${name}`);
  }
  if (problems.length) return { kind: "crash", error: `invalid head: ${problems.join(", ")}` };
  return {
    kind: "head",
    headBytes: head.headBytes,
    contentLength: head.contentLength,
    method: head.method,
    path: head.path,
    keepAlive: head.keepAlive,
  };
}

Deno.test(`parseRequestHead survives ${PARSER_CASES} fuzzed heads (seed ${SEED}): only HttpError, only 4xx/5xx, split-invariant`, () => {
  const rng = new Prng(SEED);
  const failures: string[] = [];
  const seen = { more: 0, head: 0, error: 0 };
  for (let i = 0; i < PARSER_CASES; i++) {
    const c = fuzzCase(rng);
    const limits = i % 8 === 7 ? SMALL_LIMITS : DEFAULT_REQUEST_LIMITS;
    const out = outcomeOf(c.bytes, limits);
    if (out.kind === "crash") {
      failures.push(`#${i} ${c.kind}: ${out.error}: ${latin1Json(c.bytes)}`);
      continue;
    }
    seen[out.kind]++;
    // A head split anywhere before its end needs more bytes: never an error.
    if (out.kind === "head" && i % 4 === 0) {
      const cut = rng.int(out.headBytes);
      const part = outcomeOf(c.bytes.subarray(0, cut), limits);
      if (part.kind !== "more") {
        failures.push(
          `#${i} prefix ${cut}/${out.headBytes} gave ${JSON.stringify(part)}: ${
            latin1Json(c.bytes)
          }`,
        );
      }
    }
  }
  assert.deepEqual(
    failures.slice(0, 5),
    [],
    `seed ${SEED}: ${failures.length} failing inputs (first 5 shown)`,
  );
  // The generator reaches every outcome, so the properties above were exercised.
  assert.ok(seen.more > 0 && seen.head > 0 && seen.error > 0, JSON.stringify(seen));
});

/** One connection's worth of fuzz: inputs pipelined, sent in a few writes. */
interface ConnPlan {
  inputs: Uint8Array[];
  halfClose: boolean;
  splits: number[];
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return s;
}

const STREAM_REQUEST = "GET /events/fuzz HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";

/**
 * Checks the server's replies against what the parser says of the bytes sent:
 * one response per complete request, in order, until a response closes the
 * connection or opens a stream; then, for a malformed request, exactly the
 * parser's status; for an incomplete one, nothing (or 408 when the client
 * never half-closed). Returns a problem, or `undefined`.
 */
function checkExchange(sent: Uint8Array, got: string, halfClose: boolean): string | undefined {
  let off = 0;
  let at = 0;
  for (let i = 0;; i++) {
    let out = outcomeOf(sent.subarray(off), DEFAULT_REQUEST_LIMITS);
    if (out.kind === "head" && off + out.headBytes + out.contentLength > sent.length) {
      out = { kind: "more" }; // its body never fully arrived
    }
    if (out.kind === "crash") return `parser: ${out.error}`;
    if (out.kind === "more") {
      if (off === sent.length && halfClose && at === got.length) return undefined;
      const rest = got.slice(at);
      if (rest === "" || (!halfClose && rest.startsWith("HTTP/1.1 408 "))) return undefined;
      return `request ${i} is incomplete, yet got ${JSON.stringify(rest.slice(0, 80))}`;
    }
    const res = readResponse(got, at, out.kind === "head" && out.method === "HEAD");
    if (res === undefined) return `no (complete) response to request ${i} (${out.kind})`;
    if (out.kind === "error") {
      if (res.status !== out.status) {
        return `request ${i}: expected ${out.status}, got ${res.status}`;
      }
      if (!res.close) return `request ${i}: error ${res.status} without Connection: close`;
      return res.end === got.length ? undefined : `bytes after the ${res.status}`;
    }
    if (res.status < 200 || res.status > 599) return `request ${i}: status ${res.status}`;
    if (res.stream) return undefined; // the rest of the socket is the event stream
    if (res.close || !out.keepAlive) {
      return res.end === got.length ? undefined : `bytes after a closing response`;
    }
    off += out.headBytes + out.contentLength;
    at = res.end;
  }
}

/** Reads one response at `at` in `text` (latin-1, so lengths are bytes). */
function readResponse(
  text: string,
  at: number,
  headOnly: boolean,
): { status: number; close: boolean; stream: boolean; end: number } | undefined {
  const headEnd = text.indexOf("\r\n\r\n", at);
  if (headEnd < 0) return undefined;
  const lines = text.slice(at, headEnd).split("\r\n");
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]);
  if (m === null) return undefined;
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const c = l.indexOf(":");
    headers.set(l.slice(0, c).toLowerCase(), l.slice(c + 1).trim());
  }
  const stream = headers.get("content-type") === "text/event-stream";
  const length = headOnly || stream ? 0 : Number(headers.get("content-length") ?? "0");
  const end = headEnd + 4 + length;
  if (end > text.length) return undefined;
  return { status: Number(m[1]), close: headers.get("connection") === "close", stream, end };
}

/** Sends a plan; returns what came back, or throws when the server did not close in time. */
async function runConn(port: number, plan: ConnPlan, deadlineMs: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = concatAll(plan.inputs);
  let received = "";
  const timer = setTimeout(() => {
    received += "<<client deadline: server did not close>>";
    try {
      conn.close();
    } catch { /* closed */ }
  }, deadlineMs);
  const reader = (async () => {
    const chunk = new Uint8Array(64 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(chunk);
      } catch {
        n = null; // reset (or closed by the deadline)
      }
      if (n === null) return;
      received += latin1(chunk.subarray(0, n));
    }
  })();
  try {
    let at = 0;
    for (const cut of [...plan.splits, bytes.length]) {
      if (cut <= at) continue;
      let off = at;
      while (off < cut) off += await conn.write(bytes.subarray(off, cut));
      at = cut;
    }
    if (plan.halfClose) await conn.closeWrite();
  } catch {
    // The server may close (or reset) while we are still sending garbage.
  }
  await reader;
  clearTimeout(timer);
  try {
    conn.close();
  } catch { /* closed by the deadline */ }
  return received;
}

Deno.test(`server survives ${SOCKET_CASES} fuzzed requests over sockets (seed ${SEED}): answers 4xx/5xx or closes, counts return to zero, clients still served`, async () => {
  const errorLogs: string[] = [];
  const closeLogs = new Map<string, number>();
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    maxClients: 64,
    keepAlive: 0,
    headerTimeout: 1_500,
    idleTimeout: 1_500,
    logger: (level: LogLevel, message: string, fields) => {
      if (level === "error") errorLogs.push(`${message} ${JSON.stringify(fields)}`);
      if (message === "connection closed" || message === "connection failed") {
        const r = String(fields?.reason);
        closeLogs.set(r, (closeLogs.get(r) ?? 0) + 1);
      }
    },
  });
  server.route("GET", "/ok", () => ({ status: 200, body: "ok\n" }));
  server.route("POST", "/ok", (req) => ({ status: 200, body: `${req.body.length}\n` }));
  const events = server.eventSource("/events/:channel");
  const freed = new Map<number, number>();
  let connected = 0;
  let disconnected = 0;
  events.onConnect((client) => {
    connected++;
    client.session.setContext(client.id, (id) => {
      freed.set(id as number, (freed.get(id as number) ?? 0) + 1);
    });
  });
  events.onDisconnect(() => disconnected++);
  const port = server.addr.port;

  // Plan the connections: 1..8 inputs each, pipelined.
  const rng = new Prng(SEED ^ 0x9e3779b9);
  const plans: ConnPlan[] = [];
  for (let made = 0; made < SOCKET_CASES;) {
    const k = Math.min(1 + rng.int(8), SOCKET_CASES - made);
    const inputs: Uint8Array[] = [];
    // Often a few valid requests first (sometimes ending in a stream), then the fuzz.
    if (rng.chance(0.5)) {
      for (let j = rng.int(4); j > 0; j--) inputs.push(latin1Bytes(validRequest(rng)));
      if (rng.chance(0.15)) inputs.push(latin1Bytes(STREAM_REQUEST));
    }
    for (let j = 0; j < k; j++) inputs.push(fuzzCase(rng).bytes);
    made += k;
    const total = inputs.reduce((n, b) => n + b.length, 0);
    // A few connections never half-close: the header and idle timeouts must end them. A
    // stream would stay open, so those carry no /events request.
    const text = inputs.map(latin1).join("");
    const halfClose = rng.chance(0.97) || text.includes("/events");
    const splits = [rng.int(total + 1), rng.int(total + 1)].sort((a, b) => a - b);
    plans.push({ inputs, halfClose, splits });
  }

  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < plans.length) {
      const plan = plans[next++];
      const got = await runConn(port, plan, 15_000);
      const sent = concatAll(plan.inputs);
      const problem = got.includes("<<client deadline")
        ? "server kept the socket open"
        : checkExchange(sent, got, plan.halfClose);
      if (problem) {
        failures.push(
          `${problem}: sent ${latin1Json(sent).slice(0, 600)} got ${
            JSON.stringify(got.slice(0, 600))
          }`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  assert.deepEqual(
    failures.slice(0, 5),
    [],
    `seed ${SEED}: ${failures.length} failing connections`,
  );

  // Everything drains back to zero.
  const deadline = Date.now() + 20_000;
  while (
    (server.sessions.size > 0 || server.stats.connections > 0 || server.stats.pendingHeads > 0) &&
    Date.now() < deadline
  ) {
    await new Promise((r) => setTimeout(r, 25));
  }
  const stats = server.stats;
  assert.equal(server.sessions.size, 0, "sessions left open");
  assert.equal(stats.connections, 0, "connections left open");
  assert.equal(stats.pendingHeads, 0, "connections left in the header phase");
  assert.equal(stats.accepted, plans.length);
  // Every socket ended with a reason, in the stats and in the log.
  const closedTotal = Object.values(stats.connectionsClosed).reduce((a, b) => a + b, 0);
  assert.equal(closedTotal, stats.accepted, JSON.stringify(stats.connectionsClosed));
  assert.equal([...closeLogs.values()].reduce((a, b) => a + b, 0), stats.accepted);
  assert.equal(stats.connectionsClosed.error, 0);
  assert.ok(stats.connectionsClosed["bad-request"] > 0, "fuzz produced no bad requests");
  assert.deepEqual(errorLogs, []);
  // Streams opened by fuzz inputs: each freed exactly once.
  assert.equal(connected, stats.sessions.opened);
  assert.equal(disconnected, connected);
  assert.equal(freed.size, connected);
  assert.ok([...freed.values()].every((n) => n === 1), "a free callback ran twice");

  // The accept loop still runs and a normal client gets its events.
  const { client, head, parser } = await RawClient.stream(port, "/events/after");
  try {
    assert.equal(head.status, 200);
    assert.ok(events.send("still serving", { channel: "after", event: "check" }));
    await client.readEvents(parser, 1);
    assert.equal(parser.events[0].type, "check");
    assert.equal(parser.events[0].data, "still serving");
  } finally {
    client.close();
  }
});
