/**
 * Broken clients: resets in the middle of a write, half-closed sockets,
 * clients that stop reading, thousands that connect and drop at once. Each
 * session's free callback runs exactly once, every socket ends with a close
 * reason, and the counts return to zero (the test sanitizers are on).
 *
 * On loopback a peer cannot vanish without a FIN or a reset: the kernel
 * closes a dead process's sockets. What is proven here is the two ways a
 * server finds such a peer: its socket stops taking bytes (the pending-bytes
 * budget trips, `slow-consumer`), or a write or read fails (`write-error`,
 * `client-closed`). On a real network a silent peer is found by the same
 * paths once TCP gives up retransmitting the keep-alive comments, or (with
 * keep-alive comments off) by TCP keep-alive probes (ETIMEDOUT, both read as
 * disconnects).
 *
 * `SLUICE_DROP_CLIENTS=10000 deno test -A tests/e2e/broken_clients_test.ts`
 * runs the connect-and-drop test with 10 000 clients (default 2 000); the
 * clients run in their own process, so each side needs COUNT descriptors.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { CloseReason } from "../../sessions/session.ts";
import { serve, type SluiceServer } from "../../server/server.ts";
import type { ServerOptions } from "../../server/server_options.ts";
import type { EventSource } from "../../server/stream/event_source.ts";
import { RawClient } from "../_util/raw_client.ts";

interface Watched {
  server: SluiceServer;
  events: EventSource;
  /** Free-callback runs per session id. */
  freed: Map<number, number>;
  /** Close reasons given to the free callbacks. */
  reasons: Map<CloseReason, number>;
  connects: number;
  disconnects: number;
  errorLogs: string[];
  /** Close reasons in the log: sockets ("connection closed") and streams ("stream closed"). */
  socketCloseLogs: number;
  streamCloseLogs: number;
}

/** A server with one `/events/:channel` source whose sessions count their frees. */
function watchedServer(options: ServerOptions = {}): Watched {
  const w = {
    freed: new Map<number, number>(),
    reasons: new Map<CloseReason, number>(),
    connects: 0,
    disconnects: 0,
    errorLogs: [] as string[],
    socketCloseLogs: 0,
    streamCloseLogs: 0,
  } as Watched;
  w.server = serve({
    port: 0,
    hostname: "127.0.0.1",
    keepAlive: 0,
    logger: (level, message, fields) => {
      if (level === "error") w.errorLogs.push(`${message} ${JSON.stringify(fields)}`);
      if (typeof fields?.reason === "string") {
        if (message === "connection closed") w.socketCloseLogs++;
        if (message === "stream closed") w.streamCloseLogs++;
      }
    },
    ...options,
  });
  w.events = w.server.eventSource("/events/:channel");
  w.events.onConnect((client) => {
    w.connects++;
    client.session.setContext({ id: client.id }, (ctx, reason) => {
      const id = (ctx as { id: number }).id;
      w.freed.set(id, (w.freed.get(id) ?? 0) + 1);
      w.reasons.set(reason, (w.reasons.get(reason) ?? 0) + 1);
    });
  });
  w.events.onDisconnect(() => w.disconnects++);
  return w;
}

/** Waits for every socket to end, then checks that nothing leaked and every free ran once. */
async function assertClean(w: Watched): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (
    (w.server.stats.connections > 0 || w.server.sessions.size > 0) && Date.now() < deadline
  ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const s = w.server.stats;
  assert.equal(s.connections, 0, "sockets left open");
  assert.equal(w.server.sessions.size, 0, "sessions left open");
  assert.equal(s.pendingHeads, 0);
  assert.equal(w.events.count(), 0);
  assert.equal(w.connects, s.sessions.opened);
  assert.equal(w.disconnects, w.connects, "onDisconnect once per session");
  assert.equal(w.freed.size, w.connects, "a free callback per session");
  for (const [id, n] of w.freed) assert.equal(n, 1, `session ${id} freed ${n} times`);
  const closedSessions = Object.values(s.sessions.closed).reduce((a, b) => a + b, 0);
  assert.equal(closedSessions, s.sessions.opened, "every session has a close reason");
  const closedSockets = Object.values(s.connectionsClosed).reduce((a, b) => a + b, 0);
  assert.equal(closedSockets, s.accepted, "every socket has a close reason");
  assert.equal(s.connectionsClosed.error, 0);
  assert.deepEqual(w.errorLogs, []);
  // ...and in the log (refusals at accept are logged as warnings, not as closes).
  assert.equal(w.socketCloseLogs, s.accepted - s.connectionsClosed["too-many-connections"]);
  assert.equal(w.streamCloseLogs, s.sessions.opened);
}

Deno.test("streams reset while events are being written end once each, freed once, nothing leaks", async () => {
  const w = watchedServer({ maxPendingBytes: 64 * 1024 * 1024 });
  await using _server = w.server;
  const port = w.server.addr.port;
  const streams = await Promise.all(
    Array.from({ length: 50 }, () => RawClient.stream(port, "/events/reset")),
  );
  for (const s of streams) assert.equal(s.head.status, 200);
  // Big events the clients never read: their receive buffers fill and writes stay in flight.
  const big = "x".repeat(64 * 1024);
  for (let i = 0; i < 40; i++) {
    assert.ok(await w.events.sendAsync(big, { channel: "reset" }));
    await new Promise((r) => setTimeout(r, 1));
  }
  // Close with unread data pending: Linux sends a reset, not a FIN. Keep publishing meanwhile.
  const publishing = (async () => {
    for (let i = 0; i < 20; i++) {
      await w.events.sendAsync(big, { channel: "reset" });
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  for (const s of streams) s.client.close();
  await publishing;
  await assertClean(w);
  for (const reason of w.reasons.keys()) {
    assert.ok(reason === "client-closed" || reason === "write-error", reason);
  }
  assert.equal(w.connects, 50);
});

Deno.test("a plain response cut by a reset ends with write-error, and the server keeps serving", async () => {
  const w = watchedServer();
  await using _server = w.server;
  const body = new Uint8Array(32 * 1024 * 1024); // more than the loopback socket buffers hold
  w.server.route("GET", "/big", () => ({ status: 200, body }));
  w.server.route("GET", "/ok", () => ({ status: 200, body: "ok\n" }));
  const port = w.server.addr.port;
  {
    await using c = await RawClient.connect(port);
    await c.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    await c.readMore(); // a little of the body, then drop it with the rest unread
  }
  await assertClean(w);
  assert.equal(w.server.stats.connectionsClosed["write-error"], 1);
  await using c = await RawClient.connect(port);
  await c.send("GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert.equal((await c.readResponse()).status, 200);
});

Deno.test("a half-closed socket gets every pipelined answer, then the server closes it", async () => {
  const w = watchedServer();
  await using _server = w.server;
  w.server.route("GET", "/n/:n", (req) => ({ status: 200, body: `${req.params.n}\n` }));
  await using c = await RawClient.connect(w.server.addr.port);
  await c.send(
    "GET /n/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: x\r\n\r\n" +
      "GET /n/3 HTTP/1.1\r\nHost: x\r\n\r\n",
  );
  await c.conn.closeWrite();
  const bodies = [];
  for (let i = 0; i < 3; i++) bodies.push((await c.readResponse()).body);
  assert.deepEqual(bodies, ["1\n", "2\n", "3\n"]);
  assert.equal(await c.readToEnd(), "", "the server closes after the last answer");
  await assertClean(w);
  assert.equal(w.server.stats.connectionsClosed["client-closed"], 1);
});

Deno.test("a stream whose client half-closes ends as client-closed and is freed once", async () => {
  const w = watchedServer();
  await using _server = w.server;
  const { client, head } = await RawClient.stream(w.server.addr.port, "/events/half");
  try {
    assert.equal(head.status, 200);
    await client.conn.closeWrite();
    await client.readToEnd(); // the server ends the stream and closes
    assert.ok(client.eof);
  } finally {
    client.close();
  }
  await assertClean(w);
  assert.deepEqual([...w.reasons], [["client-closed", 1]]);
  assert.equal(w.server.stats.connectionsClosed.stream, 1);
});

Deno.test("a client that stops reading is dropped as a slow consumer; a reading client misses nothing", async () => {
  const w = watchedServer({ maxPendingBytes: 256 * 1024 });
  await using _server = w.server;
  const port = w.server.addr.port;
  const stalled = await RawClient.stream(port, "/events/slow"); // never reads again
  const reader = await RawClient.stream(port, "/events/slow");
  try {
    let sent = 0;
    const data = "y".repeat(32 * 1024);
    // Publish until the stalled one is dropped (the loopback buffers hold a few MB first).
    while (w.server.stats.sessions.closed["slow-consumer"] === 0 && sent < 4_000) {
      assert.ok(await w.events.sendAsync(data, { channel: "slow" }));
      sent++;
      // Let the reader keep up, so only the stalled client falls behind (a
      // fan-out pass holds a turn's events: 4 x 32 KiB stays under the budget).
      if (sent % 4 === 0) await reader.client.readEvents(reader.parser, sent);
    }
    assert.equal(w.server.stats.sessions.closed["slow-consumer"], 1, `after ${sent} events`);
    await reader.client.readEvents(reader.parser, sent);
    assert.equal(reader.parser.events.length, sent);
    assert.ok(reader.parser.events.every((e) => e.data === data));
    assert.equal(w.server.sessions.size, 1, "the reading client is still connected");
  } finally {
    stalled.client.close();
    reader.client.close();
  }
  await assertClean(w);
  assert.equal(w.reasons.get("slow-consumer"), 1);
});

Deno.test("thousands of clients that connect and drop at once leak nothing", async () => {
  const count = Number(Deno.env.get("SLUICE_DROP_CLIENTS") ?? "2000");
  const w = watchedServer({ maxClients: count, maxConnections: count + 256 });
  await using _server = w.server;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      new URL("./_drop_clients.ts", import.meta.url).pathname,
      String(w.server.addr.port),
      String(count),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const report = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(report.connected, count, `connects failed: ${JSON.stringify(report)} ${stderr}`);
  await assertClean(w);
  assert.equal(w.server.stats.accepted, count);
  assert.ok(report.streams > 0 && w.connects >= report.streams, JSON.stringify(report));
});
