import assert from "node:assert/strict";
import { encodeStreamHead } from "../../../server/stream/stream_head.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("encodeStreamHead is the exact SSE head, shared when there are no extras", () => {
  const head = text(encodeStreamHead());
  assert.equal(
    head,
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
      "Connection: keep-alive\r\nX-Accel-Buffering: no\r\n\r\n",
  );
  assert.equal(encodeStreamHead(), encodeStreamHead());
  const withCors = text(encodeStreamHead([["Access-Control-Allow-Origin", "*"]]));
  assert.ok(withCors.endsWith("X-Accel-Buffering: no\r\nAccess-Control-Allow-Origin: *\r\n\r\n"));
});

Deno.test("encodeStreamHead says Connection: close when the server closes after it", () => {
  const head = text(encodeStreamHead([], { close: true }));
  assert.ok(head.includes("\r\nConnection: close\r\n"));
  assert.ok(!head.includes("keep-alive"));
});
