import assert from "node:assert/strict";
import { basicAuth } from "../../../server/middleware/auth_basic.ts";
import type { HttpResponse } from "../../../server/http/types.ts";
import { hashPassword, UserStore } from "../../../server/middleware/users.ts";
import { headerValues, makeRequest } from "./_auth_request.ts";

function b64(text: string): string {
  let binary = "";
  for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
  return btoa(binary);
}

const users = new UserStore()
  .addPassword("admin", "admin")
  .addPassword("jürgen", "pässwörd")
  .addHash("hashed", "sluice", hashPassword("hashed", "sluice", "from-htdigest"))
  .addHash("other", "elsewhere", hashPassword("other", "elsewhere", "pw"));
const auth = basicAuth({ realm: "sluice", users });

async function call(authorization?: string) {
  const req = makeRequest({ headers: authorization === undefined ? {} : { authorization } });
  const res = await auth(req, []);
  return { req, res };
}

function assertChallenge(res: HttpResponse | undefined) {
  assert.equal(res?.status, 401);
  assert.deepEqual(headerValues(res.headers, "www-authenticate"), [
    'Basic realm="sluice", charset="UTF-8"',
  ]);
}

Deno.test("basicAuth lets the right password pass and sets req.user", async () => {
  const { req, res } = await call(`Basic ${b64("admin:admin")}`);
  assert.equal(res, undefined);
  assert.equal(req.user, "admin");
});

Deno.test("basicAuth accepts a case-insensitive scheme and UTF-8 credentials", async () => {
  const { req, res } = await call(`basic ${b64("jürgen:pässwörd")}`);
  assert.equal(res, undefined);
  assert.equal(req.user, "jürgen");
});

Deno.test("basicAuth accepts passwords containing colons", async () => {
  const mw = basicAuth({ users: new UserStore().addPassword("u", "a:b") });
  const req = makeRequest({ headers: { authorization: `Basic ${b64("u:a:b")}` } });
  assert.equal(await mw(req, []), undefined);
  assert.equal(req.user, "u");
});

Deno.test("basicAuth answers missing credentials with 401 and the Basic challenge", async () => {
  const { req, res } = await call();
  assertChallenge(res);
  assert.equal(req.user, undefined);
});

Deno.test("basicAuth answers a wrong password or unknown user with 401 and the challenge", async () => {
  for (const creds of ["admin:wrong", "nobody:admin", ":admin", "admin:"]) {
    const { req, res } = await call(`Basic ${b64(creds)}`);
    assertChallenge(res);
    assert.equal(req.user, undefined);
  }
});

Deno.test("basicAuth answers another scheme with 401 and the challenge", async () => {
  const { res } = await call("Bearer abc");
  assertChallenge(res);
});

Deno.test("basicAuth lets a user stored only as an MD5 HA1 log in", async () => {
  const ok = await call(`Basic ${b64("hashed:from-htdigest")}`);
  assert.equal(ok.res, undefined);
  assert.equal(ok.req.user, "hashed");
  const bad = await call(`Basic ${b64("hashed:wrong")}`);
  assertChallenge(bad.res);
});

Deno.test("basicAuth refuses a hash-only user whose HA1 was made for another realm", async () => {
  const { res } = await call(`Basic ${b64("other:pw")}`);
  assertChallenge(res);
});

Deno.test("basicAuth answers malformed headers with 400 and no challenge", async () => {
  const malformed = [
    "Basic",
    "Basic ",
    "Basic !!!notbase64",
    "Basic a b",
    `Basic ${b64("nocolon")}`,
    `Basic ${btoa("\xff\xfe:x")}`, // not UTF-8
    "Basic realm=x",
    "Basic@ abc",
    "Basic Zm9v=a",
  ];
  for (const header of malformed) {
    const { req, res } = await call(header);
    assert.equal(res?.status, 400, header);
    assert.deepEqual(headerValues(res.headers, "www-authenticate"), [], header);
    assert.equal(req.user, undefined);
  }
});

Deno.test("basicAuth quotes the realm in the challenge", async () => {
  const mw = basicAuth({ realm: 'a "quoted" realm', users });
  const res = await mw(makeRequest(), []);
  assert.deepEqual(headerValues(res?.headers, "www-authenticate"), [
    'Basic realm="a \\"quoted\\" realm", charset="UTF-8"',
  ]);
});

Deno.test("basicAuth validates its options at construction", () => {
  assert.throws(() => basicAuth({ realm: "", users }), TypeError);
  assert.throws(() => basicAuth({ realm: "a\nb", users }), /realm must be/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => basicAuth({ users: {} as any }), /users must be a UserStore/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => basicAuth(undefined as any), TypeError);
});
