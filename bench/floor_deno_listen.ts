/**
 * The floor of the platform, for the benchmark (`--peer deno-floor`): the least
 * a Deno program does to serve SSE on `Deno.listen`. It finds the end of a
 * request head and nothing more (no header parsing beyond `Content-Length`, no
 * limits, timeouts, routing, auth, history, logs or stats), and per event it
 * makes one `conn.write` per subscriber, with what one turn of the event loop
 * published joined into one buffer (Sluice's coalescing, without its
 * bookkeeping). What it costs is what any Deno server pays for the same job:
 * the distance from Sluice to it is Sluice's own overhead, and the distance from
 * it to the C reference is the runtime's.
 *
 * - `GET <any path>`: `200 text/event-stream`; the socket is then only written to
 *   (no pending read, as Sluice past `--watch-streams`).
 * - `POST <any path>`: the body becomes one `data:` line, answered `202`.
 * - One write in flight per subscriber; what comes meanwhile is queued and
 *   written together; a subscriber with more than 4 MiB queued is dropped (as
 *   the C reference does), so the overload run stays bounded.
 *
 * Not for use as a server: it trusts its clients (no limits at all).
 *
 * ```sh
 * deno run -A bench/floor_deno_listen.ts --port 8082
 * ```
 *
 * @module
 */
import { cliFlags } from "../server/hub/mod.ts";
import { setImmediate } from "node:timers";

const { values } = cliFlags({
  name: "floor_deno_listen",
  usage: "deno run -A bench/floor_deno_listen.ts [flags]",
  description:
    "The benchmark's floor: the least a Deno.listen program does to serve SSE (GET <any " +
    "path> subscribes, POST <any path> publishes the body as one data: line). It trusts " +
    "its clients: not for use as a server.",
  flags: {
    port: { type: "integer", default: 8082, max: 65535, help: "TCP port (0: any free port)" },
    hostname: { type: "string", default: "127.0.0.1", help: "address to listen on" },
  },
});
const port = values.port;

const encoder = new TextEncoder();
const STREAM_HEAD = encoder.encode(
  "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
);
const ACCEPTED = encoder.encode("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
const DATA = encoder.encode("data: ");
const END = encoder.encode("\n\n");
const MAX_QUEUED = 4 << 20;
const HEAD_END = [13, 10, 13, 10];

/** A subscriber: its socket, and what waits behind its write in flight. */
interface Subscriber {
  conn: Deno.Conn;
  writing: boolean;
  queued: Uint8Array[];
  queuedBytes: number;
}

const subscribers = new Set<Subscriber>();
let published: Uint8Array[] = [];
let flushScheduled = false;

function drop(sub: Subscriber): void {
  if (!subscribers.delete(sub)) return;
  try {
    sub.conn.close();
  } catch {
    // Already closed.
  }
}

/** One buffer for several (no copy for one). */
function join(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  // The floor owns its few lines of byte joining: it stands apart from Sluice.
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Writes `bytes` whole (loops on partial writes), then what was queued meanwhile. */
function send(sub: Subscriber, bytes: Uint8Array): void {
  sub.writing = true;
  sub.conn.write(bytes).then((n) => {
    if (n < bytes.length) return send(sub, bytes.subarray(n));
    if (sub.queued.length === 0) {
      sub.writing = false;
      return;
    }
    const next = join(sub.queued);
    sub.queued = [];
    sub.queuedBytes = 0;
    send(sub, next);
  }, () => drop(sub));
}

/** One pass: everything published since the last one, one write per subscriber. */
function flush(): void {
  flushScheduled = false;
  const bytes = join(published);
  published = [];
  for (const sub of subscribers) {
    if (!sub.writing) {
      send(sub, bytes);
    } else if (sub.queuedBytes + bytes.length > MAX_QUEUED) {
      drop(sub);
    } else {
      sub.queued.push(bytes);
      sub.queuedBytes += bytes.length;
    }
  }
}

function publish(body: Uint8Array): void {
  const event = new Uint8Array(DATA.length + body.length + END.length);
  event.set(DATA, 0);
  event.set(body, DATA.length);
  event.set(END, DATA.length + body.length);
  published.push(event);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

function indexOfHeadEnd(buf: Uint8Array, length: number): number {
  outer: for (let i = 0; i + 4 <= length; i++) {
    for (let j = 0; j < 4; j++) if (buf[i + j] !== HEAD_END[j]) continue outer;
    return i + 4;
  }
  return -1;
}

function contentLength(head: string): number {
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  return m === null ? 0 : Number(m[1]);
}

const latin1 = new TextDecoder("latin1");

async function serve(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  let buf = new Uint8Array(4096);
  let have = 0;
  for (;;) {
    if (have === buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const n = await conn.read(buf.subarray(have));
    if (n === null) break;
    have += n;
    for (;;) {
      const headEnd = indexOfHeadEnd(buf, have);
      if (headEnd < 0) break;
      if (buf[0] === 0x47) { // "G": a subscriber; the socket is only written to from now on.
        await conn.write(STREAM_HEAD);
        subscribers.add({ conn, writing: false, queued: [], queuedBytes: 0 });
        return;
      }
      const total = headEnd + contentLength(latin1.decode(buf.subarray(0, headEnd)));
      if (have < total) break;
      publish(buf.slice(headEnd, total));
      conn.write(ACCEPTED).catch(() => {});
      buf.copyWithin(0, total, have);
      have -= total;
    }
  }
  conn.close();
}

const listener = Deno.listen({ hostname: values.hostname, port });
console.log(
  `floor_deno_listen on http://${values.hostname}:${(listener.addr as Deno.NetAddr).port}`,
);
for await (const conn of listener) {
  serve(conn).catch(() => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  });
}
