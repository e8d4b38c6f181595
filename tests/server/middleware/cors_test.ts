import assert from "node:assert/strict";
import { cors } from "../../../server/middleware/cors.ts";
import { headerValues, makeRequest } from "./_auth_request.ts";

const APP = "https://app.example";

async function call(
  mw: ReturnType<typeof cors>,
  init: { method?: string; headers?: Record<string, string> },
) {
  const pushed: [string, string][] = [];
  const res = await mw(makeRequest(init), pushed);
  return { res, pushed };
}

const preflight = (origin: string) => ({
  method: "OPTIONS",
  headers: {
    origin,
    "access-control-request-method": "GET",
    "access-control-request-headers": "last-event-id",
  },
});

Deno.test("cors pushes Allow-Origin and Vary for an allowed origin and lets it pass", async () => {
  const mw = cors({ origins: [APP, "http://localhost:3000"] });
  const { res, pushed } = await call(mw, { headers: { origin: APP } });
  assert.equal(res, undefined);
  assert.deepEqual(pushed, [["Access-Control-Allow-Origin", APP], ["Vary", "Origin"]]);
});

Deno.test("cors adds Allow-Credentials and Expose-Headers when configured", async () => {
  const mw = cors({ origins: [APP], credentials: true, exposeHeaders: ["X-Sluice-Id"] });
  const { res, pushed } = await call(mw, { headers: { origin: APP } });
  assert.equal(res, undefined);
  assert.deepEqual(headerValues(pushed, "access-control-allow-origin"), [APP]);
  assert.deepEqual(headerValues(pushed, "access-control-allow-credentials"), ["true"]);
  assert.deepEqual(headerValues(pushed, "access-control-expose-headers"), ["X-Sluice-Id"]);
});

Deno.test("cors gives a disallowed origin no CORS headers and lets the request pass", async () => {
  const mw = cors({ origins: [APP], credentials: true });
  const { res, pushed } = await call(mw, { headers: { origin: "https://evil.example" } });
  assert.equal(res, undefined);
  assert.deepEqual(headerValues(pushed, "access-control-allow-origin"), []);
  assert.deepEqual(headerValues(pushed, "access-control-allow-credentials"), []);
  assert.deepEqual(headerValues(pushed, "vary"), ["Origin"]);
  // Origins match exactly: no prefix or suffix tricks.
  for (const origin of [APP + ".evil.example", "http://app.example", "null"]) {
    const r = await call(mw, { headers: { origin } });
    assert.deepEqual(headerValues(r.pushed, "access-control-allow-origin"), [], origin);
  }
});

Deno.test("cors without an Origin header adds only Vary", async () => {
  const { res, pushed } = await call(cors({ origins: [APP] }), {});
  assert.equal(res, undefined);
  assert.deepEqual(pushed, [["Vary", "Origin"]]);
});

Deno.test("cors with * answers any origin with a literal * and no Vary", async () => {
  const mw = cors({ origins: ["*"] });
  const { res, pushed } = await call(mw, { headers: { origin: "https://any.example" } });
  assert.equal(res, undefined);
  assert.deepEqual(pushed, [["Access-Control-Allow-Origin", "*"]]);
});

Deno.test("cors answers a preflight from an allowed origin with 204 and the allow headers", async () => {
  const mw = cors({ origins: [APP], credentials: true, maxAge: 600 });
  const { res, pushed } = await call(mw, preflight(APP));
  assert.equal(res?.status, 204);
  assert.deepEqual(pushed, [], "a preflight answer carries its own headers");
  const h = res.headers;
  assert.deepEqual(headerValues(h, "access-control-allow-origin"), [APP]);
  assert.deepEqual(headerValues(h, "access-control-allow-credentials"), ["true"]);
  assert.deepEqual(headerValues(h, "access-control-allow-methods"), ["GET, POST, OPTIONS"]);
  assert.deepEqual(headerValues(h, "access-control-allow-headers"), [
    "Last-Event-ID, Content-Type, Authorization, Cache-Control",
  ]);
  assert.deepEqual(headerValues(h, "access-control-max-age"), ["600"]);
  assert.deepEqual(headerValues(h, "vary"), ["Origin"]);
});

Deno.test("cors uses custom methods and headers and omits Max-Age by default", async () => {
  const mw = cors({ origins: [APP], methods: ["GET"], allowHeaders: ["X-A"] });
  const { res } = await call(mw, preflight(APP));
  assert.equal(res?.status, 204);
  assert.deepEqual(headerValues(res.headers, "access-control-allow-methods"), ["GET"]);
  assert.deepEqual(headerValues(res.headers, "access-control-allow-headers"), ["X-A"]);
  assert.deepEqual(headerValues(res.headers, "access-control-max-age"), []);
  assert.deepEqual(headerValues(res.headers, "access-control-allow-credentials"), []);
});

Deno.test("cors answers a preflight from a disallowed origin with 403 and no allow headers", async () => {
  const mw = cors({ origins: [APP] });
  const { res, pushed } = await call(mw, preflight("https://evil.example"));
  assert.equal(res?.status, 403);
  assert.deepEqual(headerValues(res.headers, "access-control-allow-origin"), []);
  assert.deepEqual(headerValues(res.headers, "access-control-allow-methods"), []);
  assert.deepEqual(pushed, []);
});

Deno.test("cors lets an OPTIONS request without Access-Control-Request-Method pass", async () => {
  const mw = cors({ origins: [APP] });
  const { res, pushed } = await call(mw, { method: "OPTIONS", headers: { origin: APP } });
  assert.equal(res, undefined);
  assert.deepEqual(headerValues(pushed, "access-control-allow-origin"), [APP]);
});

Deno.test("cors normalises configured origins", async () => {
  const mw = cors({ origins: ["HTTPS://App.Example:443/"] });
  const { pushed } = await call(mw, { headers: { origin: APP } });
  assert.deepEqual(headerValues(pushed, "access-control-allow-origin"), [APP]);
});

Deno.test("cors refuses * with credentials at construction", () => {
  assert.throws(
    () => cors({ origins: ["*"], credentials: true }),
    /cannot be combined with credentials/,
  );
  assert.throws(() => cors({ origins: [APP, "*"], credentials: true }), TypeError);
});

Deno.test("cors validates its other options at construction", () => {
  assert.throws(() => cors({ origins: [] }), /origins must be a non-empty array/);
  for (
    const bad of ["app.example", "https://app.example/path", "https://a.example?x", "null", ""]
  ) {
    assert.throws(() => cors({ origins: [bad] }), TypeError, bad);
  }
  assert.throws(
    () => cors({ origins: [APP], maxAge: -1 }),
    /maxAge must be a non-negative integer/,
  );
  assert.throws(() => cors({ origins: [APP], methods: ["GET POST"] }), TypeError);
  assert.throws(() => cors({ origins: [APP], allowHeaders: ["X-A\r\n"] }), TypeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => cors({ origins: [APP], credentials: "yes" as any }), TypeError);
});
