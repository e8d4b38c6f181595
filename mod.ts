/**
 * Sluice: a Server-Sent Events server at the socket level, for gateway boxes
 * and Deno apps. A raw `Deno.listen` server parses HTTP/1.1 itself, keeps a
 * fixed-capacity session table, and drains a bounded queue into every
 * subscribed socket.
 *
 * @example
 * ```ts
 * import { serve } from "@sluice/sluice";
 *
 * await using server = serve({ port: 0, maxClients: 64 });
 * const events = server.eventSource("/events", { retry: 1000 });
 * events.onConnect((client) => {
 *   if (client.lastId) console.log(`client reconnected, last id ${client.lastId}`);
 *   client.send("hello!", { id: "1" });
 * });
 * events.send("my event content", { event: "myevent" });
 * ```
 *
 * @module
 */

export {
  DEFAULT_SERVER_OPTIONS,
  type Logger,
  type LogLevel,
  serve,
  type ServerOptions,
  type ServerStats,
  SluiceServer,
} from "./server/server.ts";
