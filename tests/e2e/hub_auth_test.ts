/**
 * Subscriber authentication of the hub end to end: curl's `--basic` and
 * `--digest`, a replayed Digest nonce over a raw socket, bearer tokens in the
 * header, the query and the cookie, and the auth-failure metric.
 */

import assert from "node:assert/strict";
import { computeDigestResponse } from "../../server/middleware/auth_digest.ts";
import { parseAuthorization } from "../../server/middleware/auth_header.ts";
import { subscriberAuth } from "../../server/hub/subscriber_auth.ts";
import { digestHex, hashPassword, UserStore } from "../../server/middleware/users.ts";
import { SseParser } from "../_util/sse_parser.ts";
import {
  curl,
  curlStreamUntil,
  hasCommand,
  metric,
  publish,
  request,
  subscribe,
  testHub,
} from "./_hub.ts";

const hasCurl = hasCommand("curl");

function users(): UserStore {
  return new UserStore()
    .addPassword("admin", "s3cret:pw")
    .addHash(
      "viewer",
      "sluice",
      hashPassword("viewer", "sluice", "view-only", "SHA-256"),
      "SHA-256",
    )
    .addHash("viewer", "sluice", hashPassword("viewer", "sluice", "view-only"));
}

for (const scheme of ["basic", "digest"] as const) {
  Deno.test({
    name: `hub ${scheme} auth: curl --${scheme} with the right password gets 200, a wrong one 401`,
    ignore: !hasCurl,
    async fn() {
      await using hub = testHub({
        auth: subscriberAuth({ scheme, users: users() }),
        metricsAuth: true,
      });
      const url = `http://127.0.0.1:${hub.server.addr.port}/status`;
      const code = async (user: string) =>
        (await curl([`--${scheme}`, "-u", user, "-o", "/dev/null", "-w", "%{http_code}", url]))
          .stdout;
      assert.equal(await code("admin:s3cret:pw"), "200");
      assert.equal(await code("viewer:view-only"), "200", "a user stored as HA1 only");
      assert.equal(await code("admin:wrong"), "401");
      assert.equal(await code("nobody:s3cret:pw"), "401");
      const anonymous = await curl(["-o", "/dev/null", "-w", "%{http_code}", url]);
      assert.equal(anonymous.stdout, "401");
      assert.equal(hub.authFailures, 2, "two wrong logins; challenges are not failures");
    },
  });

  Deno.test({
    name: `hub ${scheme} auth: curl --${scheme} subscribes and receives events`,
    ignore: !hasCurl,
    async fn() {
      await using hub = testHub({ auth: subscriberAuth({ scheme, users: users() }) });
      const port = hub.server.addr.port;
      const out = await curlStreamUntil(
        [`--${scheme}`, "-u", "admin:s3cret:pw", `http://127.0.0.1:${port}/events/news`],
        "data: hello",
        () => publish(port, "/events/news?event=greeting", "hello"),
        () => hub.events.count() === 1,
      );
      const parser = new SseParser();
      parser.feed(out);
      assert.deepEqual(parser.events.map((e) => [e.type, e.data]), [["greeting", "hello"]]);
      const raw = await request(port, "GET", "/events/news");
      assert.equal(raw.status, 401, "no credentials, no stream");
    },
  });
}

Deno.test("hub digest auth refuses a replayed nonce-count with stale=true", async () => {
  await using hub = testHub({
    auth: subscriberAuth({ scheme: "digest", users: users() }),
    metricsAuth: true,
  });
  const port = hub.server.addr.port;
  const challenge = await request(port, "GET", "/status");
  assert.equal(challenge.status, 401);
  // RawClient joins repeated headers; take the first challenge (SHA-256 first).
  const params = parseAuthorization(challenge.headers.get("www-authenticate")!).params;
  const algorithm = params.get("algorithm") as "SHA-256" | "MD5";
  const nonce = params.get("nonce")!;
  const answer = (nc: string) => {
    const response = computeDigestResponse({
      algorithm,
      ha1: digestHex(algorithm, "admin:sluice:s3cret:pw"),
      method: "GET",
      uri: "/status",
      nonce,
      nc,
      cnonce: "c0ffee",
      qop: "auth",
    });
    return `Digest username="admin", realm="sluice", nonce="${nonce}", uri="/status", ` +
      `algorithm=${algorithm}, qop=auth, nc=${nc}, cnonce="c0ffee", ` +
      `opaque="${params.get("opaque")}", response="${response}"`;
  };
  const first = await request(port, "GET", "/status", {
    headers: { Authorization: answer("00000001") },
  });
  assert.equal(first.status, 200, first.body);
  const replay = await request(port, "GET", "/status", {
    headers: { Authorization: answer("00000001") },
  });
  assert.equal(replay.status, 401, "the same nonce-count again is a replay");
  assert.match(replay.headers.get("www-authenticate")!, /stale=true/);
  const next = await request(port, "GET", "/status", {
    headers: { Authorization: answer("00000002") },
  });
  assert.equal(next.status, 200, "a higher nonce-count with the same nonce is fine");
});

Deno.test("hub bearer auth takes the token from the header, ?access_token= or the cookie", async () => {
  await using hub = testHub({
    auth: subscriberAuth({ scheme: "bearer", tokens: ["sub-token-1"] }),
    metricsAuth: true,
  });
  const port = hub.server.addr.port;
  const header = await subscribe(port, "/events/news", { Authorization: "Bearer sub-token-1" });
  const query = await subscribe(port, "/events/news?access_token=sub-token-1");
  const cookie = await subscribe(port, "/events?channel=news", {
    Cookie: "sluice_token=sub-token-1",
  });
  await using _h = header.client;
  await using _q = query.client;
  await using _c = cookie.client;
  assert.equal((await publish(port, "/events/news", "hi")).status, 202);
  for (const s of [header, query, cookie]) await s.client.readEvents(s.parser, 1);
  assert.deepEqual(
    [header, query, cookie].map((s) => [s.parser.events[0].type, s.parser.events[0].data]),
    [["message", "hi"], ["message", "hi"], ["news", "hi"]],
  );

  const none = await request(port, "GET", "/events/news");
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="sluice"');
  const wrong = await request(port, "GET", "/events/news?access_token=nope");
  assert.equal(wrong.status, 401);
  assert.match(wrong.headers.get("www-authenticate")!, /error="invalid_token"/);
  const malformed = await request(port, "GET", "/events/news", {
    headers: { Authorization: "Bearer two words" },
  });
  assert.equal(malformed.status, 400);

  assert.equal((await request(port, "GET", "/metrics")).status, 401, "--metrics-auth");
  const metrics = await request(port, "GET", "/metrics?access_token=sub-token-1");
  assert.equal(metrics.status, 200);
  assert.equal(metric(metrics.body, "sluice_auth_failures_total"), 1, "the wrong token");
  assert.equal(metric(metrics.body, "sluice_sessions_open"), 3);
});

Deno.test("hub auth guards the dashboard page, so browsers prompt there first", async () => {
  await using hub = testHub({ auth: subscriberAuth({ scheme: "basic", users: users() }) });
  const port = hub.server.addr.port;
  const page = await request(port, "GET", "/");
  assert.equal(page.status, 401);
  assert.match(page.headers.get("www-authenticate")!, /^Basic realm="sluice"/);
  const ok = await request(port, "GET", "/", {
    headers: { Authorization: `Basic ${btoa("admin:s3cret:pw")}` },
  });
  assert.equal(ok.status, 200);
  assert.equal(
    (await request(port, "GET", "/metrics")).status,
    200,
    "metrics stay open by default",
  );
});
