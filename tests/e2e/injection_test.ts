/**
 * Injection: no publisher or subscriber input can add a response header or
 * an SSE field. CR, LF and NUL in event names, ids, channels, query values
 * and credentials are refused with 400 (or 401), or encoded so they cannot
 * start a line. Everything goes over real sockets, against the hub and the
 * bare server.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startHub } from "../../server/hub/hub.ts";
import { subscriberAuth } from "../../server/hub/subscriber_auth.ts";
import { serve } from "../../server/server.ts";
import { UserStore } from "../../server/middleware/users.ts";
import { RawClient } from "../_util/raw_client.ts";
import { SseParser } from "../_util/sse_parser.ts";

const TOKEN_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n\0]*$/;

/** Sends raw request text, reads the whole answer (until the server closes). */
async function exchange(port: number, request: string): Promise<string> {
  await using c = await RawClient.connect(port);
  await c.send(request);
  await c.conn.closeWrite();
  return await c.readToEnd();
}

/** Checks a response head: a status line, then only well-formed `Name: value` lines, none injected. */
function assertCleanHead(raw: string, allowed: readonly string[]): number {
  const end = raw.indexOf("\r\n\r\n");
  assert.ok(end > 0, `no response head in ${JSON.stringify(raw.slice(0, 200))}`);
  const [status, ...lines] = raw.slice(0, end).split("\r\n");
  assert.match(status, /^HTTP\/1\.1 \d{3} [\x20-\x7e]*$/);
  for (const line of lines) {
    assert.match(line, TOKEN_LINE);
    const name = line.slice(0, line.indexOf(":")).toLowerCase();
    assert.ok(allowed.includes(name), `unexpected header ${JSON.stringify(line)}`);
  }
  return Number(status.split(" ")[1]);
}

const PLAIN_HEADERS = ["content-type", "content-length", "connection", "retry-after", "allow"];
const AUTH_HEADERS = [...PLAIN_HEADERS, "www-authenticate", "cache-control"];

function post(path: string, body: string, type = "text/plain"): string {
  const bytes = new TextEncoder().encode(body).length;
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\n` +
    `Content-Length: ${bytes}\r\nConnection: close\r\n\r\n${body}`;
}

Deno.test("hub: event names and ids with CR, LF or NUL are refused with 400, subscribers see nothing", async () => {
  await using hub = startHub({ port: 0, hostname: "127.0.0.1", keepAlive: 0 });
  const port = hub.server.addr.port;
  const sub = await RawClient.stream(port, "/events/inj");
  try {
    assert.equal(sub.head.status, 200);
    const evil = [
      post("/events/inj?event=a%0D%0Aid:%20666", "x"),
      post("/events/inj?event=a%0Adata:%20injected", "x"),
      post("/events/inj?event=a%0D", "x"),
      post("/events/inj?id=1%0Aevent:%20evil", "x"),
      post("/events/inj?id=1%00", "x"),
      post("/events/inj", JSON.stringify({ data: "x", event: "a\nid: 666" }), "application/json"),
      post(
        "/events/inj",
        JSON.stringify({ data: "x", id: "7\r\nevent: evil" }),
        "application/json",
      ),
      post("/events/inj", JSON.stringify({ data: "x", id: "7\0" }), "application/json"),
    ];
    for (const req of evil) {
      const raw = await exchange(port, req);
      assert.equal(assertCleanHead(raw, PLAIN_HEADERS), 400, req);
    }
    // A clean publish: it is the first (and only) event the subscriber gets.
    const ok = await exchange(port, post("/events/inj?event=fine", "clean"));
    assert.equal(assertCleanHead(ok, [...PLAIN_HEADERS]), 202);
    await sub.client.readEvents(sub.parser, 1);
    assert.equal(sub.parser.events.length, 1);
    assert.equal(sub.parser.events[0].type, "fine");
    assert.equal(sub.parser.events[0].data, "clean");
    // The id is the server's own (digits), not one of the refused ones.
    assert.match(sub.parser.lastEventId, /^[0-9]*$/);
    assert.ok(!["666", "7"].includes(sub.parser.lastEventId), sub.parser.lastEventId);
  } finally {
    sub.client.close();
  }
});

Deno.test("hub: data that looks like SSE fields stays data, one data line per line", async () => {
  await using hub = startHub({ port: 0, hostname: "127.0.0.1", keepAlive: 0 });
  const port = hub.server.addr.port;
  const sub = await RawClient.stream(port, "/events/inj");
  try {
    const data = "a\r\n\r\nevent: evil\nid: 666\rretry: 1\n\ndata: injected\r\n:comment\n";
    const raw = await exchange(port, post("/events/inj", data));
    assert.equal(assertCleanHead(raw, PLAIN_HEADERS), 202);
    const json = await exchange(
      port,
      post("/events/inj", JSON.stringify({ data: "b\n\nevent: evil" }), "application/json"),
    );
    assert.equal(assertCleanHead(json, PLAIN_HEADERS), 202);
    await sub.client.readEvents(sub.parser, 2);
    const [first, second] = sub.parser.events;
    assert.equal(first.type, "message");
    assert.equal(first.data, data.replace(/\r\n|\r/g, "\n"));
    assert.equal(second.type, "message");
    assert.equal(second.data, "b\n\nevent: evil");
    assert.equal(sub.parser.events.length, 2);
    assert.notEqual(sub.parser.retry, 1);
    assert.ok(!sub.parser.lastEventId.includes("666"));
  } finally {
    sub.client.close();
  }
});

Deno.test("hub: channels with CR or LF are refused with 400 for subscribe and publish", async () => {
  await using hub = startHub({ port: 0, hostname: "127.0.0.1", keepAlive: 0 });
  const port = hub.server.addr.port;
  const requests = [
    "GET /events/a%0D%0ASet-Cookie:%20x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /events/a%0Aevent:%20x HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /events?channel=a%0D%0AX-Injected:%201 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /events?channel=a,b%0Aevent:%20x HTTP/1.1\r\nHost: x\r\n\r\n",
    post("/events/a%0D%0ASet-Cookie:%20x=1", "x"),
    post("/events/a%00", "x"),
  ];
  for (const req of requests) {
    const raw = await exchange(port, req);
    assert.equal(assertCleanHead(raw, PLAIN_HEADERS), 400, req);
  }
  assert.equal(hub.server.stats.sessions.opened, 0);
});

Deno.test("a lastEventId with CR/LF in the query adds no header and no SSE field", async () => {
  await using hub = startHub({ port: 0, hostname: "127.0.0.1", keepAlive: 0 });
  const port = hub.server.addr.port;
  await using c = await RawClient.connect(port);
  await c.send(
    "GET /events/le?lastEventId=1%0D%0Aevent:%20evil%0D%0Adata:%20injected%0D%0A%0D%0A HTTP/1.1\r\n" +
      "Host: x\r\n\r\n",
  );
  const head = await c.readHead();
  if (head.status === 200) {
    assert.equal(head.headers.get("content-type"), "text/event-stream");
    for (const [name] of head.headers) {
      assert.ok(
        ["content-type", "cache-control", "connection", "x-accel-buffering"].includes(name),
        name,
      );
    }
    assert.ok(hub.events.send("after", { channel: "le" }));
    const parser = new SseParser();
    // Read up to the event just sent (a replay notice may come first).
    while (parser.events.at(-1)?.data !== "after") {
      await c.readEvents(parser, parser.events.length + 1);
    }
    // A replay notice may quote the asked id, but only inside its data, JSON-encoded.
    for (const e of parser.events) {
      assert.notEqual(e.type, "evil");
      assert.notEqual(e.data, "injected");
    }
  } else {
    assert.equal(head.status, 400);
  }
});

Deno.test("a Last-Event-ID header with NUL or a bare CR is refused with 400", async () => {
  await using hub = startHub({ port: 0, hostname: "127.0.0.1", keepAlive: 0 });
  const port = hub.server.addr.port;
  for (const value of ["1\0event: evil", "1\revent: evil"]) {
    const raw = await exchange(
      port,
      `GET /events/le HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${value}\r\n\r\n`,
    );
    assert.equal(assertCleanHead(raw, PLAIN_HEADERS), 400);
  }
  assert.equal(hub.server.stats.sessions.opened, 0);
});

Deno.test("credentials carrying CR/LF (Basic, Bearer query and cookie, Digest username*) get 400 or 401 and no injected header", async () => {
  const users = new UserStore().addPassword("admin", "s3cret");
  const b64 = (s: string) => btoa(s);
  await using basicHub = startHub({
    port: 0,
    hostname: "127.0.0.1",
    keepAlive: 0,
    auth: subscriberAuth({ scheme: "basic", users }),
  });
  await using bearerHub = startHub({
    port: 0,
    hostname: "127.0.0.1",
    keepAlive: 0,
    auth: subscriberAuth({ scheme: "bearer", tokens: ["tok"] }),
  });
  await using digestHub = startHub({
    port: 0,
    hostname: "127.0.0.1",
    keepAlive: 0,
    auth: subscriberAuth({ scheme: "digest", users }),
  });
  const get = (extra: string, target = "/events/a") =>
    `GET ${target} HTTP/1.1\r\nHost: x\r\n${extra}Connection: close\r\n\r\n`;
  const cases: [number, string][] = [
    [
      basicHub.server.addr.port,
      get(`Authorization: Basic ${b64("admin\r\nX-Injected: 1:s3cret")}\r\n`),
    ],
    [
      basicHub.server.addr.port,
      get(`Authorization: Basic ${b64("admin:s3cret\r\nX-Injected: 1")}\r\n`),
    ],
    [bearerHub.server.addr.port, get("", "/events/a?access_token=tok%0D%0AX-Injected:%201")],
    [bearerHub.server.addr.port, get("Cookie: sluice_token=tok%0D%0AX-Injected:%201\r\n")],
    [
      digestHub.server.addr.port,
      get(
        `Authorization: Digest username*=UTF-8''admin%0D%0AX-Injected%3A%201, realm="sluice", ` +
          `nonce="n", uri="/events/a", response="00", qop=auth, nc=00000001, cnonce="c"\r\n`,
      ),
    ],
  ];
  for (const [port, req] of cases) {
    const raw = await exchange(port, req);
    const status = assertCleanHead(raw, AUTH_HEADERS);
    assert.ok(status === 400 || status === 401, `${status} for ${JSON.stringify(req)}`);
    assert.ok(!/X-Injected/i.test(raw.slice(0, raw.indexOf("\r\n\r\n"))));
  }
  for (const hub of [basicHub, bearerHub, digestHub]) {
    assert.equal(hub.server.stats.sessions.opened, 0);
  }
});

Deno.test("server: a handler echoing input into a header gets 500, never a split response", async () => {
  const errors: string[] = [];
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    keepAlive: 0,
    logger: (level, message) => {
      if (level === "error") errors.push(message);
    },
  });
  server.route("GET", "/echo", (req) => ({
    status: 200,
    headers: { "X-Echo": req.query.get("v") ?? "" },
    body: "echo\n",
  }));
  const raw = await exchange(
    server.addr.port,
    "GET /echo?v=a%0D%0ASet-Cookie:%20x=1%0D%0A%0D%0Ainjected HTTP/1.1\r\nHost: x\r\n\r\n",
  );
  assert.equal(assertCleanHead(raw, PLAIN_HEADERS), 500);
  assert.ok(!raw.includes("Set-Cookie") && !raw.includes("injected"));
  assert.deepEqual(errors, ["invalid response"]);
  // The 404 page lists the path and arguments in its body only.
  const nf = await exchange(
    server.addr.port,
    "GET /nowhere%0D%0AX-Injected:%201?a=%0D%0ASet-Cookie:%20x HTTP/1.1\r\nHost: x\r\n\r\n",
  );
  const status = assertCleanHead(nf, PLAIN_HEADERS);
  assert.ok(status === 404 || status === 400, String(status));
});

Deno.test("server: events with CR/LF in event or id throw before anything is sent", async () => {
  await using server = serve({ port: 0, hostname: "127.0.0.1", keepAlive: 0 });
  const events = server.eventSource("/events");
  const sub = await RawClient.stream(server.addr.port, "/events");
  try {
    assert.throws(() => events.send("x", { event: "a\nid: 1" }), { name: "InvalidEventError" });
    assert.throws(() => events.send("x", { event: "a\r" }), { name: "InvalidEventError" });
    assert.throws(() => events.send("x", { id: "1\nevent: evil" }), { name: "InvalidEventError" });
    assert.throws(() => events.send("x", { id: "1\0" }), { name: "InvalidEventError" });
    assert.throws(() => events.send("x", { retry: 1.5 }), { name: "InvalidEventError" });
    assert.ok(events.send("ok", { event: "good" }));
    await sub.client.readEvents(sub.parser, 1);
    assert.deepEqual(sub.parser.events.map((e) => [e.type, e.data]), [["good", "ok"]]);
  } finally {
    sub.client.close();
  }
});
