import assert from "node:assert/strict";
import { RoutePatternError, Router } from "../../../server/http/router.ts";

Deno.test("Router matches literal paths by method", () => {
  const r = new Router<string>();
  r.add("GET", "/a", "get-a");
  r.add("POST", "/a", "post-a");
  assert.deepEqual(r.match("GET", "/a"), { kind: "found", value: "get-a", params: {} });
  assert.deepEqual(r.match("POST", "/a"), { kind: "found", value: "post-a", params: {} });
});

Deno.test("Router captures :name segments", () => {
  const r = new Router<string>();
  r.add("GET", "/rest/:group/items/:n", "item");
  assert.deepEqual(r.match("GET", "/rest/g1/items/42"), {
    kind: "found",
    value: "item",
    params: { group: "g1", n: "42" },
  });
});

Deno.test("Router parameters match exactly one non-empty segment", () => {
  const r = new Router<string>();
  r.add("GET", "/events/:channel", "ch");
  assert.equal(r.match("GET", "/events/").kind, "not-found");
  assert.equal(r.match("GET", "/events").kind, "not-found");
  assert.equal(r.match("GET", "/events/a/b").kind, "not-found");
});

Deno.test("Router answers 404 for unknown paths and is exact about trailing slashes", () => {
  const r = new Router<string>();
  r.add("GET", "/a", "a");
  assert.deepEqual(r.match("GET", "/b"), { kind: "not-found" });
  assert.deepEqual(r.match("GET", "/a/"), { kind: "not-found" });
  assert.deepEqual(r.match("GET", "/A"), { kind: "not-found" });
});

Deno.test("Router answers 405 with the allowed methods when the path exists", () => {
  const r = new Router<string>();
  r.add("GET", "/a", "get");
  r.add("POST", "/a", "post");
  assert.deepEqual(r.match("DELETE", "/a"), { kind: "method-not-allowed", allow: ["GET", "POST"] });
});

Deno.test("Router serves HEAD with the GET route", () => {
  const r = new Router<string>();
  r.add("GET", "/a", "get");
  assert.deepEqual(r.match("HEAD", "/a"), { kind: "found", value: "get", params: {} });
  r.add("HEAD", "/b", "head-b");
  assert.equal(r.match("HEAD", "/b").kind, "found");
});

Deno.test("Router prefers the route registered first", () => {
  const r = new Router<string>();
  r.add("GET", "/events/stats", "stats");
  r.add("GET", "/events/:channel", "channel");
  assert.equal((r.match("GET", "/events/stats") as { value: string }).value, "stats");
  assert.equal((r.match("GET", "/events/x") as { value: string }).value, "channel");
});

Deno.test("Router falls through to a later pattern that has the method", () => {
  const r = new Router<string>();
  r.add("POST", "/events/:channel", "publish");
  r.add("GET", "/events/:channel", "subscribe");
  assert.equal((r.match("GET", "/events/x") as { value: string }).value, "subscribe");
});

Deno.test("Router refuses malformed patterns and duplicates with RoutePatternError", () => {
  const r = new Router<string>();
  assert.throws(() => r.add("GET", "no-slash", "x"), RoutePatternError);
  assert.throws(() => r.add("GET", "/a/:", "x"), RoutePatternError);
  assert.throws(() => r.add("GET", "/a/:1x", "x"), RoutePatternError);
  r.add("GET", "/a", "x");
  assert.throws(() => r.add("GET", "/a", "y"), /already registered/);
});

Deno.test("Router remove unregisters one method and then the whole pattern", () => {
  const r = new Router<string>();
  r.add("GET", "/a", "get");
  r.add("POST", "/a", "post");
  assert.equal(r.remove("GET", "/a"), true);
  assert.deepEqual(r.match("GET", "/a"), { kind: "method-not-allowed", allow: ["POST"] });
  assert.equal(r.remove("GET", "/a"), false);
  assert.equal(r.remove("POST", "/a"), true);
  assert.deepEqual(r.match("POST", "/a"), { kind: "not-found" });
  // The pattern can be registered again.
  r.add("GET", "/a", "again");
  assert.equal(r.match("GET", "/a").kind, "found");
});

Deno.test("a last :name* segment takes the rest of the path, joined with /", () => {
  const r = new Router<string>();
  r.add("GET", "/events/:channel*", "stream");
  assert.deepEqual(r.match("GET", "/events/a"), {
    kind: "found",
    value: "stream",
    params: { channel: "a" },
  });
  assert.deepEqual(r.match("GET", "/events/sensors/kitchen/temp"), {
    kind: "found",
    value: "stream",
    params: { channel: "sensors/kitchen/temp" },
  });
  assert.equal(r.match("GET", "/events/").kind, "not-found");
  assert.equal(r.match("GET", "/events").kind, "not-found");
  assert.throws(() => r.add("GET", "/x/:rest*/y", "bad"), RoutePatternError);
});
