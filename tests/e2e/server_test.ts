import assert from "node:assert/strict";
import { serve, type ServerOptions } from "../../mod.ts";
import type { CloseReason } from "../../sessions/session.ts";
import type { Client } from "../../server/stream/event_source.ts";
import { RawClient } from "../_util/raw_client.ts";
import { SseParser } from "../_util/sse_parser.ts";
import { within as withinMs } from "../_util/within.ts";

const STREAM_HEAD = "HTTP/1.1 200 OK\r\n" +
  "Content-Type: text/event-stream\r\n" +
  "Cache-Control: no-cache\r\n" +
  "Connection: keep-alive\r\n" +
  "X-Accel-Buffering: no\r\n\r\n";

const within = <T>(p: Promise<T>, what: string): Promise<T> => withinMs(p, what, 10_000);

/** A promise with its resolve function. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/** A server on 127.0.0.1:0 with defaults suited to tests. */
function testServer(options: ServerOptions = {}) {
  return serve({ hostname: "127.0.0.1", port: 0, keepAlive: 0, ...options });
}

/** Opens a stream and waits for its 200 head. */
async function subscribe(port: number, path = "/events", headers: Record<string, string> = {}) {
  const s = await within(RawClient.stream(port, path, headers), `stream ${path}`);
  assert.equal(s.head.status, 200, s.head.statusLine);
  return s;
}

/** Sends one raw request on a fresh connection and reads the response and the close. */
async function exchange(port: number, request: string) {
  await using c = await RawClient.connect(port);
  await c.send(request);
  const res = await within(c.readResponse(), `response to ${JSON.stringify(request.slice(0, 40))}`);
  return { ...res, c };
}

/** A logger that keeps its records and can wait for one. */
function recordingLogger() {
  const records: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const waiters: { match: string; resolve: () => void }[] = [];
  const logger = (level: string, message: string, fields: Record<string, unknown> = {}) => {
    records.push({ level, message, fields });
    for (const w of waiters) if (message === w.match) w.resolve();
  };
  const waitFor = (match: string) => {
    if (records.some((r) => r.message === match)) return Promise.resolve();
    const d = deferred();
    waiters.push({ match, resolve: d.resolve });
    return within(d.promise, `log ${match}`);
  };
  return { records, logger, waitFor };
}

/** Records free callbacks of every session a source opens. */
function trackFrees(source: { onConnect(cb: (c: Client) => void): void }) {
  const frees = new Map<number, CloseReason[]>();
  const freed = new Map<number, ReturnType<typeof deferred<CloseReason>>>();
  const connected: Client[] = [];
  source.onConnect((client) => {
    connected.push(client);
    const list: CloseReason[] = [];
    frees.set(client.id, list);
    const d = deferred<CloseReason>();
    freed.set(client.id, d);
    client.session.setContext({ id: client.id }, (ctx, reason) => {
      assert.deepEqual(ctx, { id: client.id });
      list.push(reason);
      d.resolve(reason);
    });
  });
  return { frees, freed, connected };
}

Deno.test("stream head is exact and named events with CR, LF, CRLF data read back", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
  await within(c.readUntil((b) => b.includes("\r\n\r\n")), "head");
  assert.equal(c.buffer, STREAM_HEAD + ": ok\n\n");
  c.buffer = "";
  assert.equal(events.send("plain"), true);
  events.send("one\ntwo", { event: "lf" });
  events.send("one\rtwo", { event: "cr", id: "0" });
  events.send("one\r\ntwo\r\n\r\nfour", { event: "crlf", id: "7" });
  events.send("", { event: "empty" });
  const parser = new SseParser();
  await within(c.readEvents(parser, 5), "5 events");
  assert.deepEqual(parser.events.map((e) => [e.type, e.data]), [
    ["message", "plain"],
    ["lf", "one\ntwo"],
    ["cr", "one\ntwo"],
    ["crlf", "one\ntwo\n\nfour"],
    ["empty", ""],
  ]);
  // Explicit ids are kept as given, `0` included.
  assert.equal(parser.events[2].lastEventId, "0");
  assert.equal(parser.events[3].lastEventId, "7");
});

Deno.test("stream starts with retry: when configured, and the source's retry wins", async () => {
  await using server = testServer({ retry: 2500 });
  server.eventSource("/a");
  server.eventSource("/b", { retry: 100 });
  const a = await subscribe(server.addr.port, "/a");
  await using _a = a.client;
  await within(a.client.readUntil((b) => b.includes("\n\n")), "retry a");
  assert.equal(a.client.buffer, "retry: 2500\n\n");
  const b = await subscribe(server.addr.port, "/b");
  await using _b = b.client;
  await within(b.client.readUntil((x) => x.includes("\n\n")), "retry b");
  assert.equal(b.client.buffer, "retry: 100\n\n");
});

Deno.test("no retry: line is sent when none is configured", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  const { client, parser } = await subscribe(server.addr.port);
  await using _c = client;
  events.send("first");
  await within(client.readEvents(parser, 1), "event");
  assert.equal(parser.retry, undefined);
  assert.equal(parser.events[0].data, "first");
});

Deno.test("a GET without Accept: text/event-stream (curl) gets the stream too", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /events HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n");
  await within(c.readUntil((b) => b.includes("\r\n\r\n")), "head");
  assert.equal(c.buffer, STREAM_HEAD + ": ok\n\n");
  c.buffer = "";
  events.send("hi");
  const p = new SseParser();
  await within(c.readEvents(p, 1), "event");
  assert.equal(p.events[0].data, "hi");
});

Deno.test("stream at capacity gets exact 503 and the open streams are undisturbed", async () => {
  await using server = testServer({ maxClients: 2, retryAfter: 7 });
  const events = server.eventSource("/events");
  const a = await subscribe(server.addr.port);
  const b = await subscribe(server.addr.port);
  await using _a = a.client;
  await using _b = b.client;
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
  const all = await within(c.readToEnd(), "503 and close");
  assert.equal(
    all,
    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n" +
      "Connection: close\r\n\r\n",
  );
  assert.equal(server.stats.sessions.rejected, 1);
  assert.equal(server.stats.sessions.open, 2);
  assert.equal(events.count(), 2);
  events.send("after the 503");
  await within(a.client.readEvents(a.parser, 1), "a");
  await within(b.client.readEvents(b.parser, 1), "b");
  assert.equal(a.parser.events[0].data, "after the 503");
  assert.equal(b.parser.events[0].data, "after the 503");
});

Deno.test("a slot freed by a leaving client can be taken by a new stream", async () => {
  await using server = testServer({ maxClients: 1 });
  const events = server.eventSource("/events");
  const gone = deferred();
  events.onDisconnect(() => gone.resolve());
  const a = await subscribe(server.addr.port);
  a.client.close();
  await within(gone.promise, "disconnect");
  const b = await subscribe(server.addr.port);
  await using _b = b.client;
  assert.equal(server.stats.sessions.open, 1);
});

Deno.test("free callback runs exactly once when the client aborts", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  const { frees, freed, connected } = trackFrees(events);
  const disconnects: CloseReason[] = [];
  events.onDisconnect((_c, reason) => disconnects.push(reason));
  const { client } = await subscribe(server.addr.port);
  const id = connected[0].id;
  client.close();
  assert.equal(await within(freed.get(id)!.promise, "free"), "client-closed");
  assert.deepEqual(disconnects, ["client-closed"]);
  assert.equal(server.sessions.get(id), undefined);
  assert.equal(events.count(), 0);
  await server.shutdown();
  assert.deepEqual(frees.get(id), ["client-closed"]);
  assert.equal(server.stats.sessions.closed["client-closed"], 1);
});

Deno.test("free callback runs exactly once on shutdown for every stream", async () => {
  const server = testServer();
  const events = server.eventSource("/events");
  const { frees, connected } = trackFrees(events);
  const streams = [
    await subscribe(server.addr.port),
    await subscribe(server.addr.port),
    await subscribe(server.addr.port),
  ];
  events.send("last words");
  await within(server.shutdown(), "shutdown");
  for (const s of streams) {
    // Queued events are flushed before the stream ends.
    const rest = await within(s.client.readToEnd(), "end of stream");
    s.parser.feed(rest);
    assert.deepEqual(s.parser.events.map((e) => e.data), ["last words"]);
    s.client.close();
  }
  assert.equal(connected.length, 3);
  for (const c of connected) assert.deepEqual(frees.get(c.id), ["shutdown"]);
  await server.shutdown();
  for (const c of connected) assert.deepEqual(frees.get(c.id), ["shutdown"]);
});

Deno.test("a reset socket is freed once and does not disturb the other streams", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  const { frees, freed, connected } = trackFrees(events);
  const good1 = await subscribe(server.addr.port);
  const bad = await subscribe(server.addr.port);
  const good2 = await subscribe(server.addr.port);
  await using _g1 = good1.client;
  await using _g2 = good2.client;
  const badId = connected[1].id;
  // A big event the bad client never reads: closing with unread bytes resets the
  // connection, so the server sees a failed write or a reset read.
  const big = "x".repeat(256 * 1024);
  events.send(big);
  bad.client.close();
  const reason = await within(freed.get(badId)!.promise, "free of the reset client");
  assert.ok(reason === "write-error" || reason === "client-closed", reason);
  for (let i = 0; i < 5; i++) events.send(`after ${i}`);
  for (const g of [good1, good2]) {
    await within(g.client.readEvents(g.parser, 6), "good client events");
    assert.equal(g.parser.events[0].data.length, big.length);
    assert.deepEqual(g.parser.events.slice(1).map((e) => e.data), [
      "after 0",
      "after 1",
      "after 2",
      "after 3",
      "after 4",
    ]);
  }
  assert.deepEqual(frees.get(badId), [reason]);
  assert.equal(server.stats.sessions.open, 2);
  await server.shutdown();
  assert.deepEqual(frees.get(badId), [reason], "still exactly once after shutdown");
});

Deno.test("send() reports back-pressure past queueSize and sendAsync waits for the drain", async () => {
  await using server = testServer({ queueSize: 4 });
  const events = server.eventSource("/events");
  const { client, parser } = await subscribe(server.addr.port);
  await using _c = client;
  // One synchronous burst: the drain (a microtask) cannot run in between.
  const results = Array.from({ length: 10 }, (_, i) => events.send(`e${i}`));
  assert.deepEqual(results, [true, true, true, true, false, false, false, false, false, false]);
  assert.equal(server.stats.queue.rejected, 6);
  assert.equal(server.stats.queue.depth, 4);
  const late = events.sendAsync("late", { timeoutMs: 5_000 });
  assert.equal(await within(late, "sendAsync"), true);
  await within(client.readEvents(parser, 5), "5 events");
  assert.deepEqual(parser.events.map((e) => e.data), ["e0", "e1", "e2", "e3", "late"]);
  assert.equal(server.stats.queue.rejected, 6, "a successful sendAsync is not a rejection");
});

Deno.test("keep-alive comments arrive on idle streams", async () => {
  await using server = testServer({ keepAlive: 1 });
  server.eventSource("/events");
  const { client, parser } = await subscribe(server.addr.port);
  await using _c = client;
  await within(
    (async () => {
      while (!parser.comments.includes("keep-alive")) {
        if (!(await client.readMore())) throw new Error("stream ended");
        parser.feed(client.buffer);
        client.buffer = "";
      }
    })(),
    "keep-alive comment",
  );
  // The first comment is the one written with the head (a body byte, so that every browser opens).
  assert.deepEqual(parser.comments, ["ok", "keep-alive"]);
  assert.equal(parser.events.length, 0);
});

Deno.test("pipelined plain requests are answered in order on one socket", async () => {
  await using server = testServer();
  server.route("GET", "/a", () => ({ status: 200, body: "A" }));
  server.route(
    "GET",
    "/b",
    () => new Promise((r) => setTimeout(() => r({ status: 200, body: "B" }), 20)),
  );
  server.route("POST", "/echo", (req) => ({ status: 200, body: req.body }));
  await using c = await RawClient.connect(server.addr.port);
  await c.send(
    "GET /b HTTP/1.1\r\nHost: x\r\n\r\n" +
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
      "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n" +
      "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  const bodies: string[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await within(c.readResponse(), `response ${i}`);
    statuses.push(r.status);
    bodies.push(r.body);
  }
  assert.deepEqual(statuses, [200, 200, 200, 404, 200]);
  assert.deepEqual([bodies[0], bodies[1], bodies[2], bodies[4]], ["B", "hello", "A", "A"]);
  assert.equal(await within(c.readToEnd(), "close"), "", "closed after Connection: close");
});

Deno.test("a second request on a stream socket gets 400 Session Already Active", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  const { client, parser } = await subscribe(server.addr.port);
  await using _c = client;
  await client.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  await within(client.readUntil((b) => b.includes("Session Already Active\n")), "400");
  client.buffer = client.buffer.replace(/^: ok\n\n/, ""); // Written with the stream head.
  assert.match(client.buffer, /^HTTP\/1\.1 400 [^\r\n]+\r\n/);
  assert.ok(client.buffer.endsWith("\r\n\r\nSession Already Active\n"), client.buffer);
  client.buffer = "";
  assert.equal(server.stats.sessions.open, 1, "the stream goes on");
  events.send("still streaming");
  await within(client.readEvents(parser, 1), "event after 400");
  assert.equal(parser.events[0].data, "still streaming");
});

Deno.test("every request limit answers its status over a real socket", async () => {
  await using server = testServer({ maxBodyBytes: 100 });
  server.eventSource("/events");
  server.route("POST", "/upload", () => ({ status: 204 }));
  const port = server.addr.port;
  const cases: [string, string, number][] = [
    ["414", `GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
    [
      "431 size",
      `GET / HTTP/1.1\r\nHost: x\r\n${`X-F: ${"f".repeat(1000)}\r\n`.repeat(17)}\r\n`,
      431,
    ],
    ["431 count", `GET / HTTP/1.1\r\nHost: x\r\n${"X-F: f\r\n".repeat(101)}\r\n`, 431],
    ["413", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", 413],
    ["411", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 411],
    ["505", "GET /events HTTP/2.0\r\nHost: x\r\n\r\n", 505],
    ["501", "BREW /events HTTP/1.1\r\nHost: x\r\n\r\n", 501],
    ["400 header", "GET /events HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400],
    ["400 line", "GET /events\r\nHost: x\r\n\r\n", 400],
    ["400 host", "GET /events HTTP/1.1\r\n\r\n", 400],
  ];
  for (const [what, request, status] of cases) {
    const r = await exchange(port, request);
    assert.equal(r.status, status, what);
    assert.equal(r.headers.get("connection"), "close", what);
    assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8", what);
    assert.ok(r.body.length > 0 && r.body.length < 200, `${what}: short fixed body`);
    assert.ok(!r.body.includes("aaaa") && !r.body.includes("fff"), `${what}: no echo`);
    assert.equal(await within(r.c.readToEnd(), `${what} close`), "", `${what}: closed`);
  }
  assert.equal(server.stats.httpErrors[431], 2);
});

Deno.test("405 lists the allowed methods and keeps the connection", async () => {
  await using server = testServer();
  server.eventSource("/events");
  await using c = await RawClient.connect(server.addr.port);
  await c.send("DELETE /events HTTP/1.1\r\nHost: x\r\n\r\n");
  const r = await within(c.readResponse(), "405");
  assert.equal(r.statusLine, "HTTP/1.1 405 Method Not Allowed");
  assert.equal(r.headers.get("allow"), "GET");
  assert.equal(r.headers.get("connection"), "keep-alive");
  await c.send("OPTIONS /events HTTP/1.1\r\nHost: x\r\n\r\n");
  const o = await within(c.readResponse(), "OPTIONS");
  assert.equal(o.status, 204);
  assert.equal(o.headers.get("allow"), "GET, OPTIONS");
});

Deno.test("404 names the URI, method and arguments in a plain-text body", async () => {
  await using server = testServer();
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /nope/%3Cb%3E?x=1&y=two%20words HTTP/1.1\r\nHost: x\r\n\r\n");
  const r = await within(c.readResponse(), "404");
  assert.equal(r.statusLine, "HTTP/1.1 404 Not Found");
  assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(
    r.body,
    "Not Found\n\nURI: /nope/<b>\nMethod: GET\nArguments: 2\n x: 1\n y: two words\n",
  );
  // Nothing from the request reaches a header.
  for (const v of r.headers.values()) assert.ok(!v.includes("nope"));
});

Deno.test("a head not complete within headerTimeout gets 408 and the socket closes", async () => {
  await using server = testServer({ headerTimeout: 300 });
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /events HTTP/1.1\r\nHost: x\r\n");
  const r = await within(c.readResponse(), "408");
  assert.equal(r.statusLine, "HTTP/1.1 408 Request Timeout");
  assert.equal(r.headers.get("connection"), "close");
  assert.equal(await within(c.readToEnd(), "close"), "");
  // A silent connection is timed out too.
  await using d = await RawClient.connect(server.addr.port);
  assert.equal((await within(d.readResponse(), "408 silent")).status, 408);
});

Deno.test("client.send reaches that client alone", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  const { connected } = trackFrees(events);
  const a = await subscribe(server.addr.port);
  const b = await subscribe(server.addr.port);
  await using _a = a.client;
  await using _b = b.client;
  assert.equal(connected.length, 2);
  assert.equal(connected[0].send("only for a", { event: "private", id: "p1" }), true);
  events.send("for everyone");
  await within(a.client.readEvents(a.parser, 2), "a");
  await within(b.client.readEvents(b.parser, 1), "b");
  assert.deepEqual(a.parser.events.map((e) => [e.type, e.data]), [
    ["private", "only for a"],
    ["message", "for everyone"],
  ]);
  // b's first event is the broadcast: the private one never reached it.
  assert.deepEqual(b.parser.events.map((e) => e.data), ["for everyone"]);
});

Deno.test("Last-Event-ID header and ?lastEventId= reach client.lastId", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  const { connected } = trackFrees(events);
  const a = await subscribe(server.addr.port, "/events", { "Last-Event-ID": "41" });
  const b = await subscribe(server.addr.port, "/events?lastEventId=abc%20d");
  const c = await subscribe(server.addr.port, "/events");
  await using _a = a.client;
  await using _b = b.client;
  await using _c = c.client;
  assert.deepEqual(connected.map((x) => x.lastId), ["41", "abc d", undefined]);
  assert.equal(connected[0].remoteAddr.startsWith("127.0.0.1:"), true);
});

Deno.test("channels of /events/:channel receive only their own events", async () => {
  await using server = testServer();
  const events = server.eventSource("/events/:channel");
  const a = await subscribe(server.addr.port, "/events/a");
  const b = await subscribe(server.addr.port, "/events/b");
  await using _a = a.client;
  await using _b = b.client;
  events.send("to a", { channel: "a" });
  events.send("to b", { channel: "b" });
  await within(a.client.readEvents(a.parser, 1), "a");
  await within(b.client.readEvents(b.parser, 1), "b");
  assert.equal(a.parser.events[0].data, "to a");
  assert.equal(b.parser.events[0].data, "to b");
  const bad = await exchange(server.addr.port, "GET /events/a%20b HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal(bad.status, 400);
});

Deno.test("shutdown ends the streams and resolves finished", async () => {
  const server = testServer();
  const events = server.eventSource("/events");
  const { client, parser } = await subscribe(server.addr.port);
  let finished = false;
  server.finished.then(() => finished = true);
  events.send("bye");
  await within(server.shutdown(), "shutdown");
  await within(server.finished, "finished");
  assert.equal(finished, true);
  parser.feed(await within(client.readToEnd(), "stream end"));
  assert.deepEqual(parser.events.map((e) => e.data), ["bye"]);
  client.close();
  assert.equal(events.send("too late"), false);
  await assert.rejects(RawClient.connect(server.addr.port));
});

Deno.test("close() is idempotent and ends streams at once", async () => {
  const server = testServer();
  server.eventSource("/events");
  const { client } = await subscribe(server.addr.port);
  await within(Promise.all([server.close(), server.close()]), "close twice");
  await within(server.close(), "close again");
  await within(server.shutdown(), "shutdown after close");
  await within(server[Symbol.asyncDispose](), "dispose after close");
  // Only what was written with the head (a comment) came before the end.
  assert.equal((await within(client.readToEnd(), "end")).replace(/^: ok\n\n/, ""), "");
  client.close();
  assert.equal(server.stats.sessions.closed.shutdown, 1);
});

Deno.test("stats count requests, events published and delivered", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  const a = await subscribe(server.addr.port);
  const b = await subscribe(server.addr.port);
  await using _a = a.client;
  await using _b = b.client;
  events.send("1");
  events.send("2");
  await within(a.client.readEvents(a.parser, 2), "a");
  await within(b.client.readEvents(b.parser, 2), "b");
  const s = server.stats;
  assert.equal(s.eventsPublished, 2);
  assert.equal(s.eventsDelivered, 4);
  assert.equal(s.sessions.open, 2);
  assert.equal(s.sessions.opened, 2);
  assert.equal(s.requests, 2);
});

Deno.test("a real socket whose peer reset gets write-error: freed once, others go on", async () => {
  await using server = testServer({ maxClients: 2 });
  const events = server.eventSource("/events");
  const other = await subscribe(server.addr.port);
  await using _o = other.client;
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const peer = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = await listener.accept();
  // A session of the server's table on a socket whose reader the test controls.
  const session = server.sessions.open(conn, { remoteAddr: "127.0.0.1:1", channels: ["x"] });
  const frees: CloseReason[] = [];
  session.setContext("ctx", (_ctx, reason) => frees.push(reason));
  const chunk = new TextEncoder().encode("data: " + "y".repeat(1000) + "\n\n");
  session.write(chunk);
  await within(session.idle(), "first write");
  // Closing with unread bytes makes the peer's kernel answer with a reset.
  peer.close();
  await within(
    (async () => {
      while (!session.closed) {
        session.write(chunk);
        await session.idle();
        await new Promise((r) => setTimeout(r, 1));
      }
    })(),
    "write failure",
  );
  assert.deepEqual(frees, ["write-error"]);
  assert.equal(server.sessions.get(session.id), undefined);
  assert.equal(server.stats.sessions.closed["write-error"], 1);
  events.send("others go on");
  await within(other.client.readEvents(other.parser, 1), "other");
  assert.equal(other.parser.events[0].data, "others go on");
  await server.shutdown();
  assert.deepEqual(frees, ["write-error"]);
});

Deno.test("an onConnect callback that throws is logged and the stream goes on", async () => {
  const log = recordingLogger();
  await using server = testServer({ logger: log.logger });
  const events = server.eventSource("/events");
  events.onConnect(() => {
    throw new Error("onConnect boom");
  });
  const gone = deferred();
  events.onDisconnect(() => gone.resolve());
  const { client, parser } = await subscribe(server.addr.port);
  events.send("still works");
  await within(client.readEvents(parser, 1), "event");
  assert.equal(parser.events[0].data, "still works");
  assert.ok(!client.buffer.includes("HTTP/1.1"), "no error response inside the stream");
  const rec = log.records.find((r) => r.message === "onConnect callback failed");
  assert.ok(rec, "logged");
  assert.equal(rec.level, "error");
  assert.match(String(rec.fields.error), /onConnect boom/);
  client.close();
  await within(gone.promise, "disconnect");
  assert.equal(server.stats.sessions.open, 0, "the slot is freed");
});

Deno.test("throwing free and onDisconnect callbacks are logged and shutdown completes", async () => {
  const log = recordingLogger();
  const server = testServer({ logger: log.logger });
  const events = server.eventSource("/events");
  events.onConnect((c) =>
    c.session.setContext(c.id, () => {
      throw new Error("free boom");
    })
  );
  events.onDisconnect(() => {
    throw new Error("onDisconnect boom");
  });
  const a = await subscribe(server.addr.port);
  const b = await subscribe(server.addr.port);
  const c = await subscribe(server.addr.port);
  a.client.close();
  await log.waitFor("onDisconnect callback failed");
  assert.ok(log.records.some((r) => r.message === "free callback failed"));
  assert.equal(server.stats.sessions.open, 2);
  await within(server.shutdown(), "shutdown despite throwing callbacks");
  await within(server.finished, "finished");
  assert.equal(server.stats.sessions.open, 0);
  assert.equal(server.stats.sessions.closed.shutdown, 2);
  for (const s of [b, c]) {
    await within(s.client.readToEnd(), "stream end");
    s.client.close();
  }
});

Deno.test("a request sent one byte at a time, with its body split, is served", async () => {
  await using server = testServer();
  server.route("POST", "/echo", (req) => ({ status: 200, body: req.body }));
  await using c = await RawClient.connect(server.addr.port);
  c.conn.setNoDelay(true);
  const head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
  for (const ch of head) await c.send(ch);
  await c.send("hello ");
  await c.send("world");
  const r = await within(c.readResponse(), "response");
  assert.equal(r.status, 200);
  assert.equal(r.body, "hello world");
});

Deno.test("a burst of 2000 events reaches every stream complete and in order", async () => {
  await using server = testServer({ queueSize: 4096 });
  const events = server.eventSource("/events");
  const streams = [
    await subscribe(server.addr.port),
    await subscribe(server.addr.port),
    await subscribe(server.addr.port),
  ];
  const n = 2000;
  for (let i = 0; i < n; i++) {
    assert.equal(events.send(`event ${i} ${"p".repeat(i % 97)}`, { event: "burst" }), true);
  }
  for (const s of streams) {
    await within(s.client.readEvents(s.parser, n), "burst");
    assert.equal(s.parser.events.length, n);
    s.parser.events.forEach((e, i) => {
      assert.equal(e.type, "burst");
      assert.equal(e.data, `event ${i} ${"p".repeat(i % 97)}`);
    });
    s.client.close();
  }
  assert.equal(server.stats.eventsDelivered, 3 * n);
});

Deno.test("a keep-alive connection can turn into a stream after a plain request", async () => {
  await using server = testServer();
  const events = server.eventSource("/events");
  server.route("GET", "/hello", () => ({ status: 200, body: "hi" }));
  await using c = await RawClient.connect(server.addr.port);
  await c.send(
    "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /events HTTP/1.1\r\nHost: x\r\n\r\n",
  );
  const r = await within(c.readResponse(), "plain response");
  assert.equal(r.body, "hi");
  await within(c.readUntil((b) => b.includes("\r\n\r\n")), "stream head");
  assert.equal(c.buffer, STREAM_HEAD + ": ok\n\n");
  c.buffer = "";
  events.send("now streaming");
  const p = new SseParser();
  await within(c.readEvents(p, 1), "event");
  assert.equal(p.events[0].data, "now streaming");
});

Deno.test("HEAD on a stream path answers the stream head with Connection: close and opens no session", async () => {
  await using server = testServer();
  server.eventSource("/events");
  await using c = await RawClient.connect(server.addr.port);
  await c.send("HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal(
    await within(c.readToEnd(), "head and close"),
    STREAM_HEAD.replace("Connection: keep-alive", "Connection: close"),
  );
  assert.equal(server.stats.sessions.opened, 0);
});

Deno.test("shutdown also closes idle keep-alive connections", async () => {
  const server = testServer();
  server.route("GET", "/a", () => ({ status: 200, body: "A" }));
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal(
    (await within(c.readResponse(), "response")).headers.get("connection"),
    "keep-alive",
  );
  await within(server.shutdown(), "shutdown with an idle connection");
  assert.equal(await within(c.readToEnd(), "close"), "");
  assert.equal(server.stats.connections, 0);
});

Deno.test("close() right after send() leaves no drain timer behind (sanitizers stay clean)", async () => {
  const server = serve({ hostname: "127.0.0.1", port: 0 });
  const events = server.eventSource("/events");
  assert.equal(events.send("queued"), true);
  await server.close();
  assert.equal(server.stats.queue.depth, 1, "close() does not flush");
});

Deno.test("shutdown() right after send() flushes the queue", async () => {
  const server = serve({ hostname: "127.0.0.1", port: 0 });
  const events = server.eventSource("/events");
  assert.equal(events.send("queued"), true);
  await server.shutdown();
  assert.equal(server.stats.queue.depth, 0);
  assert.equal(server.stats.eventsPublished, 1);
});
