import assert from "node:assert/strict";
import { serve } from "../../server/server.ts";
import { encodeResponse } from "../../server/http/response_head.ts";
import { RawClient } from "../_util/raw_client.ts";
import type { HistoryReplay, HistoryStore } from "../../queue/history.ts";

const decoder = new TextDecoder();

Deno.test("serve answers a full session table with 503 and the busyStatusText reason", async () => {
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    maxClients: 1,
    busyStatusText: "Server Busy",
  });
  server.eventSource("/sse");
  const { client, head } = await RawClient.stream(server.addr.port, "/sse");
  await using _ = client;
  assert.equal(head.status, 200);
  await using second = await RawClient.connect(server.addr.port);
  await second.send("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n");
  const res = await second.readResponse();
  assert.equal(res.statusLine, "HTTP/1.1 503 Server Busy");
  assert.equal(res.headers.get("content-length"), "0");
});

Deno.test("serve keeps 'Service Unavailable' as the default 503 reason", async () => {
  await using server = serve({ port: 0, hostname: "127.0.0.1", maxClients: 1 });
  server.eventSource("/sse");
  const { client } = await RawClient.stream(server.addr.port, "/sse");
  await using _ = client;
  await using second = await RawClient.connect(server.addr.port);
  await second.send("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal((await second.readHead()).statusLine, "HTTP/1.1 503 Service Unavailable");
});

Deno.test("serve refuses a busyStatusText that would break the status line", () => {
  assert.throws(() => serve({ port: 0, busyStatusText: "Busy\r\nX-Injected: 1" }), {
    name: "TypeError",
    message:
      `busyStatusText must be tab, space or visible ASCII: received "Busy\\r\\nX-Injected: 1"`,
  });
});

Deno.test("a second request on a stream socket gets 400 Session Already Active", async () => {
  await using server = serve({ port: 0, hostname: "127.0.0.1" });
  server.eventSource("/sse");
  const { client } = await RawClient.stream(server.addr.port, "/sse");
  await using _ = client;
  await client.send("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n");
  await client.readUntil((b) => b.includes("HTTP/1.1 400 Session Already Active\r\n"));
  assert.ok(client.buffer.includes("Session Already Active\n"));
});

Deno.test("onNotFound answers requests that match no route", async () => {
  await using server = serve({ port: 0, hostname: "127.0.0.1" });
  server.route("GET", "/known", () => ({ status: 200, body: "known" }));
  server.onNotFound((req) => ({ status: 404, body: `Handle Not Found: ${req.path}` }));
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /unknown?a=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  const res = await c.readResponse();
  assert.equal(res.status, 404);
  assert.equal(res.body, "Handle Not Found: /unknown");
  await c.send("GET /known HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal((await c.readResponse()).body, "known");
});

Deno.test("HttpRequest.localAddr is the server's end of the connection", async () => {
  await using server = serve({ port: 0, hostname: "127.0.0.1" });
  server.route("GET", "/where", (req) => ({
    status: 200,
    body: `${req.localAddr?.hostname}:${req.localAddr?.port}`,
  }));
  await using c = await RawClient.connect(server.addr.port);
  await c.send("GET /where HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal((await c.readResponse()).body, `127.0.0.1:${server.addr.port}`);
});

Deno.test("encodeResponse uses statusText as the reason phrase and refuses CR/LF in it", () => {
  const bytes = encodeResponse(503, [], "", { statusText: "Server Busy", close: true });
  assert.ok(decoder.decode(bytes).startsWith("HTTP/1.1 503 Server Busy\r\nContent-Length: 0\r\n"));
  assert.throws(
    () => encodeResponse(400, [], "", { statusText: "a\nb" }),
    { name: "InvalidHeaderError" },
  );
});

Deno.test("an onListen that throws leaves no listener or timer behind", () => {
  let port = 0;
  assert.throws(
    () =>
      serve({
        port: 0,
        hostname: "127.0.0.1",
        onListen: (addr) => {
          port = addr.port;
          throw new Error("boom");
        },
      }),
    { message: "boom" },
  );
  // The port is free again (the test sanitizers also fail on a leaked timer or listener).
  const again = Deno.listen({ port, hostname: "127.0.0.1" });
  again.close();
});

Deno.test("a history store whose replay is unusable ends that stream only", async () => {
  const logs: string[] = [];
  const store: HistoryStore = {
    append: (_channel, event) => Promise.resolve({ id: event.id ?? "1", bytes: new Uint8Array() }),
    // Not a replay: its events are missing.
    since: () => Promise.resolve({ gap: false, earliest: null, latest: null } as HistoryReplay),
    close: () => {},
  };
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    historyStore: store,
    logger: (level, message) => logs.push(`${level} ${message}`),
  });
  server.eventSource("/sse");
  await using client = await RawClient.connect(server.addr.port);
  await client.send("GET /sse HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1\r\n\r\n");
  assert.equal(await client.readToEnd(), ""); // Closed without a head.
  assert.ok(logs.includes("error stream replay failed"), logs.join("\n"));
  assert.equal(server.stats.sessions.open, 0);
});
