import assert from "node:assert/strict";
import { countAuthFailures, isLoopback, publisherAuth } from "../../../server/hub/hub_auth.ts";
import { subscriberAuth } from "../../../server/hub/subscriber_auth.ts";
import type { HttpRequest, HttpResponse, Middleware } from "../../../server/http/types.ts";
import { UserStore } from "../../../server/middleware/users.ts";
import { makeRequest } from "../middleware/_auth_request.ts";

function run(mw: Middleware, req: HttpRequest): HttpResponse | undefined {
  const res = mw(req, []);
  assert.ok(!(res instanceof Promise));
  return res;
}

function from(hostname: string, headers: Record<string, string> = {}): HttpRequest {
  const req = makeRequest({ method: "POST", headers: { host: "127.0.0.1:8080", ...headers } });
  req.remoteAddr = { hostname, port: 40000 };
  return req;
}

Deno.test("subscriberAuth builds nothing for none and checks what each scheme needs", () => {
  assert.equal(subscriberAuth({ scheme: "none" }), undefined);
  const users = new UserStore().addPassword("a", "b");
  assert.equal(typeof subscriberAuth({ scheme: "basic", users }), "function");
  assert.equal(typeof subscriberAuth({ scheme: "digest", users }), "function");
  assert.equal(typeof subscriberAuth({ scheme: "bearer", tokens: ["t0k"] }), "function");
  assert.throws(() => subscriberAuth({ scheme: "basic" }), /needs at least one user/);
  assert.throws(() => subscriberAuth({ scheme: "digest", users: new UserStore() }), /user/);
  assert.throws(() => subscriberAuth({ scheme: "bearer", tokens: [] }), /token/);
  assert.throws(() => subscriberAuth({ scheme: "none", users }), /basic and digest/);
  assert.throws(() => subscriberAuth({ scheme: "basic", users, tokens: ["x"] }), /bearer/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => subscriberAuth({ scheme: "ntlm" as any }), /none, basic, digest, bearer/);
});

Deno.test("bearer subscriberAuth accepts the sluice_token cookie by default", () => {
  const mw = subscriberAuth({ scheme: "bearer", tokens: ["t0k"] })!;
  assert.equal(run(mw, makeRequest({ headers: { cookie: "a=1; sluice_token=t0k" } })), undefined);
  assert.equal(run(mw, makeRequest({ target: "/events/a?access_token=t0k" })), undefined);
  assert.equal(run(mw, makeRequest({ headers: { cookie: "sluice_token=bad" } }))?.status, 401);
  const noCookie = subscriberAuth({ scheme: "bearer", tokens: ["t0k"], cookie: null })!;
  assert.equal(
    run(noCookie, makeRequest({ headers: { cookie: "sluice_token=t0k" } }))?.status,
    401,
  );
});

Deno.test("isLoopback knows IPv4, IPv6 and mapped loopback", () => {
  assert.ok(isLoopback("127.0.0.1") && isLoopback("127.9.9.9") && isLoopback("::1"));
  assert.ok(isLoopback("::ffff:127.0.0.1"));
  assert.ok(!isLoopback("192.0.2.7") && !isLoopback("::ffff:10.0.0.1") && !isLoopback("fe80::1"));
});

Deno.test("publisherAuth without tokens allows loopback and refuses others with 403", () => {
  const mw = publisherAuth();
  assert.equal(run(mw, from("127.0.0.1")), undefined);
  assert.equal(run(mw, from("192.0.2.7"))?.status, 403);
});

Deno.test("publisherAuth without tokens refuses pages of other origins (CSRF) but not its own", () => {
  const mw = publisherAuth({ origins: ["http://app.example"] });
  assert.equal(run(mw, from("127.0.0.1", { origin: "http://127.0.0.1:8080" })), undefined);
  assert.equal(run(mw, from("127.0.0.1", { origin: "http://app.example" })), undefined);
  assert.equal(run(mw, from("127.0.0.1", { origin: "http://evil.example" }))?.status, 403);
  assert.equal(
    run(publisherAuth({ origins: ["*"] }), from("127.0.0.1", { origin: "http://x.y" })),
    undefined,
  );
});

Deno.test("publisherAuth with tokens wants the header everywhere, never the query", () => {
  const mw = publisherAuth({ tokens: ["pub-1", "pub-2"] });
  assert.equal(run(mw, from("192.0.2.7", { authorization: "Bearer pub-2" })), undefined);
  assert.equal(run(mw, from("127.0.0.1"))?.status, 401, "loopback needs a token too");
  assert.equal(run(mw, from("127.0.0.1", { authorization: "Bearer nope" }))?.status, 401);
  const query = makeRequest({ method: "POST", target: "/events/a?access_token=pub-1" });
  assert.equal(run(mw, query)?.status, 401);
  assert.throws(() => publisherAuth({ tokens: ["has space"] }), TypeError);
});

Deno.test("countAuthFailures counts 403s and 401s with credentials, not bare challenges", async () => {
  let n = 0;
  const answer = (status: number): Middleware => () => ({ status });
  const mw401 = countAuthFailures(answer(401), () => n++);
  run(mw401, makeRequest());
  assert.equal(n, 0, "a challenge is not a failure");
  run(mw401, makeRequest({ headers: { authorization: "Basic eDp5" } }));
  run(mw401, makeRequest({ target: "/events/a?access_token=x" }));
  run(mw401, makeRequest({ headers: { cookie: "sluice_token=x" } }));
  assert.equal(n, 3);
  run(countAuthFailures(answer(403), () => n++), makeRequest());
  assert.equal(n, 4);
  run(countAuthFailures(() => undefined, () => n++), makeRequest());
  const later: Middleware = () => Promise.resolve({ status: 403 });
  await countAuthFailures(later, () => n++)(makeRequest(), []);
  assert.equal(n, 5);
});
