import assert from "node:assert/strict";
import {
  encodeComment,
  encodeEvent,
  encodeRetry,
  formatEvent,
  InvalidEventError,
  validateEventFields,
} from "../../queue/encode_event.ts";
import { SseParser } from "../_util/sse_parser.ts";

const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);

function rejects(fn: () => unknown, field: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidEventError, `expected InvalidEventError, got ${err}`);
    assert.equal(err.name, "InvalidEventError");
    assert.equal(err.field, field);
    return true;
  });
}

Deno.test("encodeEvent writes one data line and a blank line", () => {
  assert.equal(text(encodeEvent("hello")), "data: hello\n\n");
});

Deno.test("encodeEvent splits data on CRLF, CR and LF into one data line each", () => {
  assert.equal(text(encodeEvent("a\r\nb\rc\nd")), "data: a\ndata: b\ndata: c\ndata: d\n\n");
  assert.equal(text(encodeEvent("a\n\nb")), "data: a\ndata: \ndata: b\n\n");
  assert.equal(text(encodeEvent("a\r\n")), "data: a\ndata: \n\n");
  assert.equal(text(encodeEvent("\n")), "data: \ndata: \n\n");
  // CR then LF is one break; LF then CR is two.
  assert.equal(text(encodeEvent("a\n\rb")), "data: a\ndata: \ndata: b\n\n");
});

Deno.test("encodeEvent sends empty data as one empty data line", () => {
  assert.equal(text(encodeEvent("")), "data: \n\n");
});

Deno.test("encodeEvent always puts one space after the colon", () => {
  // A leading space in the data survives: the parser strips only the first one.
  assert.equal(text(encodeEvent(" x")), "data:  x\n\n");
  assert.equal(text(encodeEvent(":x")), "data: :x\n\n");
  assert.equal(
    text(encodeEvent("x", { event: "e", id: "1", retry: 5 })),
    [
      "event: e",
      "id: 1",
      "retry: 5",
      "data: x",
      "",
      "",
    ].join("\n"),
  );
});

Deno.test("encodeEvent keeps id 0 and an empty id", () => {
  assert.equal(text(encodeEvent("x", { id: "0" })), "id: 0\ndata: x\n\n");
  assert.equal(text(encodeEvent("x", { id: "" })), "id: \ndata: x\n\n");
  assert.equal(text(encodeEvent("x", { retry: 0 })), "retry: 0\ndata: x\n\n");
});

Deno.test("encodeEvent encodes UTF-8", () => {
  const bytes = encodeEvent("h\u00e9 \u2713 \u{1f600}");
  assert.deepEqual(bytes, new TextEncoder().encode("data: h\u00e9 \u2713 \u{1f600}\n\n"));
});

Deno.test("encodeEvent rejects CR or LF in event with InvalidEventError field event", () => {
  for (const event of ["a\nb", "a\rb", "a\r\nb", "\n", "x\r"]) {
    rejects(() => encodeEvent("x", { event }), "event");
  }
});

Deno.test("encodeEvent rejects CR, LF or NUL in id with InvalidEventError field id", () => {
  for (const id of ["1\n", "1\r2", "\r\n", "a\0b", "\0"]) {
    rejects(() => encodeEvent("x", { id }), "id");
  }
});

Deno.test("encodeEvent accepts retry digits only", () => {
  for (const retry of [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 60, -0.5]) {
    rejects(() => encodeEvent("x", { retry }), "retry");
  }
  // A string smuggled past the types is refused too.
  rejects(() => encodeEvent("x", { retry: "5\ndata: evil" as unknown as number }), "retry");
  assert.equal(text(encodeEvent("x", { retry: 3000 })), "retry: 3000\ndata: x\n\n");
});

Deno.test("validateEventFields throws before anything is built", () => {
  rejects(() => validateEventFields({ event: "ok", id: "bad\n" }), "id");
  rejects(() => formatEvent("x", { event: "bad\r" }), "event");
  assert.doesNotThrow(() => validateEventFields({ event: "ok", id: "0", retry: 0 }));
});

Deno.test("encodeComment writes one comment line per line of text", () => {
  assert.equal(text(encodeComment("keep-alive")), ": keep-alive\n\n");
  assert.equal(text(encodeComment("a\r\nb\rc\nd")), ": a\n: b\n: c\n: d\n\n");
  assert.equal(text(encodeComment("")), ":\n\n");
  // A comment cannot inject a field.
  const p = new SseParser();
  p.feed(text(encodeComment("x\ndata: injected\n\nevent: y")));
  assert.equal(p.events.length, 0);
  assert.deepEqual(p.comments, ["x", "data: injected", "", "event: y"]);
});

Deno.test("encodeRetry writes a lone retry block and validates it", () => {
  assert.equal(text(encodeRetry(1500)), "retry: 1500\n\n");
  assert.equal(text(encodeRetry(0)), "retry: 0\n\n");
  rejects(() => encodeRetry(-5), "retry");
  rejects(() => encodeRetry(2.5), "retry");
  const p = new SseParser();
  p.feed(text(encodeRetry(1500)));
  assert.equal(p.retry, 1500);
  assert.equal(p.events.length, 0);
});

Deno.test("encoded events round-trip through an independent SSE parser", () => {
  const tricky = [
    "",
    " ",
    "  two leading spaces",
    "trailing space ",
    "plain",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "\r\r",
    "\r\n\r\n",
    "\n\r",
    "a\nb",
    "a\rb",
    "a\r\nb",
    "a\r\n\r\nb",
    "line1\nline2\rline3\r\nline4",
    ":not a comment",
    "data: nested",
    "event: fake\n\ndata: fake",
    "id: 99",
    "retry: 1",
    "\u00e9\u2713\u{1f600}",
    "\ufeffbom inside",
    "tab\there",
    "nul\0inside",
    "x".repeat(10_000),
    "ends with LF\n",
    "\nstarts with LF",
    "ends with CR\r",
  ];
  // Every event in one stream: one parser, fed in odd-sized chunks so that
  // CRLF pairs and UTF-8 sequences are split across feeds.
  const fields = (i: number) => ({
    event: i % 3 === 0 ? undefined : `type-${i}`,
    id: i % 2 === 0 ? String(i) : undefined,
  });
  let stream = "";
  tricky.forEach((data, i) => stream += text(encodeEvent(data, fields(i))));
  for (const chunkSize of [1, 2, 7, stream.length]) {
    const parser = new SseParser();
    for (let at = 0; at < stream.length; at += chunkSize) {
      parser.feed(stream.slice(at, at + chunkSize));
    }
    assert.equal(parser.events.length, tricky.length, `chunk size ${chunkSize}`);
    let lastId = "";
    tricky.forEach((data, i) => {
      const got = parser.events[i];
      // The browser joins data lines with LF: CR and CRLF become LF.
      assert.equal(got.data, data.replace(/\r\n|\r/g, "\n"), `event ${i}`);
      assert.equal(got.type, fields(i).event ?? "message");
      lastId = fields(i).id ?? lastId;
      assert.equal(got.lastEventId, lastId);
    });
  }
});

Deno.test("an event named with a field-like string stays one event of that type", () => {
  const p = new SseParser();
  p.feed(text(encodeEvent("d", { event: "data: x", id: "id: 7" })));
  assert.deepEqual(p.events, [{ type: "data: x", data: "d", lastEventId: "id: 7" }]);
});
