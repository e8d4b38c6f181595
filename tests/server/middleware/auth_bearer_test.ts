import assert from "node:assert/strict";
import { bearerAuth } from "../../../server/middleware/auth_bearer.ts";
import type { HttpResponse } from "../../../server/http/types.ts";
import { headerValues, makeRequest } from "./_auth_request.ts";

const TOKEN = "s3cr3t-Token_1.2~x+y/z=";
const OTHER = "another-token";

async function call(
  mw: ReturnType<typeof bearerAuth>,
  init: { target?: string; headers?: Record<string, string> },
) {
  const req = makeRequest(init);
  const res = await mw(req, []);
  return { req, res };
}

function challenge(res: HttpResponse | undefined): string[] {
  return headerValues(res?.headers, "www-authenticate");
}

Deno.test("bearerAuth accepts a known token in the Authorization header", async () => {
  const mw = bearerAuth({ tokens: [OTHER, TOKEN] });
  const { req, res } = await call(mw, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res, undefined);
  assert.equal(req.user, "token-2", "plain tokens are named by position, never by value");
  const lower = await call(mw, { headers: { authorization: `bearer ${OTHER}` } });
  assert.equal(lower.res, undefined);
  assert.equal(lower.req.user, "token-1");
});

Deno.test("bearerAuth names a { name, token } entry by its name", async () => {
  const mw = bearerAuth({ tokens: [{ name: "dashboard", token: TOKEN }] });
  const { req, res } = await call(mw, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res, undefined);
  assert.equal(req.user, "dashboard");
});

Deno.test("bearerAuth answers a missing token with 401 and a Bearer challenge", async () => {
  const mw = bearerAuth({ tokens: [TOKEN], realm: "sluice" });
  const { req, res } = await call(mw, {});
  assert.equal(res?.status, 401);
  assert.deepEqual(challenge(res), ['Bearer realm="sluice"']);
  assert.equal(req.user, undefined);
  // Another scheme counts as no token.
  const basic = await call(mw, { headers: { authorization: "Basic YTpi" } });
  assert.equal(basic.res?.status, 401);
  assert.deepEqual(challenge(basic.res), ['Bearer realm="sluice"']);
});

Deno.test("bearerAuth answers a wrong token with 401 and error=invalid_token", async () => {
  const mw = bearerAuth({ tokens: [TOKEN] });
  for (const wrong of [OTHER, TOKEN.slice(0, -1), "x" + TOKEN]) {
    const { req, res } = await call(mw, { headers: { authorization: `Bearer ${wrong}` } });
    assert.equal(res?.status, 401);
    assert.deepEqual(challenge(res), ['Bearer realm="sluice", error="invalid_token"']);
    assert.equal(req.user, undefined);
  }
});

Deno.test("bearerAuth answers a malformed Authorization header with 400", async () => {
  const mw = bearerAuth({ tokens: [TOKEN] });
  for (const header of ["Bearer", "Bearer ", `Bearer ${TOKEN} extra`, "Bearer a,b", 'Bearer "x"']) {
    const { req, res } = await call(mw, { headers: { authorization: header } });
    assert.equal(res?.status, 400, header);
    assert.deepEqual(challenge(res), ['Bearer realm="sluice", error="invalid_request"']);
    assert.equal(req.user, undefined);
  }
});

Deno.test("bearerAuth takes the token from the access_token query parameter by default", async () => {
  const mw = bearerAuth({ tokens: [TOKEN] });
  const target = `/events/a?access_token=${encodeURIComponent(TOKEN)}`;
  const { req, res } = await call(mw, { target });
  assert.equal(res, undefined);
  assert.equal(req.user, "token-1");
  const wrong = await call(mw, { target: "/events/a?access_token=nope" });
  assert.equal(wrong.res?.status, 401);
  assert.deepEqual(challenge(wrong.res), ['Bearer realm="sluice", error="invalid_token"']);
  const empty = await call(mw, { target: "/events/a?access_token=" });
  assert.equal(empty.res?.status, 400);
});

Deno.test("bearerAuth uses a custom query parameter and ignores it when disabled", async () => {
  const custom = bearerAuth({ tokens: [TOKEN], queryParam: "t" });
  const t = `/e?t=${encodeURIComponent(TOKEN)}`;
  assert.equal((await call(custom, { target: t })).res, undefined);
  const off = bearerAuth({ tokens: [TOKEN], queryParam: null });
  const res = (await call(off, { target: `/e?access_token=${encodeURIComponent(TOKEN)}` })).res;
  assert.equal(res?.status, 401);
  assert.deepEqual(challenge(res), ['Bearer realm="sluice"']);
});

Deno.test("bearerAuth takes the token from the configured cookie only", async () => {
  const mw = bearerAuth({ tokens: [TOKEN], cookie: "sluice_token" });
  const ok = await call(mw, { headers: { cookie: `theme=dark; sluice_token=${TOKEN}; x=1` } });
  assert.equal(ok.res, undefined);
  assert.equal(ok.req.user, "token-1");
  const quoted = await call(mw, { headers: { cookie: `sluice_token="${TOKEN}"` } });
  assert.equal(quoted.res, undefined);
  const wrong = await call(mw, { headers: { cookie: "sluice_token=nope" } });
  assert.equal(wrong.res?.status, 401);
  const other = await call(mw, { headers: { cookie: `other=${TOKEN}` } });
  assert.deepEqual(challenge(other.res), ['Bearer realm="sluice"']);
  const noCookieOption = bearerAuth({ tokens: [TOKEN] });
  const ignored = await call(noCookieOption, { headers: { cookie: `sluice_token=${TOKEN}` } });
  assert.equal(ignored.res?.status, 401);
});

Deno.test("bearerAuth prefers the header over the query and cookie", async () => {
  const mw = bearerAuth({ tokens: [TOKEN], cookie: "c" });
  const { res } = await call(mw, {
    target: `/e?access_token=${encodeURIComponent(TOKEN)}`,
    headers: { authorization: "Bearer wrong", cookie: `c=${TOKEN}` },
  });
  assert.equal(res?.status, 401);
});

Deno.test("bearerAuth validates its options at construction without printing tokens", () => {
  assert.throws(() => bearerAuth({ tokens: [] }), /tokens must be a non-empty array/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => bearerAuth({ tokens: undefined as any }), TypeError);
  assert.throws(() => bearerAuth({ tokens: ["has space secret"] }), (err: unknown) => {
    assert.ok(err instanceof TypeError);
    assert.ok(!err.message.includes("secret"));
    return true;
  });
  assert.throws(() => bearerAuth({ tokens: [""] }), TypeError);
  assert.throws(() => bearerAuth({ tokens: [TOKEN, TOKEN] }), /repeats/);
  assert.throws(() => bearerAuth({ tokens: [{ name: "", token: TOKEN }] }), TypeError);
  assert.throws(() => bearerAuth({ tokens: [TOKEN], queryParam: "" }), TypeError);
  assert.throws(() => bearerAuth({ tokens: [TOKEN], cookie: "a b" }), TypeError);
  assert.throws(() => bearerAuth({ tokens: [TOKEN], realm: "x\r\ny" }), TypeError);
});
