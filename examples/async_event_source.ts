/**
 * The ESPAsyncWebServer `AsyncEventSource` sample on Sluice: an event source
 * at `/events` behind Digest authentication.
 *
 * ```sh
 * deno run --allow-net examples/async_event_source.ts --port 8080
 * curl -N --digest -u admin:admin http://127.0.0.1:8080/events
 * ```
 *
 * | original (ESPAsyncWebServer README)                  | here                                                |
 * | ---------------------------------------------------- | --------------------------------------------------- |
 * | `AsyncEventSource events("/events")`                 | `server.eventSource("/events")`                     |
 * | `events.onConnect(…)`, `client->lastId()`            | `events.onConnect((client) => …)`, `client.lastId`  |
 * | `client->send("hello!", NULL, millis(), 1000)`       | `client.send("hello!", { id: millis(), retry: 1000 })` |
 * | `events.send("my event content", "myevent", millis())` | `events.send("my event content", { event: "myevent", id })` |
 * | `if (eventTriggered)` in `loop()`                    | a timer, every `--interval` seconds                 |
 * | `AsyncAuthenticationMiddleware` (`AUTH_DIGEST`, realm, `generateHash()`) + `events.addMiddleware(&digestAuth)` | `events.addMiddleware(digestAuth({ realm, users }))` |
 *
 * The password of `admin` (it is `admin`) is not in this file: only its HA1
 * hashes `H("admin:My app name:admin")` are, for MD5 and SHA-256, the way
 * `generateHash()` keeps only the hash. Make your own with
 * `hashPassword(user, realm, password, algorithm)` from `mod.ts`. A hash is
 * bound to its realm: change the realm and the hashes stop matching.
 *
 * Event ids are milliseconds since the program started, like `millis()`.
 *
 * @module
 */

import { digestAuth, serve, UserStore } from "../mod.ts";
import { cliFlags } from "../server/hub/mod.ts";

/** Realm of the Digest challenge. */
const REALM = "My app name";
/** MD5 HA1 of `admin:My app name:admin`. */
const ADMIN_HA1_MD5 = "a53899dfb0e2555dca109b44f601dea7";
/** SHA-256 HA1 of `admin:My app name:admin`. */
const ADMIN_HA1_SHA256 = "2faf9ef9868081e02f47cb44b4e0d8675b15942c6c1fc205071672eabdb71223";

function log(message: string): void {
  console.log(`${new Date().toISOString()} ${message}`);
}

/** Milliseconds since the program started (Arduino's `millis()`). */
function millis(): number {
  return Math.floor(performance.now());
}

const { values: flags } = cliFlags({
  name: "async_event_source",
  usage: "deno run --allow-net examples/async_event_source.ts [flags]",
  description: "The ESPAsyncWebServer AsyncEventSource sample on Sluice: an event source at " +
    '/events behind Digest authentication (realm "My app name", user admin).',
  flags: {
    port: { type: "integer", default: 8080, max: 65535, help: "TCP port (0: any free port)" },
    hostname: { type: "string", default: "0.0.0.0", help: "address to listen on" },
    interval: {
      type: "number",
      default: 5,
      min: 0.001,
      help: "seconds between the events of the application's trigger",
    },
  },
});
const port = flags.port;
const interval = flags.interval;

const users = new UserStore()
  .addHash("admin", REALM, ADMIN_HA1_SHA256, "SHA-256")
  .addHash("admin", REALM, ADMIN_HA1_MD5, "MD5");

const server = serve({
  port,
  hostname: flags.hostname,
  logger: (level, message, fields) => {
    if (level === "debug") return;
    log(`[sluice ${level}] ${message}${fields ? ` ${JSON.stringify(fields)}` : ""}`);
  },
});

const events = server.eventSource("/events");
events.addMiddleware(digestAuth({ realm: REALM, users }));

events.onConnect((client) => {
  if (client.lastId) {
    log(`Client reconnected! Last message ID that it got is: ${client.lastId}`);
  }
  log(`SSE client connected: ${client.remoteAddr}`);
  // Event "message" with data "hello!", id millis(), and a reconnect delay of 1 s.
  client.send("hello!", { id: String(millis()), retry: 1000 });
});

events.onDisconnect((client, reason) => {
  log(`SSE client disconnected: ${client.remoteAddr} (${reason})`);
});

// The application's trigger: here a timer.
const trigger = setInterval(() => {
  events.send("my event content", { event: "myevent", id: String(millis()) });
}, interval * 1000);

const addr = server.addr;
log(
  `listening on http://${
    addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname
  }:${addr.port}/ (events at /events, Digest realm "${REALM}")`,
);

const stop = (signal: string) => {
  log(`${signal}: shutting down`);
  clearInterval(trigger);
  server.shutdown();
};
Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
await server.finished;
log("stopped");
Deno.exit(0);
