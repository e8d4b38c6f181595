import assert from "node:assert/strict";
import { HttpError } from "../../../server/http/http_error.ts";
import { parsePublishRequest } from "../../../server/hub/publish_api.ts";
import type { HttpRequest } from "../../../server/http/types.ts";

const encoder = new TextEncoder();

function post(
  body: string | Uint8Array,
  contentType: string | undefined,
  target = "/events/news",
): HttpRequest {
  const url = new URL(target, "http://127.0.0.1");
  const headers = new Map<string, string>();
  if (contentType !== undefined) headers.set("content-type", contentType);
  return {
    method: "POST",
    target,
    path: url.pathname,
    query: url.searchParams,
    version: "1.1",
    headers,
    body: typeof body === "string" ? encoder.encode(body) : body,
    params: { channel: "news" },
    remoteAddr: { hostname: "127.0.0.1", port: 40000 },
    secure: false,
  };
}

function refusal(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HttpError, `expected HttpError, got ${err}`);
    assert.equal(err.close, false, "publish errors keep the connection");
    return err;
  }
  assert.fail("expected an HttpError");
}

Deno.test("publish API takes a text/plain body as data with ?event= and ?id=", () => {
  const ev = parsePublishRequest(
    post("line 1\nline 2", "text/plain; charset=utf-8", "/events/news?event=greeting&id=7"),
  );
  assert.deepEqual({ ...ev }, { data: "line 1\nline 2", event: "greeting", id: "7" });
});

Deno.test("publish API treats a body without Content-Type as text", () => {
  assert.equal(parsePublishRequest(post("hello", undefined)).data, "hello");
});

Deno.test("publish API reads data, event, id and retry from a JSON body", () => {
  const ev = parsePublishRequest(
    post('{"data":"hi","event":"e","id":"42","retry":1500}', "application/json"),
  );
  assert.deepEqual(ev, { data: "hi", event: "e", id: "42", retry: 1500 });
});

Deno.test("publish API serializes non-string JSON data as JSON text", () => {
  const body = '{"data":{"t":21.5,"ok":true,"list":[1,2]}}';
  assert.equal(
    parsePublishRequest(post(body, "application/json; charset=utf-8")).data,
    '{"t":21.5,"ok":true,"list":[1,2]}',
  );
  assert.equal(parsePublishRequest(post('{"data":3}', "application/json")).data, "3");
  assert.equal(parsePublishRequest(post('{"data":null}', "application/json")).data, "null");
});

Deno.test("publish API answers 400 for bad JSON and bad JSON shapes", () => {
  for (
    const body of [
      "{",
      "[1]",
      '"x"',
      "{}",
      '{"data":"x","evnt":"typo"}',
      '{"data":"x","event":5}',
      '{"data":"x","id":5}',
      '{"data":"x","retry":-1}',
      '{"data":"x","retry":1.5}',
    ]
  ) {
    assert.equal(
      refusal(() => parsePublishRequest(post(body, "application/json"))).status,
      400,
      body,
    );
  }
});

Deno.test("publish API answers 400 for CR, LF or NUL in event names and ids", () => {
  for (
    const target of [
      "/events/news?event=a%0Db",
      "/events/news?event=a%0Ab",
      "/events/news?event=a%00b",
      "/events/news?id=1%0A2",
      "/events/news?id=1%0D2",
      "/events/news?id=1%002",
    ]
  ) {
    assert.equal(refusal(() => parsePublishRequest(post("x", "text/plain", target))).status, 400);
  }
  const json = '{"data":"x","id":"a\\u0000b"}';
  assert.equal(refusal(() => parsePublishRequest(post(json, "application/json"))).status, 400);
});

Deno.test("publish API refuses event and id in the query with a JSON body", () => {
  const req = post('{"data":"x"}', "application/json", "/events/news?event=e");
  assert.equal(refusal(() => parsePublishRequest(req)).status, 400);
});

Deno.test("publish API answers 400 for a body that is not UTF-8", () => {
  const req = post(new Uint8Array([0x68, 0xff, 0x69]), "text/plain");
  assert.equal(refusal(() => parsePublishRequest(req)).status, 400);
});

Deno.test("publish API takes a form-encoded body (curl's default) as raw text", () => {
  const req = post("a=b&c\nd", "application/x-www-form-urlencoded");
  assert.equal(parsePublishRequest(req).data, "a=b&c\nd");
});

Deno.test("publish API answers 415 for other media types and charsets", () => {
  for (
    const type of [
      "application/octet-stream",
      "text/html",
      "text/plain; charset=iso-8859-1",
    ]
  ) {
    assert.equal(refusal(() => parsePublishRequest(post("x", type))).status, 415, type);
  }
});

Deno.test("publish API answers 413 over maxEventBytes and accepts exactly the limit", () => {
  assert.equal(
    parsePublishRequest(post("x".repeat(16), "text/plain"), { maxEventBytes: 16 }).data.length,
    16,
  );
  const err = refusal(() =>
    parsePublishRequest(post("x".repeat(17), "text/plain"), { maxEventBytes: 16 })
  );
  assert.equal(err.status, 413);
  assert.match(err.message, /16 bytes/);
});
