/**
 * `watchStreams`: which stream sockets keep a read pending, and how a
 * departed client is found on the others (a failed keep-alive write).
 */
import assert from "node:assert/strict";
import { serve, type ServerOptions } from "../../mod.ts";
import type { CloseReason } from "../../sessions/session.ts";
import { RawClient } from "../_util/raw_client.ts";
import { deferred, until, within } from "./_replay_util.ts";

function testServer(options: ServerOptions = {}) {
  return serve({ hostname: "127.0.0.1", port: 0, keepAlive: 0, ...options });
}

async function stream(port: number): Promise<RawClient> {
  const s = await within(RawClient.stream(port, "/events"), "stream");
  assert.equal(s.head.status, 200, s.head.statusLine);
  return s.client;
}

Deno.test("watchStreams N watches at most N streams at once; a freed watch goes to the next stream", async () => {
  await using server = testServer({ watchStreams: 2 });
  server.eventSource("/events");
  const a = await stream(server.addr.port);
  await using _b = await stream(server.addr.port);
  await using _c = await stream(server.addr.port);
  await until(() => server.stats.sessions.open === 3, "three streams");
  assert.equal(server.stats.streamsWatched, 2);
  a.close();
  await until(() => server.stats.sessions.open === 2, "the watched stream's departure");
  assert.equal(server.stats.streamsWatched, 1);
  await using _d = await stream(server.addr.port);
  await until(() => server.stats.streamsWatched === 2, "the next stream is watched");
});

Deno.test("an unwatched stream whose client left is closed by a failed keep-alive write", async () => {
  await using server = testServer({ watchStreams: false, keepAlive: 1 });
  const events = server.eventSource("/events");
  const gone = deferred<CloseReason>();
  events.onDisconnect((_client, reason) => gone.resolve(reason));
  const client = await stream(server.addr.port);
  await until(() => server.stats.sessions.open === 1, "the stream");
  assert.equal(server.stats.streamsWatched, 0);
  client.close();
  // Nothing reads the socket: the first keep-alive after the FIN is sent (the
  // peer answers with a reset), a later one fails and ends the session.
  assert.equal(await within(gone.promise, "departure found by a write"), "write-error");
  assert.equal(server.stats.sessions.open, 0);
  assert.equal(server.stats.connections, 0);
});

Deno.test("watchStreams: true watches every stream, and a second request on one gets 400", async () => {
  await using server = testServer({ watchStreams: true, maxClients: 4 });
  server.eventSource("/events");
  const clients = [];
  for (let i = 0; i < 3; i++) clients.push(await stream(server.addr.port));
  await until(() => server.stats.streamsWatched === 3, "every stream watched");
  const first = clients[0];
  await first.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  await within(first.readUntil((b) => b.includes("400 Session Already Active")), "400");
  for (const c of clients) c.close();
});

Deno.test("watchStreams refuses a negative or fractional limit", () => {
  assert.throws(() => serve({ port: 0, watchStreams: -1 }), {
    name: "RangeError",
    message: "watchStreams must be a non-negative integer: received -1",
  });
  assert.throws(() => serve({ port: 0, watchStreams: 1.5 }), { name: "RangeError" });
});
