/**
 * The hub's publish API, multi-channel streams and metrics, end to end over
 * real sockets: every status code of `POST /events/<channel>` one by one.
 */

import assert from "node:assert/strict";
import { metric, publish, publishVia, request, subscribe, testHub, until, within } from "./_hub.ts";

Deno.test("hub publish answers 202 with the event id, and the subscriber gets the event", async () => {
  await using hub = testHub();
  const port = hub.server.addr.port;
  const { client, parser } = await subscribe(port, "/events/news");
  await using _ = client;

  const text = await publish(port, "/events/news?event=greeting", "hello\nworld");
  assert.equal(text.status, 202, text.body);
  assert.match(text.headers.get("content-type")!, /^application\/json/);
  const textId = JSON.parse(text.body).id;
  assert.equal(typeof textId, "string", "an id is assigned when the publisher gives none");

  const json = await publish(
    port,
    "/events/news",
    JSON.stringify({ data: { t: 21.5 }, event: "reading", id: "r-1", retry: 2500 }),
    "application/json",
  );
  assert.equal(json.status, 202, json.body);
  assert.deepEqual(JSON.parse(json.body), { id: "r-1" });

  await within(client.readEvents(parser, 2), "two events");
  assert.deepEqual(parser.events, [
    { type: "greeting", data: "hello\nworld", lastEventId: textId },
    { type: "reading", data: '{"t":21.5}', lastEventId: "r-1" },
  ]);
  assert.equal(parser.retry, 2500);
});

Deno.test("hub publish answers 400 for bad channel names, CR/LF/NUL in names and ids, bad JSON", async () => {
  await using hub = testHub();
  const port = hub.server.addr.port;
  const cases: [string, string, string][] = [
    ["/events/a%20b", "x", "text/plain"],
    ["/events/news?event=a%0Ab", "x", "text/plain"],
    ["/events/news?event=a%0Db", "x", "text/plain"],
    ["/events/news?id=1%002", "x", "text/plain"],
    ["/events/news", "{not json", "application/json"],
    ["/events/news", '{"data":"x","id":"1\\n2"}', "application/json"],
    ["/events/news", '{"event":"no data"}', "application/json"],
  ];
  for (const [target, body, type] of cases) {
    const res = await publish(port, target, body, type);
    assert.equal(res.status, 400, `${target} ${body}: ${res.body}`);
    assert.match(res.body, /^Bad Request/);
  }
  assert.equal(hub.server.stats.queue.pushed, 0, "nothing was queued");
});

Deno.test("hub publish answers 413 over --max-event-bytes, 415 for other content types", async () => {
  await using hub = testHub({ maxEventBytes: 100 });
  const port = hub.server.addr.port;
  assert.equal((await publish(port, "/events/news", "x".repeat(100))).status, 202);
  const big = await publish(port, "/events/news", "x".repeat(101));
  assert.equal(big.status, 413, big.body);
  for (const type of ["application/octet-stream", "image/png"]) {
    const res = await publish(port, "/events/news", "x", type);
    assert.equal(res.status, 415, type);
    assert.match(res.body, /text\/plain|application\/json/);
  }
  assert.equal((await publish(port, "/events/news", "no type", undefined)).status, 202);
  const form = await publish(port, "/events/news", "curl -d", "application/x-www-form-urlencoded");
  assert.equal(form.status, 202, "curl's default content type is taken as text");
});

Deno.test("hub publish answers 401 without a valid --publish-token, 202 with one", async () => {
  await using hub = testHub({ publishTokens: ["pub-token-1", "pub-token-2"] });
  const port = hub.server.addr.port;
  const none = await publish(port, "/events/news", "x");
  assert.equal(none.status, 401, "loopback needs the token too once tokens are set");
  assert.match(none.headers.get("www-authenticate")!, /^Bearer realm="sluice"/);
  const wrong = await publish(port, "/events/news", "x", "text/plain", {
    Authorization: "Bearer nope",
  });
  assert.equal(wrong.status, 401);
  assert.match(wrong.headers.get("www-authenticate")!, /error="invalid_token"/);
  const query = await publish(port, "/events/news?access_token=pub-token-1", "x");
  assert.equal(query.status, 401, "publish tokens are not taken from the URL");
  const ok = await publish(port, "/events/news", "x", "text/plain", {
    Authorization: "Bearer pub-token-2",
  });
  assert.equal(ok.status, 202, ok.body);
  assert.equal(hub.authFailures, 2, "the wrong token and the query token count, not the challenge");
});

Deno.test("hub publish answers 403 to a browser page of another origin (no tokens)", async () => {
  await using hub = testHub({ cors: { origins: ["http://app.example"] } });
  const port = hub.server.addr.port;
  const evil = await publish(port, "/events/news", "x", "text/plain", {
    Origin: "http://evil.example",
  });
  assert.equal(evil.status, 403);
  const app = await publish(port, "/events/news", "x", "text/plain", {
    Origin: "http://app.example",
  });
  assert.equal(app.status, 202);
  assert.equal(app.headers.get("access-control-allow-origin"), "http://app.example");
});

const external = Object.values(Deno.networkInterfaces()).find((i) =>
  i.family === "IPv4" && !i.address.startsWith("127.")
)?.address;

Deno.test({
  name: "hub publish answers 403 to a peer that is not loopback (no tokens)",
  ignore: external === undefined,
  async fn() {
    // One connection to this machine's own non-loopback address: the peer is not 127.x.
    await using hub = testHub({ hostname: external });
    const res = await publishVia(external!, hub.server.addr.port, "x");
    assert.equal(res.status, 403);
    assert.match(res.body, /loopback only/);
  },
});

Deno.test("hub publish answers 503 with Retry-After when the queue is full", async () => {
  await using hub = testHub({ queueSize: 4 });
  const port = hub.server.addr.port;
  // The queue drains once per turn of the event loop, so HTTP alone hardly
  // fills it: fill it synchronously right before the handler's publish, as a burst would.
  const realPublish = hub.events.publish.bind(hub.events);
  hub.events.publish = (data, options) => {
    let filled = 0;
    while (hub.events.send("filler", { channel: "filler" })) filled++;
    assert.equal(filled, 4);
    return realPublish(data, options);
  };
  const res = await publish(port, "/events/news", "x");
  assert.equal(res.status, 503, res.body);
  assert.equal(res.headers.get("retry-after"), "1");
  hub.events.publish = realPublish;
  const deadline = Date.now() + 10_000; // guards a hang only
  while (hub.server.stats.queue.depth > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal((await publish(port, "/events/news", "x")).status, 202, "accepted once drained");
});

Deno.test("hub multi-channel stream gets events of its channels, typed <channel>[:<name>]", async () => {
  await using hub = testHub();
  const port = hub.server.addr.port;
  const multi = await subscribe(port, "/events?channel=a&channel=b");
  const single = await subscribe(port, "/events/a");
  await using _m = multi.client;
  await using _s = single.client;
  await until(() => hub.events.count() === 2, "both subscribed");

  assert.equal((await publish(port, "/events/a", "one")).status, 202);
  assert.equal((await publish(port, "/events/c", "not mine")).status, 202);
  assert.equal((await publish(port, "/events/b?event=temp", "two")).status, 202);
  const last = await publish(port, "/events/a?event=temp", "three");
  const lastId = JSON.parse(last.body).id;

  await within(multi.client.readEvents(multi.parser, 3), "multi events");
  assert.deepEqual(multi.parser.events.map((e) => [e.type, e.data]), [
    ["a", "one"],
    ["b:temp", "two"],
    ["a:temp", "three"],
  ]);
  assert.equal(multi.parser.events[2].lastEventId, lastId, "the copy carries the same id");
  await within(single.client.readEvents(single.parser, 2), "single events");
  assert.deepEqual(single.parser.events.map((e) => [e.type, e.data]), [
    ["message", "one"],
    ["temp", "three"],
  ]);
});

Deno.test("hub multi-channel stream answers 400 without channels, with bad ones or too many", async () => {
  await using hub = testHub({ maxChannels: 2 });
  const port = hub.server.addr.port;
  for (
    const target of ["/events", "/events?channel=a%20b", "/events?channel=a&channel=b&channel=c"]
  ) {
    const res = await request(port, "GET", target);
    assert.equal(res.status, 400, target);
  }
  assert.equal(hub.server.sessions.stats.opened, 0);
});

Deno.test("hub /metrics and /status move when events flow", async () => {
  await using hub = testHub({ queueSize: 64, maxClients: 8 });
  const port = hub.server.addr.port;
  const before = await request(port, "GET", "/metrics");
  assert.equal(before.status, 200);
  assert.equal(before.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  assert.equal(metric(before.body, "sluice_sessions_open"), 0);
  assert.equal(metric(before.body, "sluice_sessions_capacity"), 8);
  assert.equal(metric(before.body, "sluice_queue_capacity"), 64);
  assert.equal(metric(before.body, "sluice_events_delivered_total"), 0);

  const { client, parser } = await subscribe(port, "/events/news");
  await using _ = client;
  for (let i = 0; i < 3; i++) {
    assert.equal((await publish(port, "/events/news", `e${i}`)).status, 202);
  }
  await within(client.readEvents(parser, 3), "three events");

  const after = await request(port, "GET", "/metrics");
  assert.equal(metric(after.body, "sluice_sessions_open"), 1);
  assert.equal(metric(after.body, "sluice_events_delivered_total"), 3);
  assert.ok(metric(after.body, "sluice_events_published_total") >= 3);
  assert.ok(metric(after.body, "sluice_bytes_written_total") > 0);
  assert.ok(metric(after.body, "sluice_uptime_seconds") >= 0);
  assert.match(after.body, /^# TYPE sluice_auth_failures_total counter$/m);

  const status = await request(port, "GET", "/status");
  assert.equal(status.status, 200);
  const json = JSON.parse(status.body);
  assert.equal(json.sessions.open, 1);
  assert.equal(json.eventsDelivered, 3);
  assert.equal(json.authFailures, 0);
});
