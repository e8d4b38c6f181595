/**
 * Multi-client Server-Sent Events with REST subscription: the port of
 * ESP8266WebServer's `ServerSentEvents.ino` demo, behaviour for behaviour.
 *
 * ```sh
 * deno run --allow-net examples/rest_subscribe.ts --port 8080
 * curl -sS http://127.0.0.1:8080/rest/events/subscribe   # → http://127.0.0.1:8080/rest/events/0
 * curl -sS -N http://127.0.0.1:8080/rest/events/0        # from the same IP address
 * ```
 *
 * | original (`ServerSentEvents.ino`)                     | here                                              |
 * | ----------------------------------------------------- | ------------------------------------------------- |
 * | `server.on("/rest/events/subscribe", handleSubscribe)` | `server.route("GET", "/rest/events/subscribe", …)` |
 * | `handleAll` → `SSEHandler(channel)`                   | `server.eventSource("/rest/events/:channel")` with an IP-checking middleware |
 * | `server.onNotFound(handleAll)` → `handleNotFound`      | `server.onNotFound(handleNotFound)`                |
 * | `subscription[SSE_MAX_CHANNELS]`, `subscriptionCount`  | the same table, keyed by channel number           |
 * | `SSEBroadcastState` over the table                    | `events.send(…, { channel })` per listening channel |
 * | per-channel `Ticker` running `SSEKeepAlive`            | one `setInterval` running `keepAlive()`           |
 * | `sensor[i].update.once(rand() % 20 + 10, …)`           | `DemoSensors` (also the hub's `--demo` sensors)   |
 *
 * Behaviour:
 * - `GET /rest/events/subscribe` allocates the first free channel to the
 *   caller's IP address and answers `text/plain` with
 *   `http://<host>:<port>/rest/events/<n>`, where host and port are the
 *   server's own address on that connection (the original's
 *   `WiFi.localIP()`). With every channel taken it answers the 404 page.
 * - `GET /rest/events/<n>` streams only to the IP address that registered
 *   channel `n`; anyone else (and any unknown path) gets `404` with the
 *   "Handle Not Found" page listing URI, method and arguments. A new stream on
 *   a channel replaces the previous one (the original overwrote its client).
 * - Sensors A and B take random 16-bit values at random intervals
 *   (`--sensor-min`..`--sensor-max` seconds, 10–30 by default) and every change
 *   (only a change) is broadcast as `event: event` with
 *   `data: {"TYPE":"STATE","sensorA":{"state":N,"prevState":M}}`.
 * - Every `--keepalive` seconds (30) each listening channel gets
 *   `event: event` / `data: {"TYPE":"KEEP-ALIVE"}`, and every registered
 *   client that is gone is removed and its channel freed.
 *
 * Decisions where the original is ambiguous or buggy:
 * - **Eight channels means eight.** The original declares
 *   `SSE_MAX_CHANNELS 8` but refuses a subscription when
 *   `subscriptionCount == SSE_MAX_CHANNELS - 1`, so only seven clients can
 *   ever subscribe. Here channels 0–7 are all usable and the ninth
 *   subscription gets the 404 page.
 * - A client that registered but has not started listening yet is given one
 *   whole keep-alive period: it is removed at the second keep-alive after
 *   its registration, not at one that happens a moment later. Clients that
 *   listened and left are removed at the very next keep-alive.
 * - One keep-alive timer for all channels: the original attached one ticker
 *   per listening channel, each of which ran the keep-alive for every channel.
 * - The channel number must be decimal digits (`atoi` took `/rest/events/x`
 *   as channel 0).
 * - IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as `a.b.c.d`.
 *
 * @module
 */

import { type Client, type HttpRequest, type HttpResponse, type PeerAddr, serve } from "../mod.ts";
import { cliFlags, DemoSensors, type SensorChange, sensorStateJson } from "../server/hub/mod.ts";

/** Number of channels, hence of subscribed clients. */
const SSE_MAX_CHANNELS = 8;
const KEEP_ALIVE_JSON = JSON.stringify({ TYPE: "KEEP-ALIVE" });

function log(message: string): void {
  console.log(`${new Date().toISOString()} ${message}`);
}

const { values: flags } = cliFlags({
  name: "rest_subscribe",
  usage: "deno run --allow-net examples/rest_subscribe.ts [flags]",
  description: "ESP8266WebServer's ServerSentEvents.ino on Sluice: GET /rest/events/subscribe " +
    "allocates a channel to the caller's IP address, GET /rest/events/<n> streams two simulated " +
    "sensors' changes to it, with a KEEP-ALIVE event every --keepalive seconds.",
  flags: {
    port: { type: "integer", default: 8080, max: 65535, help: "TCP port (0: any free port)" },
    hostname: { type: "string", default: "0.0.0.0", help: "address to listen on" },
    keepalive: {
      type: "number",
      default: 30,
      min: 0.001,
      help: "seconds between KEEP-ALIVE events and removal of gone clients",
    },
    "sensor-min": { type: "number", default: 10, help: "shortest seconds between sensor updates" },
    "sensor-max": { type: "number", default: 30, help: "longest seconds between sensor updates" },
  },
});
const port = flags.port;
const keepAliveSeconds = flags.keepalive;
const sensorMin = flags["sensor-min"];
const sensorMax = flags["sensor-max"];
if (sensorMax < sensorMin) {
  console.error(
    `rest_subscribe: --sensor-max must be >= --sensor-min (${sensorMin}): received ${sensorMax}; ` +
      "run with --help for usage",
  );
  Deno.exit(2);
}

/** One registered client: the original's `SSESubscription`. */
interface Subscription {
  /** IP address that registered the channel. */
  clientIP: string;
  /** The listening stream, once there is one. */
  client: Client | undefined;
  /** Keep-alive tick count when it registered. */
  registeredTick: number;
}

const subscription: (Subscription | undefined)[] = new Array(SSE_MAX_CHANNELS).fill(undefined);
let subscriptionCount = 0;
let keepAliveTicks = 0;

/** The IP address of a peer, IPv4-mapped IPv6 folded to IPv4. */
function ipOf(addr: PeerAddr): string {
  return addr.hostname.startsWith("::ffff:") && addr.hostname.includes(".")
    ? addr.hostname.slice(7)
    : addr.hostname;
}

function hostPort(addr: PeerAddr): string {
  const ip = ipOf(addr);
  return ip.includes(":") ? `[${ip}]:${addr.port}` : `${ip}:${addr.port}`;
}

/** Parses a channel number: decimal digits below {@linkcode SSE_MAX_CHANNELS}. */
function channelNumber(text: string | undefined): number | undefined {
  if (text === undefined || !/^[0-9]{1,3}$/.test(text)) return undefined;
  const n = Number(text);
  return n < SSE_MAX_CHANNELS ? n : undefined;
}

function listening(s: Subscription | undefined): s is Subscription & { client: Client } {
  return s?.client !== undefined && !s.client.closed;
}

function handleNotFound(req: HttpRequest): HttpResponse {
  log("Handle not found");
  let message = "Handle Not Found\n\n";
  message += `URI: ${req.path}\nMethod: ${req.method}\n`;
  const args = [...req.query];
  message += `Arguments: ${args.length}\n`;
  for (const [name, value] of args) message += ` ${name}: ${value}\n`;
  return { status: 404, headers: { "Content-Type": "text/plain" }, body: message };
}

function handleSubscribe(req: HttpRequest): HttpResponse {
  if (subscriptionCount === SSE_MAX_CHANNELS) {
    log(`subscription refused: all ${SSE_MAX_CHANNELS} channels are taken`);
    return handleNotFound(req); // We ran out of channels.
  }
  const clientIP = ipOf(req.remoteAddr);
  const channel = subscription.findIndex((s) => s === undefined);
  subscription[channel] = { clientIP, client: undefined, registeredTick: keepAliveTicks };
  subscriptionCount++;
  const url = `http://${hostPort(req.localAddr ?? server.addr)}/rest/events/${channel}`;
  log(`Allocated channel ${channel}, on uri /rest/events/${channel}`);
  log(`subscription for client IP ${clientIP}: event bus location: ${url}`);
  return { status: 200, headers: { "Content-Type": "text/plain" }, body: url };
}

/** Admits a stream only from the IP address that registered the channel (`SSEHandler`). */
function sseGuard(req: HttpRequest): HttpResponse | undefined {
  const channel = channelNumber(req.params.channel);
  if (channel === undefined) return handleNotFound(req);
  const clientIP = ipOf(req.remoteAddr);
  if (subscription[channel]?.clientIP !== clientIP) {
    log(
      `SSEHandler - unregistered client with IP ${clientIP} tries to listen on channel ${channel}`,
    );
    return handleNotFound(req);
  }
  return undefined;
}

function keepAlive(): void {
  keepAliveTicks++;
  for (let i = 0; i < SSE_MAX_CHANNELS; i++) {
    const s = subscription[i];
    if (s === undefined) continue;
    if (listening(s)) {
      log(`SSEKeepAlive - client is still listening on channel ${i}`);
      events.send(KEEP_ALIVE_JSON, { event: "event", channel: String(i) });
    } else if (s.client === undefined && s.registeredTick === keepAliveTicks - 1) {
      log(`SSEKeepAlive - client registered on channel ${i} is not listening yet`);
    } else {
      log(`SSEKeepAlive - client not listening on channel ${i}, remove subscription`);
      s.client?.close("closed");
      subscription[i] = undefined;
      subscriptionCount--;
    }
  }
}

function broadcastState(change: SensorChange): void {
  const data = sensorStateJson(change);
  for (let i = 0; i < SSE_MAX_CHANNELS; i++) {
    const s = subscription[i];
    if (s === undefined) continue;
    if (listening(s)) {
      log(
        `broadcast status change to client IP ${s.clientIP} on channel ${i} ` +
          `for ${change.name} with new state ${change.state}`,
      );
      if (!events.send(data, { event: "event", channel: String(i) })) {
        log(`SSEBroadcastState - queue full, change dropped for channel ${i}`);
      }
    } else {
      log(`SSEBroadcastState - client ${s.clientIP} registered on channel ${i} but not listening`);
    }
  }
}

const server = serve({
  port,
  hostname: flags.hostname,
  keepAlive: 0, // The KEEP-ALIVE events below are this demo's keep-alive.
  logger: (level, message, fields) => {
    if (level === "debug") return;
    log(`[sluice ${level}] ${message}${fields ? ` ${JSON.stringify(fields)}` : ""}`);
  },
});
server.onNotFound(handleNotFound);
server.route("GET", "/rest/events/subscribe", handleSubscribe);
const events = server.eventSource("/rest/events/:channel", {
  middleware: [sseGuard],
  channels: (req) => [String(channelNumber(req.params.channel))],
});

events.onConnect((client) => {
  const channel = Number(client.channels[0]);
  const s = subscription[channel];
  if (s === undefined) {
    client.close("closed");
    return;
  }
  if (s.client !== undefined && s.client !== client && !s.client.closed) {
    log(`SSEHandler - channel ${channel}: a new stream replaces the previous one`);
    s.client.close("closed");
  }
  s.client = client;
  log(`SSEHandler - registered client with IP ${s.clientIP} is listening on channel ${channel}`);
});
events.onDisconnect((client, reason) => {
  log(`SSEHandler - client on channel ${client.channels[0]} stopped listening (${reason})`);
});

const keepAliveTimer = setInterval(keepAlive, keepAliveSeconds * 1000);
const sensors = new DemoSensors(broadcastState, {
  minIntervalMs: sensorMin * 1000,
  maxIntervalMs: sensorMax * 1000,
  onUpdate: (name, prevState, state) =>
    log(`update sensor ${name} - previous state: ${prevState}, new state: ${state}`),
});
log(`HTTP server and SSE EventSource started, listening on http://${hostPort(server.addr)}/`);
sensors.start();

const stop = (signal: string) => {
  log(`${signal}: shutting down`);
  clearInterval(keepAliveTimer);
  sensors.stop();
  server.shutdown();
};
Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
await server.finished;
log("stopped");
Deno.exit(0);
