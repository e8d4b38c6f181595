import assert from "node:assert/strict";
import { HttpError } from "../../../server/http/http_error.ts";
import {
  DEFAULT_REQUEST_LIMITS,
  parseRequestHead,
  type RequestHead,
  type RequestLimits,
} from "../../../server/http/request_parser.ts";

const encoder = new TextEncoder();

function parse(text: string | Uint8Array, limits: Partial<RequestLimits> = {}) {
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  return parseRequestHead(bytes, { ...DEFAULT_REQUEST_LIMITS, ...limits });
}

function ok(text: string, limits: Partial<RequestLimits> = {}): RequestHead {
  const head = parse(text, limits);
  assert.ok(head !== undefined, "expected a complete head");
  return head;
}

function status(text: string | Uint8Array, limits: Partial<RequestLimits> = {}): number {
  try {
    parse(text, limits);
  } catch (err) {
    assert.ok(err instanceof HttpError, `expected HttpError, got ${err}`);
    return err.status;
  }
  assert.fail("expected the parser to throw");
}

const get = (headers: string) => `GET / HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;

Deno.test("parser reads method, target, path, query, version and headers", () => {
  const head = ok("GET /events/a?x=1&y=two HTTP/1.1\r\nHost: example\r\nX-A: 1\r\n\r\n");
  assert.equal(head.method, "GET");
  assert.equal(head.target, "/events/a?x=1&y=two");
  assert.equal(head.path, "/events/a");
  assert.equal(new URLSearchParams(head.rawQuery).get("x"), "1");
  assert.equal(new URLSearchParams(head.rawQuery).get("y"), "two");
  assert.equal(head.version, "1.1");
  assert.equal(head.headers.get("host"), "example");
  assert.equal(head.headers.get("x-a"), "1");
  assert.equal(head.contentLength, 0);
});

Deno.test("parser lower-cases header names and joins repeated fields with a comma", () => {
  const head = ok(get("Accept: a\r\nACCEPT: b\r\n"));
  assert.equal(head.headers.get("accept"), "a, b");
});

Deno.test("parser trims optional whitespace around header values", () => {
  const head = ok(get("X-A: \t spaced \t \r\nX-B:tight\r\n"));
  assert.equal(head.headers.get("x-a"), "spaced");
  assert.equal(head.headers.get("x-b"), "tight");
});

Deno.test("parser accepts bare LF line ends", () => {
  const head = ok("GET /a HTTP/1.1\nHost: x\n\n");
  assert.equal(head.path, "/a");
  assert.equal(head.headBytes, "GET /a HTTP/1.1\nHost: x\n\n".length);
});

Deno.test("parser returns undefined while the head is incomplete", () => {
  const full = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  for (let i = 0; i < full.length; i++) {
    assert.equal(parse(full.slice(0, i)), undefined, `prefix of ${i} bytes`);
  }
  assert.ok(parse(full) !== undefined);
});

Deno.test("parser reports headBytes so pipelined heads can be parsed one after another", () => {
  const first = "GET /one HTTP/1.1\r\nHost: x\r\n\r\n";
  const second = "POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
  const third = "GET /three HTTP/1.1\r\nHost: x\r\n\r\n";
  const bytes = encoder.encode(first + second + third);
  const h1 = parseRequestHead(bytes)!;
  assert.equal(h1.path, "/one");
  assert.equal(h1.headBytes, first.length);
  const rest = bytes.subarray(h1.headBytes + h1.contentLength);
  const h2 = parseRequestHead(rest)!;
  assert.equal(h2.path, "/two");
  assert.equal(h2.contentLength, 3);
  assert.equal(new TextDecoder().decode(rest.subarray(h2.headBytes, h2.headBytes + 3)), "abc");
  const h3 = parseRequestHead(rest.subarray(h2.headBytes + h2.contentLength))!;
  assert.equal(h3.path, "/three");
});

Deno.test("parser skips empty lines before the request line and counts them in headBytes", () => {
  const text = "\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const head = ok(text);
  assert.equal(head.path, "/a");
  assert.equal(head.headBytes, text.length);
});

Deno.test("parser answers 414 when the request line is over the limit", () => {
  const line = (n: number) => "GET /" + "a".repeat(n - "GET / HTTP/1.1".length) + " HTTP/1.1";
  assert.equal(line(8192).length, 8192);
  // Exactly at the limit is fine; one byte over is 414, complete or not.
  assert.equal(ok(line(8192) + "\r\nHost: x\r\n\r\n").target.length, 8192 - 13);
  assert.equal(status(line(8193) + "\r\nHost: x\r\n\r\n"), 414);
  assert.equal(status("GET /" + "a".repeat(9000)), 414);
  assert.equal(status("GET /" + "a".repeat(50), { maxRequestLine: 32 }), 414);
});

Deno.test("parser answers 431 when the head is over 16 KiB", () => {
  const filler = "X-Fill: " + "f".repeat(1000) + "\r\n";
  const big = get(filler.repeat(17));
  assert.ok(big.length > 16 * 1024);
  assert.equal(status(big), 431);
  // Incomplete but already too large: refused before the blank line arrives.
  assert.equal(status(big.slice(0, -2)), 431);
  // Just under the limit is accepted.
  const fits = get(filler.repeat(15));
  assert.ok(fits.length < 16 * 1024);
  assert.ok(parse(fits) !== undefined);
});

Deno.test("parser answers 431 for more than 100 header fields and accepts 100", () => {
  const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join("");
  // Host is one of the fields.
  assert.equal(ok(get(fields(99))).headers.size, 100);
  assert.equal(status(get(fields(100))), 431);
});

Deno.test("parser answers 400 for malformed request lines", () => {
  for (
    const line of [
      "GET",
      "GET /",
      "GET  / HTTP/1.1",
      "GET / HTTP/1.1 extra",
      " GET / HTTP/1.1",
      "GET / HTTP/1.1 ",
      "G(T / HTTP/1.1",
      "GET a HTTP/1.1",
      "GET /a\x01 HTTP/1.1",
      "GET /\xe9 HTTP/1.1",
      "GET /%zz HTTP/1.1",
      "GET /%00 HTTP/1.1",
      "GET /a%0d%0aX:1 HTTP/1.1",
      "GET http://[bad HTTP/1.1",
    ]
  ) {
    const bytes = new Uint8Array([...line].map((c) => c.charCodeAt(0)));
    const rest = encoder.encode("\r\nHost: x\r\n\r\n");
    const all = new Uint8Array(bytes.length + rest.length);
    all.set(bytes);
    all.set(rest, bytes.length);
    assert.equal(status(all), 400, JSON.stringify(line));
  }
});

Deno.test("parser answers 400 for malformed header lines", () => {
  const cases: Record<string, string> = {
    "no colon": "NoColon\r\n",
    "empty name": ": value\r\n",
    "space before colon": "X-A : v\r\n",
    "space inside name": "X A: v\r\n",
    "folded line": "X-A: v\r\n continued\r\n",
    "folded with tab": "X-A: v\r\n\tcontinued\r\n",
    "non-token name": "X(A): v\r\n",
    "bare CR in value": "X-A: a\rb\r\n",
    "NUL in value": "X-A: a\0b\r\n",
    "NUL in name": "X\0A: v\r\n",
    "control char in value": "X-A: a\x01b\r\n",
    "DEL in value": "X-A: a\x7fb\r\n",
    "control char at the end of a value": "X-A: ab\x0b\r\n",
    "control char at the start of a value": "X-A: \x0cab\r\n",
  };
  for (const [what, line] of Object.entries(cases)) {
    assert.equal(status(get(line)), 400, what);
  }
});

Deno.test("parser answers 400 for a bare CR anywhere in the head", () => {
  assert.equal(status("GET / HTTP/1.1\rHost: x\r\n\r\n"), 400);
  assert.equal(status("\rGET / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
});

Deno.test("parser answers 505 for HTTP/2.0 and other major versions", () => {
  assert.equal(status("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
  assert.equal(status("GET / HTTP/3.0\r\nHost: x\r\n\r\n"), 505);
  assert.equal(status("GET / HTTP/0.9\r\nHost: x\r\n\r\n"), 505);
});

Deno.test("parser answers 400 for a malformed version", () => {
  for (const v of ["HTTP/1", "HTTP/1.10", "http/1.1", "HTTP/1.x", "HTTPS/1.1", "HTTP/11"]) {
    assert.equal(status(`GET / ${v}\r\nHost: x\r\n\r\n`), 400, v);
  }
});

Deno.test("parser answers 501 for an unknown method token", () => {
  assert.equal(status("BREW / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  assert.equal(status("get / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  for (const m of ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
    assert.equal(ok(`${m} / HTTP/1.1\r\nHost: x\r\n\r\n`).method, m);
  }
});

Deno.test("parser answers 411 for chunked request bodies", () => {
  assert.equal(status(get("Transfer-Encoding: chunked\r\n")), 411);
  assert.equal(status(get("Transfer-Encoding: gzip, chunked\r\n")), 411);
});

Deno.test("parser answers 400 for Transfer-Encoding with Content-Length", () => {
  assert.equal(status(get("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n")), 400);
});

Deno.test("parser answers 413 when Content-Length is over the body cap", () => {
  assert.equal(status(get("Content-Length: 1048577\r\n")), 413);
  assert.equal(ok(get("Content-Length: 1048576\r\n")).contentLength, 1048576);
  assert.equal(status(get("Content-Length: 11\r\n"), { maxBodyBytes: 10 }), 413);
});

Deno.test("parser answers 400 for conflicting Content-Length and accepts equal repeats", () => {
  assert.equal(status(get("Content-Length: 5\r\nContent-Length: 6\r\n")), 400);
  assert.equal(ok(get("Content-Length: 5\r\nContent-Length: 5\r\n")).contentLength, 5);
});

Deno.test("parser answers 400 for an invalid Content-Length", () => {
  for (const v of ["-1", "abc", "1.5", "0x10", "5, 5", "+5", "", "1 2", "9999999999999999"]) {
    assert.equal(status(get(`Content-Length: ${v}\r\n`)), 400, JSON.stringify(v));
  }
});

Deno.test("parser answers 400 when an HTTP/1.1 request has no Host and accepts 1.0 without", () => {
  assert.equal(status("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), 400);
  assert.equal(ok("GET / HTTP/1.0\r\n\r\n").version, "1.0");
});

Deno.test("parser applies keep-alive rules of HTTP/1.0 and HTTP/1.1", () => {
  assert.equal(ok(get("")).keepAlive, true);
  assert.equal(ok(get("Connection: close\r\n")).keepAlive, false);
  assert.equal(ok(get("Connection: Close\r\n")).keepAlive, false);
  assert.equal(ok(get("Connection: upgrade, close\r\n")).keepAlive, false);
  assert.equal(ok(get("Connection: keep-alive\r\n")).keepAlive, true);
  assert.equal(ok("GET / HTTP/1.0\r\n\r\n").keepAlive, false);
  assert.equal(ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive, true);
  assert.equal(ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive, true);
  assert.equal(ok("GET / HTTP/1.0\r\nConnection: close\r\n\r\n").keepAlive, false);
  // A higher minor version is served as 1.1.
  assert.equal(ok("GET / HTTP/1.2\r\nHost: x\r\n\r\n").version, "1.1");
});

Deno.test("parser percent-decodes the path but not the query separators", () => {
  const head = ok("GET /a%20b/%E2%9C%93?q=a%26b&r=%20 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal(head.path, "/a b/\u2713");
  assert.equal(new URLSearchParams(head.rawQuery).get("q"), "a&b");
  assert.equal(new URLSearchParams(head.rawQuery).get("r"), " ");
  assert.equal(head.target, "/a%20b/%E2%9C%93?q=a%26b&r=%20");
});

Deno.test("parser accepts absolute-form targets and OPTIONS *", () => {
  const head = ok("GET http://example.com:8080/events/x?lastEventId=4 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal(head.path, "/events/x");
  assert.equal(new URLSearchParams(head.rawQuery).get("lastEventId"), "4");
  assert.equal(ok("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").path, "*");
  assert.equal(status("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
});

Deno.test("parser error messages are fixed text that never echoes request bytes", () => {
  const secret = "SECRET-" + "z".repeat(20);
  for (const text of [get(`X${secret} : v\r\n`), `BREW /${secret} HTTP/1.1\r\nHost: x\r\n\r\n`]) {
    try {
      parse(text);
      assert.fail("expected a throw");
    } catch (err) {
      assert.ok(err instanceof HttpError);
      assert.ok(!err.message.includes("SECRET"), err.message);
    }
  }
});

Deno.test("parser answers 400 to a request with two Host headers (RFC 9112 §3.2)", () => {
  const bytes = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  assert.throws(
    () => parseRequestHead(bytes, DEFAULT_REQUEST_LIMITS),
    (err: unknown) => err instanceof HttpError && err.status === 400,
  );
});
