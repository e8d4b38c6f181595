/**
 * Honest connection headers: every answer of the hub says either
 * `Connection: keep-alive`, and then answers a second request on the same
 * socket, or `Connection: close`, and then closes it (EOF) with nothing after
 * the answer's declared body. A client that believes a `keep-alive` and
 * reuses a socket the server is about to close loses its next request (as
 * h11 and every pooling client would).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Hub } from "../../server/hub/hub.ts";
import { RawClient } from "../_util/raw_client.ts";
import { subscriberAuth } from "../../server/hub/subscriber_auth.ts";
import { testHub, until, within } from "./_hub.ts";

const FOLLOW_UP = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/** One request: its raw bytes, and whether the answer has no body (HEAD). */
interface Case {
  name: string;
  raw: string;
  status: number;
  headOnly?: boolean;
}

function req(method: string, target: string, headers: Record<string, string> = {}, body = "") {
  let head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (body !== "" || method === "POST") head += `Content-Length: ${body.length}\r\n`;
  return head + "\r\n" + body;
}

/**
 * Sends one request on a fresh socket, reads the answer, and checks that its
 * `Connection` header holds: a second request is answered after keep-alive,
 * the socket ends after close.
 *
 * @returns The `Connection` value.
 */
async function checkHonest(port: number, c: Case): Promise<string> {
  await using client = await RawClient.connect(port);
  await client.send(c.raw);
  const head = await within(client.readHead(), `${c.name}: head`);
  assert.equal(head.status, c.status, `${c.name}: ${head.statusLine}`);
  const connection = head.headers.get("connection");
  assert.ok(
    connection === "keep-alive" || connection === "close",
    `${c.name}: Connection ${JSON.stringify(connection)}`,
  );
  const length = head.headers.get("content-length");
  const noBody = c.headOnly || head.status === 204 || head.status === 304;
  if (connection === "keep-alive") {
    assert.ok(noBody || length !== undefined, `${c.name}: keep-alive needs a framed body`);
    if (!noBody) {
      const len = Number(length);
      await within(
        client.readUntil((b) => new TextEncoder().encode(b).length >= len),
        `${c.name}: body`,
      );
      client.buffer = new TextDecoder().decode(new TextEncoder().encode(client.buffer).slice(len));
    }
    assert.equal(client.buffer, "", `${c.name}: bytes past the declared body`);
    await client.send(FOLLOW_UP);
    const next = await within(client.readResponse(), `${c.name}: second request answered`)
      .catch((err) => {
        throw new Error(`${c.name}: said keep-alive, then ${err}`);
      });
    assert.equal(next.status, 200, `${c.name}: second request`);
    JSON.parse(next.body);
  } else {
    const rest = await within(client.readToEnd(), `${c.name}: EOF after Connection: close`);
    if (noBody) {
      assert.equal(rest, "", `${c.name}: a body after a HEAD or ${head.status} answer`);
    } else if (length !== undefined) {
      assert.equal(
        new TextEncoder().encode(rest).length,
        Number(length),
        `${c.name}: bytes past the declared body`,
      );
    }
    assert.ok(client.eof, `${c.name}: closed`);
  }
  return connection;
}

async function runCases(hub: Hub, cases: Case[]): Promise<Map<string, string>> {
  const port = hub.server.addr.port;
  const seen = new Map<string, string>();
  for (const c of cases) seen.set(c.name, await checkHonest(port, c));
  return seen;
}

Deno.test("every hub answer says keep-alive and keeps the socket, or says close and closes it", async () => {
  await using hub = testHub({ maxEventBytes: 64, maxClients: 1 });
  const big = "x".repeat(65);
  const seen = await runCases(hub, [
    { name: "GET /status", raw: req("GET", "/status"), status: 200 },
    { name: "GET /metrics", raw: req("GET", "/metrics"), status: 200 },
    { name: "GET /", raw: req("GET", "/"), status: 200 },
    { name: "GET /app.js", raw: req("GET", "/app.js"), status: 200 },
    { name: "404", raw: req("GET", "/nothing/here"), status: 404 },
    { name: "405", raw: req("DELETE", "/status"), status: 405 },
    { name: "OPTIONS", raw: req("OPTIONS", "/status"), status: 204 },
    { name: "HEAD stream", raw: req("HEAD", "/events/news"), status: 200, headOnly: true },
    { name: "HEAD /status", raw: req("HEAD", "/status"), status: 200, headOnly: true },
    {
      name: "POST publish",
      raw: req("POST", "/events/news", { "Content-Type": "text/plain" }, "hello"),
      status: 202,
    },
    {
      name: "POST bad channel",
      raw: req("POST", "/events/a%20b", { "Content-Type": "text/plain" }, "x"),
      status: 400,
    },
    {
      name: "POST oversized",
      raw: req("POST", "/events/news", { "Content-Type": "text/plain" }, big),
      status: 413,
    },
    {
      name: "POST past maxBodyBytes, body unread",
      raw: req("POST", "/events/news", {
        "Content-Type": "text/plain",
        "Content-Length": String(2 * 1024 * 1024),
      }).replace(/Content-Length: 0\r\n/, ""),
      status: 413,
    },
    {
      name: "POST wrong content type",
      raw: req("POST", "/events/news", { "Content-Type": "image/png" }, "x"),
      status: 415,
    },
    { name: "GET stream bad channel", raw: req("GET", "/events/a%20b"), status: 400 },
    { name: "GET multi-channel none", raw: req("GET", "/events"), status: 400 },
    { name: "malformed request line", raw: "GARBAGE\r\n\r\n", status: 400 },
    { name: "HTTP/1.0 request", raw: "GET /status HTTP/1.0\r\n\r\n", status: 200 },
    {
      name: "Connection: close request",
      raw: req("GET", "/status", { Connection: "close" }),
      status: 200,
    },
    {
      name: "HTTP/1.0 keep-alive request",
      raw: "GET /status HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      status: 200,
    },
    { name: "GET with a body", raw: req("GET", "/status", {}, "ignored"), status: 200 },
    { name: "unknown method", raw: req("BREW", "/status"), status: 501 },
    { name: "HTTP/2.0", raw: "GET /status HTTP/2.0\r\nHost: x\r\n\r\n", status: 505 },
    { name: "URI too long", raw: req("GET", "/" + "a".repeat(9000)), status: 414 },
    {
      name: "header too large",
      raw: req("GET", "/status", { "X-Big": "a".repeat(17_000) }),
      status: 431,
    },
    {
      name: "chunked body",
      raw: req("POST", "/events/news", { "Transfer-Encoding": "chunked" }).replace(
        /Content-Length: 0\r\n/,
        "",
      ) + "1\r\nx\r\n0\r\n\r\n",
      status: 411,
    },
  ]);
  // Errors the parser finds, a body left unread, a stream HEAD and a client that asked
  // for close end the connection; everything the handlers answer keeps it.
  const closing = new Set([
    "HEAD stream",
    "POST past maxBodyBytes, body unread",
    "malformed request line",
    "HTTP/1.0 request",
    "Connection: close request",
    "unknown method",
    "HTTP/2.0",
    "URI too long",
    "header too large",
    "chunked body",
  ]);
  for (const [name, connection] of seen) {
    assert.equal(connection, closing.has(name) ? "close" : "keep-alive", name);
  }

  // A stream refused by a full table (maxClients 1).
  const port = hub.server.addr.port;
  const holder = await RawClient.stream(port, "/events/news");
  try {
    assert.equal(holder.head.status, 200);
    await until(() => hub.server.sessions.size === 1, "the table full");
    const full = await runCases(hub, [
      { name: "stream, table full", raw: req("GET", "/events/news"), status: 503 },
    ]);
    assert.equal(full.get("stream, table full"), "close");
  } finally {
    holder.client.close();
  }
});

Deno.test("busy retry: the soft-rejected stream says close and closes", async () => {
  await using hub = testHub({ maxClients: 1, busy: "retry" });
  const port = hub.server.addr.port;
  const holder = await RawClient.stream(port, "/events/news");
  try {
    await until(() => hub.server.sessions.size === 1, "the table full");
    const seen = await runCases(hub, [
      { name: "stream, soft-rejected", raw: req("GET", "/events/news"), status: 200 },
    ]);
    assert.equal(seen.get("stream, soft-rejected"), "close");
  } finally {
    holder.client.close();
  }
});

Deno.test("with subscriber auth and CORS: refusals are honest too, and a HEAD answer has no body", async () => {
  await using hub = testHub({
    auth: subscriberAuth({ scheme: "bearer", tokens: ["t0ken"] }),
    cors: { origins: ["https://app.example"] },
  });
  const seen = await runCases(hub, [
    { name: "GET stream, no token", raw: req("GET", "/events/news"), status: 401 },
    {
      name: "HEAD stream, no token",
      raw: req("HEAD", "/events/news"),
      status: 401,
      headOnly: true,
    },
    { name: "GET /, no token", raw: req("GET", "/"), status: 401 },
    { name: "HEAD /, no token", raw: req("HEAD", "/"), status: 401, headOnly: true },
    {
      name: "preflight, allowed origin",
      raw: req("OPTIONS", "/events/news", {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "GET",
      }),
      status: 204,
    },
    {
      name: "preflight, other origin",
      raw: req("OPTIONS", "/events/news", {
        Origin: "https://evil.example",
        "Access-Control-Request-Method": "GET",
      }),
      status: 403,
    },
    {
      name: "HEAD stream, token",
      raw: req("HEAD", "/events/news", { Authorization: "Bearer t0ken" }),
      status: 200,
      headOnly: true,
    },
  ]);
  assert.deepEqual(Object.fromEntries(seen), {
    "GET stream, no token": "close",
    "HEAD stream, no token": "close",
    "GET /, no token": "keep-alive",
    "HEAD /, no token": "keep-alive",
    "preflight, allowed origin": "keep-alive",
    "preflight, other origin": "keep-alive",
    "HEAD stream, token": "close",
  });
});
