import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { computeDigestResponse, digestAuth } from "../../../server/middleware/auth_digest.ts";
import type { HttpResponse, Middleware } from "../../../server/http/types.ts";
import { hashPassword, UserStore } from "../../../server/middleware/users.ts";
import { headerValues, makeRequest } from "./_auth_request.ts";

// --- An independent client-side implementation, checked against RFC 7616 §3.9.1 ---

type Alg = "MD5" | "SHA-256";
const H = (alg: Alg, s: string) =>
  createHash(alg === "MD5" ? "md5" : "sha256").update(s, "utf8").digest("hex");

function clientResponse(
  alg: Alg,
  user: string,
  realm: string,
  password: string,
  method: string,
  uri: string,
  nonce: string,
  nc: string,
  cnonce: string,
): string {
  const ha1 = H(alg, `${user}:${realm}:${password}`);
  const ha2 = H(alg, `${method}:${uri}`);
  return H(alg, `${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
}

function parseChallenge(header: string): Record<string, string> {
  assert.match(header, /^Digest /);
  const out: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/([\w-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    out[m[1]] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
  }
  return out;
}

interface Answer {
  user?: string;
  password?: string;
  method?: string;
  uri?: string;
  nc?: string;
  cnonce?: string;
  /** Overrides of the sent parameters, `undefined` to omit one. */
  override?: Record<string, string | undefined>;
}

/** The `Authorization` value a correct client sends for `challenge`. */
function answer(challenge: Record<string, string>, a: Answer = {}): string {
  const alg = (challenge.algorithm ?? "MD5") as Alg;
  const user = a.user ?? "admin";
  const method = a.method ?? "GET";
  const uri = a.uri ?? "/events/a";
  const nc = a.nc ?? "00000001";
  const cnonce = a.cnonce ?? "0a4f113b";
  const params: Record<string, string | undefined> = {
    username: `"${user}"`,
    realm: `"${challenge.realm}"`,
    nonce: `"${challenge.nonce}"`,
    uri: `"${uri}"`,
    algorithm: alg,
    qop: "auth",
    nc,
    cnonce: `"${cnonce}"`,
    response: `"${
      clientResponse(
        alg,
        user,
        challenge.realm,
        a.password ?? "admin",
        method,
        uri,
        challenge.nonce,
        nc,
        cnonce,
      )
    }"`,
    opaque: `"${challenge.opaque}"`,
    ...a.override,
  };
  return "Digest " + Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

async function challengesOf(mw: Middleware): Promise<Record<string, string>[]> {
  const res = await mw(makeRequest(), []);
  assert.equal(res?.status, 401);
  return headerValues(res.headers, "www-authenticate").map(parseChallenge);
}

async function send(mw: Middleware, authorization: string, method = "GET", target = "/events/a") {
  const req = makeRequest({ method, target, headers: { authorization } });
  const res = await mw(req, []);
  return { req, res };
}

function assert401(res: HttpResponse | undefined, stale: boolean) {
  assert.equal(res?.status, 401);
  const challenges = headerValues(res.headers, "www-authenticate").map(parseChallenge);
  assert.ok(challenges.length > 0);
  for (const c of challenges) assert.equal(c.stale, stale ? "true" : undefined);
}

const users = () =>
  new UserStore()
    .addPassword("admin", "admin")
    .addPassword("Jäsøn Doe", "Secret, or not?");

// --- Tests ---

Deno.test("the test client and computeDigestResponse reproduce the RFC 7616 §3.9.1 vectors", () => {
  const v = {
    user: "Mufasa",
    realm: "http-auth@example.org",
    password: "Circle of Life",
    uri: "/dir/index.html",
    nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
  };
  const expected = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
  };
  for (const alg of ["MD5", "SHA-256"] as const) {
    const args = [
      v.user,
      v.realm,
      v.password,
      "GET",
      v.uri,
      v.nonce,
      "00000001",
      v.cnonce,
    ] as const;
    assert.equal(clientResponse(alg, ...args), expected[alg]);
    assert.equal(
      computeDigestResponse({
        algorithm: alg,
        ha1: hashPassword(v.user, v.realm, v.password, alg),
        method: "GET",
        uri: v.uri,
        nonce: v.nonce,
        nc: "00000001",
        cnonce: v.cnonce,
        qop: "auth",
      }),
      expected[alg],
    );
  }
});

Deno.test("digestAuth challenges with SHA-256 then MD5, qop=auth, one nonce and opaque", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const res = await mw(makeRequest(), []);
  assert.equal(res?.status, 401);
  const raw = headerValues(res.headers, "www-authenticate");
  assert.equal(raw.length, 2);
  const [sha, md5] = raw.map(parseChallenge);
  assert.equal(sha.algorithm, "SHA-256");
  assert.equal(md5.algorithm, "MD5");
  for (const c of [sha, md5]) {
    assert.equal(c.realm, "sluice");
    assert.equal(c.qop, "auth");
    assert.equal(c.charset, "UTF-8");
    assert.equal(c.stale, undefined);
    assert.match(c.nonce, /^[A-Za-z0-9_-]{40,}$/);
    assert.match(c.opaque, /^[A-Za-z0-9_-]+$/);
  }
  assert.equal(sha.nonce, md5.nonce);
  assert.equal(sha.opaque, md5.opaque);
  const again = await challengesOf(mw);
  assert.notEqual(again[0].nonce, sha.nonce, "every challenge carries a fresh nonce");
  assert.equal(again[0].opaque, sha.opaque);
});

Deno.test("digestAuth accepts a correct SHA-256 response and sets req.user", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [sha] = await challengesOf(mw);
  assert.equal(sha.algorithm, "SHA-256");
  const { req, res } = await send(mw, answer(sha));
  assert.equal(res, undefined);
  assert.equal(req.user, "admin");
});

Deno.test("digestAuth accepts a correct MD5 response", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [, md5] = await challengesOf(mw);
  assert.equal(md5.algorithm, "MD5");
  const { req, res } = await send(mw, answer(md5));
  assert.equal(res, undefined);
  assert.equal(req.user, "admin");
});

Deno.test("digestAuth treats a missing algorithm parameter as MD5", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [, md5] = await challengesOf(mw);
  const { res } = await send(mw, answer(md5, { override: { algorithm: undefined } }));
  assert.equal(res, undefined);
});

Deno.test("digestAuth offers and accepts only the configured algorithms", async () => {
  const mw = digestAuth({ realm: "sluice", users: users(), algorithms: ["MD5"] });
  const challenges = await challengesOf(mw);
  assert.deepEqual(challenges.map((c) => c.algorithm), ["MD5"]);
  const sha = { ...challenges[0], algorithm: "SHA-256" };
  assert401((await send(mw, answer(sha))).res, false);
  assert.equal((await send(mw, answer(challenges[0]))).res, undefined);
});

Deno.test("digestAuth answers a wrong password or unknown user with 401 without stale", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  for (const c of await challengesOf(mw)) {
    const wrong = await send(mw, answer(c, { password: "nope" }));
    assert401(wrong.res, false);
    assert.equal(wrong.req.user, undefined);
    assert401((await send(mw, answer(c, { user: "nobody" }))).res, false);
  }
});

Deno.test("digestAuth checks the method: a response made for GET fails on POST", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [c] = await challengesOf(mw);
  assert401((await send(mw, answer(c, { method: "GET" }), "POST")).res, false);
});

Deno.test("digestAuth answers a uri that is not the request target with 400", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [c] = await challengesOf(mw);
  const { req, res } = await send(mw, answer(c, { uri: "/events/b" }), "GET", "/events/a");
  assert.equal(res?.status, 400);
  assert.equal(req.user, undefined);
  // The full target, query included, must match.
  const q = await send(mw, answer(c, { uri: "/events/a" }), "GET", "/events/a?x=1");
  assert.equal(q.res?.status, 400);
  const ok = await send(mw, answer(c, { uri: "/events/a?x=1" }), "GET", "/events/a?x=1");
  assert.equal(ok.res, undefined);
});

Deno.test("digestAuth answers an expired nonce with a correct response with 401 stale=true", async () => {
  let now = 1_000_000;
  const mw = digestAuth({ realm: "sluice", users: users(), nonceTtlMs: 1000, now: () => now });
  const [c] = await challengesOf(mw);
  now += 1000;
  assert.equal((await send(mw, answer(c))).res, undefined, "still valid at exactly the TTL");
  now += 1;
  const { req, res } = await send(mw, answer(c, { nc: "00000002" }));
  assert401(res, true);
  assert.equal(req.user, undefined);
  // The stale answer carries a fresh nonce that works.
  const fresh = headerValues(res!.headers, "www-authenticate").map(parseChallenge)[0];
  assert.notEqual(fresh.nonce, c.nonce);
  assert.equal((await send(mw, answer(fresh))).res, undefined);
});

Deno.test("digestAuth does not say stale when the response for an expired nonce is wrong", async () => {
  let now = 5_000;
  const mw = digestAuth({ realm: "sluice", users: users(), nonceTtlMs: 1000, now: () => now });
  const [c] = await challengesOf(mw);
  now += 5000;
  assert401((await send(mw, answer(c, { password: "wrong" }))).res, false);
});

Deno.test("digestAuth refuses a replayed or lower nonce-count with 401", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [c] = await challengesOf(mw);
  assert.equal((await send(mw, answer(c, { nc: "00000001" }))).res, undefined);
  const replay = await send(mw, answer(c, { nc: "00000001" }));
  assert.equal(replay.res?.status, 401);
  assert.equal(replay.req.user, undefined);
  assert.equal((await send(mw, answer(c, { nc: "00000003" }))).res, undefined);
  assert.equal((await send(mw, answer(c, { nc: "00000002" }))).res?.status, 401);
  assert.equal((await send(mw, answer(c, { nc: "0000000a" }))).res, undefined);
});

Deno.test("digestAuth forces a fresh nonce for nonces forgotten when the nc map is full", async () => {
  let now = 10_000;
  const mw = digestAuth({ realm: "sluice", users: users(), maxNonces: 2, now: () => now });
  const issue = async () => {
    now += 1;
    return (await challengesOf(mw))[0];
  };
  const a = await issue();
  const b = await issue();
  const c = await issue();
  const d = await issue();
  assert.equal((await send(mw, answer(a))).res, undefined);
  assert.equal((await send(mw, answer(b))).res, undefined);
  assert.equal((await send(mw, answer(d))).res, undefined); // evicts a
  // a was forgotten: even a replay of nc=1 cannot slip through.
  assert401((await send(mw, answer(a))).res, true);
  assert401((await send(mw, answer(a, { nc: "00000002" }))).res, true);
  // b is still remembered: replay refused, higher nc accepted.
  assert.equal((await send(mw, answer(b))).res?.status, 401);
  assert.equal((await send(mw, answer(b, { nc: "00000002" }))).res, undefined);
  // c was issued after a, so it was never forgotten and is accepted (evicting b).
  assert.equal((await send(mw, answer(c))).res, undefined);
  // Now b is forgotten too: stale, whatever its nc.
  assert401((await send(mw, answer(b, { nc: "00000003" }))).res, true);
  // d is still remembered.
  assert.equal((await send(mw, answer(d))).res?.status, 401);
  assert.equal((await send(mw, answer(d, { nc: "00000002" }))).res, undefined);
});

Deno.test("digestAuth refuses a forged or foreign nonce with 401 without stale", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [c] = await challengesOf(mw);
  for (const i of [0, 10, 30, c.nonce.length - 1]) {
    const swapped = c.nonce[i] === "A" ? "B" : "A";
    const tampered = { ...c, nonce: c.nonce.slice(0, i) + swapped + c.nonce.slice(i + 1) };
    assert401((await send(mw, answer(tampered))).res, false);
  }
  assert401((await send(mw, answer({ ...c, nonce: "short" }))).res, false);
  const other = digestAuth({ realm: "sluice", users: users() });
  const [foreign] = await challengesOf(other);
  assert401((await send(mw, answer({ ...foreign, opaque: c.opaque }))).res, false);
});

Deno.test("digestAuth instances sharing a secret accept each other's nonces", async () => {
  const secret = new Uint8Array(32).fill(7);
  const a = digestAuth({ realm: "sluice", users: users(), secret });
  const b = digestAuth({ realm: "sluice", users: users(), secret });
  const [c] = await challengesOf(a);
  assert.equal((await send(b, answer(c))).res, undefined);
});

Deno.test("digestAuth refuses a wrong opaque or realm with 401", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [c] = await challengesOf(mw);
  assert401((await send(mw, answer({ ...c, opaque: "nope" }))).res, false);
  assert401((await send(mw, answer(c, { override: { opaque: undefined } }))).res, false);
  assert401((await send(mw, answer({ ...c, realm: "other" }))).res, false);
});

Deno.test("digestAuth answers missing credentials or another scheme with 401", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  assert401(await mw(makeRequest(), []), false);
  assert401((await send(mw, "Basic YWRtaW46YWRtaW4=")).res, false);
});

Deno.test("digestAuth answers malformed credentials with 400", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [c] = await challengesOf(mw);
  const good = answer(c);
  const malformed = [
    "Digest",
    "Digest abc123",
    'Digest username="admin',
    good + ", nc=00000002",
    good.replace("nc=00000001", "nc=1"),
    good.replace("nc=00000001", "nc=0000000g"),
    good.replace("qop=auth", "qop=auth-int"),
    good.replace(/, response="[0-9a-f]+"/, ""),
    good.replace(/, cnonce="[^"]*"/, ""),
    good.replace(/username="admin"/, ""),
    good.replace(/username="admin"/, "username=\"admin\", username*=UTF-8''admin"),
    good.replace(/username="admin"/, "username*=UTF-8''%E0%A4%A"),
    good.replace(/username="admin"/, "username*=latin1''admin"),
    good.replace(", qop", " qop"),
  ];
  for (const header of malformed) {
    const { req, res } = await send(mw, header);
    assert.equal(res?.status, 400, header);
    assert.deepEqual(headerValues(res.headers, "www-authenticate"), []);
    assert.equal(req.user, undefined);
  }
});

Deno.test("digestAuth only offers MD5 while a user has only an MD5 HA1, and refuses SHA-256 for them", async () => {
  const store = users().addHash("hashed", "sluice", hashPassword("hashed", "sluice", "pw"));
  const mw = digestAuth({ realm: "sluice", users: store });
  const challenges = await challengesOf(mw);
  assert.deepEqual(challenges.map((c) => c.algorithm), ["MD5"]);
  const md5 = challenges[0];
  const ok = await send(mw, answer(md5, { user: "hashed", password: "pw" }));
  assert.equal(ok.res, undefined);
  assert.equal(ok.req.user, "hashed");
  // SHA-256 stays accepted for users that can do it, refused for the hash-only one.
  const sha = { ...md5, algorithm: "SHA-256" };
  assert.equal((await send(mw, answer(sha, { nc: "00000002" }))).res, undefined);
  assert401((await send(mw, answer(sha, { user: "hashed", password: "pw" }))).res, false);
  // Once that user is gone, SHA-256 is offered again.
  store.delete("hashed");
  assert.deepEqual((await challengesOf(mw)).map((c) => c.algorithm), ["SHA-256", "MD5"]);
});

Deno.test("digestAuth accepts a SHA-256 HA1-only user with SHA-256", async () => {
  const store = new UserStore().addHash(
    "s",
    "sluice",
    hashPassword("s", "sluice", "pw", "SHA-256"),
    "SHA-256",
  );
  const mw = digestAuth({ realm: "sluice", users: store });
  const challenges = await challengesOf(mw);
  assert.deepEqual(challenges.map((c) => c.algorithm), ["SHA-256"]);
  const { res } = await send(mw, answer(challenges[0], { user: "s", password: "pw" }));
  assert.equal(res, undefined);
});

Deno.test("digestAuth understands userhash=true and username* for non-ASCII names", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [sha] = await challengesOf(mw);
  const name = "Jäsøn Doe";
  const password = "Secret, or not?";
  const hashedName = H("SHA-256", `${name}:sluice`);
  const base = answer(sha, { user: name, password });
  const viaHash = base.replace(`username="${name}"`, `username="${hashedName}", userhash=true`);
  const r1 = await send(mw, viaHash);
  assert.equal(r1.res, undefined);
  assert.equal(r1.req.user, name);
  const ext = answer(sha, { user: name, password, nc: "00000002" })
    .replace(`username="${name}"`, `username*=UTF-8''${encodeURIComponent(name)}`);
  const r2 = await send(mw, ext);
  assert.equal(r2.res, undefined);
  assert.equal(r2.req.user, name);
});

Deno.test("digestAuth accepts the response in upper-case hex and unquoted values", async () => {
  const mw = digestAuth({ realm: "sluice", users: users() });
  const [c] = await challengesOf(mw);
  const header = answer(c).replace(
    /response="([0-9a-f]+)"/,
    (_, hex) => `response="${hex.toUpperCase()}"`,
  )
    .replace('cnonce="0a4f113b"', "cnonce=0a4f113b");
  assert.equal((await send(mw, header)).res, undefined);
});

Deno.test("digestAuth validates its options at construction", () => {
  const u = users();
  assert.throws(
    () => digestAuth({ users: u, nonceTtlMs: 0 }),
    /nonceTtlMs must be a positive integer: received 0/,
  );
  assert.throws(() => digestAuth({ users: u, nonceTtlMs: 1.5 }), RangeError);
  assert.throws(() => digestAuth({ users: u, maxNonces: -1 }), RangeError);
  assert.throws(() => digestAuth({ users: u, algorithms: [] }), TypeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => digestAuth({ users: u, algorithms: ["SHA-1" as any] }), TypeError);
  assert.throws(() => digestAuth({ users: u, algorithms: ["MD5", "MD5"] }), TypeError);
  assert.throws(() => digestAuth({ users: u, secret: new Uint8Array(8) }), /at least 16 bytes/);
  assert.throws(() => digestAuth({ users: u, realm: "" }), /realm/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => digestAuth({ users: null as any }), /users must be a UserStore/);
});
