// A socket's first request is handled by callback in the turn its bytes come
// when they hold all of it (server/http/http_server.ts, #firstRequest); any
// other first request goes through the read loop. These tests hold both ways
// to the same answers over real sockets.
import assert from "node:assert/strict";
import { HttpServer } from "../../../server/http/http_server.ts";
import { DEFAULT_REQUEST_LIMITS } from "../../../server/http/request_parser.ts";
import type { RequestHandler } from "../../../server/http/request_result.ts";
import type { LogLevel } from "../../../server/server_options.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Logged {
  level: LogLevel;
  message: string;
  fields?: Record<string, unknown>;
}

function startServer(handler: RequestHandler): { http: HttpServer; logged: Logged[] } {
  const logged: Logged[] = [];
  const http = new HttpServer({
    limits: {
      ...DEFAULT_REQUEST_LIMITS,
      port: 0,
      hostname: "127.0.0.1",
      maxConnections: 64,
      headerTimeout: 5_000,
      maxPendingHeads: 32,
      idleTimeout: 5_000,
      retryAfter: 5,
      busyStatusText: "Service Unavailable",
    },
    handler,
    log: (level, message, fields) => logged.push({ level, message, fields }),
    adoptedSockets: () => 0,
  });
  http.start();
  return { http, logged };
}

async function stop(http: HttpServer): Promise<void> {
  http.stopAccepting();
  http.closeAll();
  await http.settled();
}

/** Reads until the peer closes (or `bytes` have come). */
async function readAll(conn: Deno.Conn, bytes = Infinity): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  while (text.length < bytes) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    text += decoder.decode(buf.subarray(0, n));
  }
  return text;
}

const noContent: RequestHandler = () => ({
  kind: "response",
  response: { status: 204 },
  headers: [],
  close: true,
});

Deno.test("a first request that comes whole is adopted with the bytes sent past it", async () => {
  const adopted = Promise.withResolvers<{ path: string; leftover: string }>();
  const taken: Deno.Conn[] = [];
  const { http } = startServer((req, conn) => ({
    kind: "adopted",
    adopt: (leftover) => {
      taken.push(conn);
      adopted.resolve({ path: req.path, leftover: decoder.decode(leftover) });
    },
  }));
  const client = await Deno.connect({ hostname: "127.0.0.1", port: http.addr.port });
  try {
    await client.write(encoder.encode("GET /s HTTP/1.1\r\nHost: x\r\n\r\nEXTRA"));
    assert.deepEqual(await adopted.promise, { path: "/s", leftover: "EXTRA" });
    assert.equal(http.stats.requests, 1);
  } finally {
    client.close();
    for (const conn of taken) conn.close();
    await stop(http);
  }
});

Deno.test("a first request split across reads is answered once it is whole", async () => {
  const { http } = startServer(noContent);
  const client = await Deno.connect({ hostname: "127.0.0.1", port: http.addr.port });
  try {
    await client.write(encoder.encode("GET / HTTP/1.1\r\nHo"));
    await new Promise((r) => setTimeout(r, 50));
    await client.write(encoder.encode("st: x\r\n\r\n"));
    assert.match(await readAll(client), /^HTTP\/1\.1 204 /);
  } finally {
    client.close();
    await stop(http);
  }
});

Deno.test("a first request with a body in the same read gets its body", async () => {
  let body = "";
  const { http } = startServer((req) => {
    body = decoder.decode(req.body);
    return { kind: "response", response: { status: 204 }, headers: [], close: true };
  });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: http.addr.port });
  try {
    await client.write(
      encoder.encode("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
    );
    assert.match(await readAll(client), /^HTTP\/1\.1 204 /);
    assert.equal(body, "hello");
  } finally {
    client.close();
    await stop(http);
  }
});

Deno.test("a handler that throws on a first request ends that socket alone, logged as an error", async () => {
  const { http, logged } = startServer((req) => {
    if (req.path === "/boom") throw new Error("handler boom");
    return { kind: "response", response: { status: 204 }, headers: [], close: true };
  });
  const first = await Deno.connect({ hostname: "127.0.0.1", port: http.addr.port });
  const second = await Deno.connect({ hostname: "127.0.0.1", port: http.addr.port });
  try {
    await first.write(encoder.encode("GET /boom HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.equal(await readAll(first), "", "closed without an answer");
    await second.write(encoder.encode("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.match(await readAll(second), /^HTTP\/1\.1 204 /);
    const failed = logged.find((l) => l.message === "connection failed");
    assert.equal(failed?.fields?.reason, "error");
    assert.match(String(failed?.fields?.error), /handler boom/);
  } finally {
    first.close();
    second.close();
    await stop(http);
  }
});

Deno.test("a keep-alive first request is answered and the socket reads the next one", async () => {
  const { http } = startServer(() => ({
    kind: "response",
    response: { status: 200, body: "ok" },
    headers: [],
    close: false,
  }));
  const client = await Deno.connect({ hostname: "127.0.0.1", port: http.addr.port });
  try {
    // Two requests in one write: the second is what the first leaves in the read.
    await client.write(
      encoder.encode("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    const text = await readAll(client, 2 * "HTTP/1.1 200 OK".length + 60);
    assert.equal(text.match(/HTTP\/1\.1 200 /g)?.length, 2, text);
    assert.equal(http.stats.requests, 2);
  } finally {
    client.close();
    await stop(http);
  }
});
