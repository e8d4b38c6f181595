/**
 * Baseline for the benchmark: the idiomatic Deno way to serve SSE, `Deno.serve`
 * with one `ReadableStream` per subscriber. Same job as Sluice's CLI:
 *
 * - `GET /events/<channel>`: `text/event-stream`, events published to the channel;
 * - `POST /events/<channel>`: the request body becomes the event's `data:`
 *   (one `data:` line per body line), answered `202` after enqueueing to every
 *   subscriber (enqueue does not wait for sockets).
 *
 * A `: keep-alive` comment goes to every stream every 15 s (one timer).
 *
 * ```sh
 * deno run -A bench/baseline_deno_serve.ts --port 8081
 * ```
 *
 * @module
 */
import { cliFlags } from "../server/hub/mod.ts";

const { values } = cliFlags({
  name: "baseline_deno_serve",
  usage: "deno run -A bench/baseline_deno_serve.ts [flags]",
  description:
    "The benchmark's baseline, the idiomatic Deno way to serve SSE: Deno.serve with one " +
    "ReadableStream per subscriber. GET /events/<channel> subscribes; POST " +
    "/events/<channel> publishes the body as the event's data.",
  flags: {
    port: { type: "integer", default: 8081, max: 65535, help: "TCP port (0: any free port)" },
    hostname: { type: "string", default: "127.0.0.1", help: "address to listen on" },
  },
});
const port = values.port;

type Stream = ReadableStreamDefaultController<Uint8Array>;

const encoder = new TextEncoder();
const HELLO = encoder.encode(": ok\n\n");
const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");
const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
};
const PREFIX = "/events/";

/** Subscribers per channel. */
const channels = new Map<string, Set<Stream>>();

function subscribe(channel: string): Response {
  let controller: Stream;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      let set = channels.get(channel);
      if (set === undefined) channels.set(channel, set = new Set());
      set.add(c);
      c.enqueue(HELLO);
    },
    cancel() {
      const set = channels.get(channel);
      set?.delete(controller);
      if (set?.size === 0) channels.delete(channel);
    },
  });
  return new Response(body, { headers: SSE_HEADERS });
}

function encodeEvent(data: string): Uint8Array {
  return encoder.encode(data.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join("") + "\n");
}

function broadcast(channel: string, frame: Uint8Array): void {
  const set = channels.get(channel);
  if (set === undefined) return;
  for (const c of set) {
    try {
      c.enqueue(frame);
    } catch {
      set.delete(c);
    }
  }
}

setInterval(() => {
  for (const channel of channels.keys()) broadcast(channel, KEEP_ALIVE);
}, 15_000);

Deno.serve({
  hostname: values.hostname,
  port,
  onListen: ({ port }) => console.error(`baseline listening on ${values.hostname}:${port}`),
}, async (req) => {
  const { pathname } = new URL(req.url);
  if (!pathname.startsWith(PREFIX) || pathname.length === PREFIX.length) {
    return new Response("not found\n", { status: 404 });
  }
  const channel = pathname.slice(PREFIX.length);
  if (req.method === "GET") return subscribe(channel);
  if (req.method === "POST") {
    broadcast(channel, encodeEvent(await req.text()));
    return new Response(null, { status: 202 });
  }
  return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, POST" } });
});
