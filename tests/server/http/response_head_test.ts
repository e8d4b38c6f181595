import assert from "node:assert/strict";
import {
  encodeResponse,
  headerPairs,
  InvalidHeaderError,
  STATUS_TEXT,
} from "../../../server/http/response_head.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("encodeResponse builds status line, headers, length and body in one buffer", () => {
  const out = text(encodeResponse(200, [["Content-Type", "text/plain"]], "hi\n", { close: false }));
  assert.equal(
    out,
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n" +
      "Connection: keep-alive\r\n\r\nhi\n",
  );
});

Deno.test("encodeResponse says Connection: close when asked", () => {
  const out = text(encodeResponse(400, [], "bad\n", { close: true }));
  assert.ok(out.startsWith("HTTP/1.1 400 Bad Request\r\n"));
  assert.ok(out.includes("\r\nConnection: close\r\n\r\n"));
});

Deno.test("encodeResponse counts the body in bytes, not characters", () => {
  const out = encodeResponse(200, [], "\u2713", {});
  assert.ok(text(out).includes("Content-Length: 3\r\n"));
  assert.deepEqual(out.subarray(out.length - 3), new Uint8Array([0xe2, 0x9c, 0x93]));
});

Deno.test("encodeResponse with headOnly keeps the length but sends no body", () => {
  const out = text(encodeResponse(200, [], "hello", { headOnly: true }));
  assert.ok(out.includes("Content-Length: 5\r\n"));
  assert.ok(out.endsWith("\r\n\r\n"));
});

Deno.test("encodeResponse gives 503 an exact status line and Content-Length: 0", () => {
  const out = text(encodeResponse(503, [["Retry-After", "5"]], "", { close: true }));
  assert.equal(
    out,
    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n" +
      "Connection: close\r\n\r\n",
  );
});

Deno.test("encodeResponse sends no Content-Length on 204 and 304", () => {
  assert.ok(!text(encodeResponse(204, [])).includes("Content-Length"));
  assert.ok(!text(encodeResponse(304, [])).includes("Content-Length"));
});

Deno.test("every status Sluice sends has a reason phrase", () => {
  for (const s of [200, 400, 404, 405, 408, 411, 413, 414, 431, 501, 503, 505]) {
    assert.ok(STATUS_TEXT[s], String(s));
    assert.ok(text(encodeResponse(s, [])).startsWith(`HTTP/1.1 ${s} ${STATUS_TEXT[s]}\r\n`));
  }
});

Deno.test("headerPairs accepts records and pair lists of valid headers", () => {
  assert.deepEqual(headerPairs({ "X-A": "1", "Content-Type": "text/plain; charset=utf-8" }), [
    ["X-A", "1"],
    ["Content-Type", "text/plain; charset=utf-8"],
  ]);
  assert.deepEqual(headerPairs([["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]]), [
    ["Set-Cookie", "a=1"],
    ["Set-Cookie", "b=2"],
  ]);
  assert.deepEqual(headerPairs(undefined), []);
});

Deno.test("headerPairs refuses header injection through values with CR, LF or NUL", () => {
  for (const value of ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\0b", "\r\n\r\n<html>"]) {
    assert.throws(() => headerPairs({ "X-A": value }), InvalidHeaderError, JSON.stringify(value));
    assert.throws(() => headerPairs([["X-A", value]]), InvalidHeaderError);
  }
});

Deno.test("headerPairs refuses header names that are not tokens", () => {
  for (const name of ["", "X A", "X:A", "X-A\r\nEvil", "X(A)", "\u00e9", "X\0"]) {
    assert.throws(
      () => headerPairs({ [name]: "v" }),
      (err: unknown) => err instanceof InvalidHeaderError && err.name === "InvalidHeaderError",
      JSON.stringify(name),
    );
  }
});
